"""Turn a record shape into a Python function that assembles the value from its streams.

Why: walking a shape node by node costs interpreter work per value; a generated function
is one nested display expression (dicts, tuples, lists) whose leaves are ``S[3]``,
``B[s1+2]``, ... , which CPython evaluates several times faster. Flows of one kind share
a few shapes, so each is compiled once and reused for every record that has it.

Safety: the source is built only from integers, fixed syntax and ``repr()`` of dict keys
(a str's repr is always a plain string literal), and runs with no builtins except zip,
tuple and list. Forged counts cannot over-allocate: arrays are built from slices of the
streams, and the caller checks that the cursors end exactly at the ends of the streams.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.io.shapes import (
    K_ARRAY_LIST,
    K_ARRAY_TUPLE,
    K_BIGINT,
    K_BOOL,
    K_BYTES,
    K_FLOAT,
    K_INT,
    K_LIST,
    K_MAP,
    K_NONE,
    K_SDICT,
    K_STR,
    K_TUPLE,
    DecodeError,
    int_from_bytes,
    interpret,
    parse_shape,
    split_record,
)

# Stream indices and the names the generated code uses for them.
_S, _B, _F, _I, _T, _C = range(6)
_PARAMS = "SBFITC"
_LOCALS = "sbfitc"
_LEAF_STREAM = {K_STR: _S, K_BYTES: _B, K_FLOAT: _F, K_INT: _I, K_BOOL: _T, K_BIGINT: _B}

# Shapes bigger than this are interpreted: compiling them would cost more than it saves.
MAX_COMPILED_NODES = 4000

Builder = Callable[[list, list, list, list, list, list], tuple[Any, tuple[int, ...]]]


def _expr(node: tuple, take: Callable[[int], str], array: Callable[[tuple], str] | None) -> str:
    k = node[0]
    if k == K_NONE:
        return "None"
    if k == K_BIGINT:
        return f"_ib({take(_B)})"
    stream = _LEAF_STREAM.get(k)
    if stream is not None:
        return take(stream)
    if k == K_SDICT:
        items = [f"{key!r}: {_expr(v, take, array)}" for key, v in zip(node[1], node[2], strict=True)]
        return "{" + ", ".join(items) + "}"
    if k == K_LIST:
        return "[" + ", ".join([_expr(c, take, array) for c in node[1]]) + "]"
    if k == K_TUPLE:
        return "(" + "".join([_expr(c, take, array) + ", " for c in node[1]]) + ")"
    if k == K_MAP:
        ch = node[1]
        items = [f"{_expr(ch[j], take, array)}: {_expr(ch[j + 1], take, array)}" for j in range(0, len(ch), 2)]
        return "{" + ", ".join(items) + "}"
    if array is None:  # parse_shape already refuses arrays inside array elements
        raise DecodeError("array nested inside an array element")
    return array(node)


class _Codegen:
    def __init__(self) -> None:
        # The cursor of each stream is base + off, base a local variable (after an array,
        # whose length is only known at run time) or None (a constant position).
        self.base: list[str | None] = [None] * 6
        self.off = [0] * 6
        self.lines: list[str] = []
        self.arrays = 0

    def cursor(self, st: int, extra: int = 0) -> str:
        b, k = self.base[st], self.off[st] + extra
        if b is None:
            return str(k)
        return f"{b}+{k}" if k else b

    def take(self, st: int) -> str:
        e = f"{_PARAMS[st]}[{self.cursor(st)}]"
        self.off[st] += 1
        return e

    def array(self, node: tuple) -> str:
        j = self.arrays
        self.arrays += 1
        n = f"n{j}"
        self.lines.append(f"{n} = {self.take(_C)}")
        leaves: list[tuple[int, int]] = []
        per = [0] * 6

        def leaf(st: int) -> str:
            leaves.append((st, per[st]))
            per[st] += 1
            return f"v{len(leaves) - 1}"

        elem = _expr(node[1], leaf, None)
        slices = []
        for st, k in leaves:
            d = per[st]
            start = self.cursor(st, k)
            step = f":{d}" if d != 1 else ""
            stop = f"{start}+{n}*{d}" if d != 1 else f"{start}+{n}"
            slices.append(f"{_PARAMS[st]}[{start}:{stop}{step}]")
        names = [f"v{m}" for m in range(len(leaves))]
        as_tuple = node[0] == K_ARRAY_TUPLE
        if elem == "v0" and len(leaves) == 1:
            value = f"tuple({slices[0]})" if as_tuple else slices[0]
        elif elem == "(" + "".join(x + ", " for x in names) + ")":
            value = f"{'tuple' if as_tuple else 'list'}(zip({', '.join(slices)}))"
        else:
            source = slices[0] if len(slices) == 1 else f"zip({', '.join(slices)})"
            target = names[0] if len(names) == 1 else ", ".join(names)
            value = f"[{elem} for {target} in {source}]"
            if as_tuple:
                value = f"tuple({value})"
        self.lines.append(f"a{j} = {value}")
        for st in range(6):
            if per[st]:
                var = f"{_LOCALS[st]}{j}"
                self.lines.append(f"{var} = {self.cursor(st)}+{n}*{per[st]}")
                self.base[st] = var
                self.off[st] = 0
        return f"a{j}"


def shape_source(node: tuple) -> str:
    """The Python source of the builder function for ``node``."""
    g = _Codegen()
    expr = _expr(node, g.take, g.array)
    ends = ", ".join(g.cursor(st) for st in range(6))
    body = "".join(f"    {line}\n" for line in g.lines)
    return f"def build(S, B, F, I, T, C):\n{body}    return ({expr}), ({ends})\n"


def compile_shape(node: tuple) -> Builder:
    namespace: dict[str, Any] = {
        "__builtins__": {},
        "zip": zip,
        "tuple": tuple,
        "list": list,
        "_ib": int_from_bytes,
    }
    exec(compile(shape_source(node), "<flow-file shape>", "exec"), namespace)
    return namespace["build"]


def node_count(node: tuple) -> int:
    k = node[0]
    if k < K_LIST:
        return 1
    if k == K_SDICT:
        return 1 + sum(node_count(c) for c in node[2])
    if k in (K_ARRAY_LIST, K_ARRAY_TUPLE):
        return 1 + node_count(node[1])
    return 1 + sum(node_count(c) for c in node[1])


class Decoder:
    """Decodes record payloads, compiling each shape once it has been seen ``compile_after`` times.

    Shapes seen fewer times are interpreted, so a file where every record has a new shape
    costs no compiling. The cache is bounded; the oldest shape leaves first.
    """

    def __init__(self, max_shapes: int = 1024, compile_after: int = 8) -> None:
        self.max_shapes = max_shapes
        self.compile_after = compile_after
        # shape bytes -> [node, times seen, builder or None]
        self._shapes: dict[bytes, list] = {}

    def decode(self, payload: bytes) -> Any:
        shape, streams = split_record(payload)
        entry = self._shapes.get(shape)
        if entry is None:
            node = parse_shape(shape)
            # A shape too big to be worth compiling never reaches the threshold.
            entry = [node, 0 if node_count(node) <= MAX_COMPILED_NODES else -(2**62), None]
            if len(self._shapes) >= self.max_shapes:
                del self._shapes[next(iter(self._shapes))]
            self._shapes[shape] = entry
        build = entry[2]
        if build is None:
            entry[1] += 1
            if entry[1] < self.compile_after:
                return interpret(entry[0], streams)
            entry[2] = build = compile_shape(entry[0])
        try:
            value, ends = build(streams.s, streams.b, streams.f, streams.i, streams.t, streams.c)
        except IndexError:
            raise DecodeError("the shape needs more values than the record holds") from None
        except TypeError as e:
            raise DecodeError(f"invalid value: {e}") from None
        if ends != streams.lengths():
            raise DecodeError("the record's values do not match its shape")
        return value
