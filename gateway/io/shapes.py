"""The value encoding inside one flow-file record: a shape plus typed value streams.

Why this and not a plain tagged encoding: a tagged decoder written in Python spends a few
hundred nanoseconds of interpreter work on every value, and an HTTP flow state holds about
two hundred values, which made reading 10,000 flows take most of a second. Here a record is
split into

- a *shape*: the structure (containers, dict keys, the type of every leaf), and
- typed *streams* holding the leaves in traversal order: strings (one UTF-8 blob split on a
  separator), bytes (one blob split on a separator), floats and ints (packed arrays),
  booleans (one byte each) and array counts.

The streams are decoded in bulk by C code (``str.split``, ``array``), and flows of one kind
share a handful of shapes, so the reader turns a shape it sees repeatedly into a Python
function that assembles the value by indexing the streams (``shape_compiler``). Variable
length homogeneous sequences (headers, TCP messages) are stored as *arrays* whose count is
data, not shape, so one shape serves any number of headers.

Files come from anyone: nothing here evaluates data. The compiler emits only numbers,
``repr()`` of dict keys and fixed syntax, and every inconsistency raises ``DecodeError``.
The byte layout is documented in docs/flow-format.md.
"""

from __future__ import annotations

import os
import struct
import sys
from array import array
from typing import Any

# Shape tags.
NONE = 0x00
STR = 0x01
BYTES = 0x02
FLOAT = 0x03
INT = 0x04
BOOL = 0x05
BIGINT = 0x06
LIST8 = 0x10
LIST32 = 0x11
TUPLE8 = 0x12
TUPLE32 = 0x13
SDICT8 = 0x14
SDICT32 = 0x15
MAP8 = 0x16
MAP32 = 0x17
ARRAY_LIST = 0x18
ARRAY_TUPLE = 0x19

# Parsed shape nodes are tuples whose first item is one of these kinds.
K_NONE, K_STR, K_BYTES, K_FLOAT, K_INT, K_BOOL, K_BIGINT = range(7)
K_LIST, K_TUPLE, K_SDICT, K_MAP, K_ARRAY_LIST, K_ARRAY_TUPLE = range(7, 13)

_LEAF_KINDS = {STR: K_STR, BYTES: K_BYTES, FLOAT: K_FLOAT, INT: K_INT, BOOL: K_BOOL, BIGINT: K_BIGINT}

MAX_DEPTH = 64

_u32 = struct.Struct("<I")
_pack_u32 = _u32.pack
_unpack_u32 = _u32.unpack_from
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_BIG_ENDIAN_HOST = sys.byteorder == "big"
# Array type codes with the sizes the format needs (C's int is 4 bytes almost everywhere).
_U32 = next(code for code in "IL" if array(code).itemsize == 4)


class DecodeError(ValueError):
    """The bytes are not a valid encoding of one value."""


class EncodeError(TypeError):
    """The value holds a type the encoding does not know, or nests too deep."""


# ---------------------------------------------------------------------------------------
# Encoding


class _Streams:
    __slots__ = ("s", "b", "f", "i", "t", "c")

    def __init__(self) -> None:
        self.s: list[str] = []
        self.b: list[bytes] = []
        self.f: list[float] = []
        self.i: list[int] = []
        self.t = bytearray()
        self.c: list[int] = []

    def snapshot(self) -> tuple[int, ...]:
        return len(self.s), len(self.b), len(self.f), len(self.i), len(self.t), len(self.c)

    def rollback(self, snap: tuple[int, ...]) -> None:
        del self.s[snap[0] :], self.b[snap[1] :], self.f[snap[2] :]
        del self.i[snap[3] :], self.t[snap[4] :], self.c[snap[5] :]


def encode(value: Any) -> bytes:
    """Encode one value (None, bool, int, float, str, bytes, list, tuple, dict, nested)."""
    st = _Streams()
    shape = bytearray()
    _shape(value, st, shape, 0, True)
    out = bytearray(_pack_u32(len(shape)))
    out += shape
    out += _pack_u32(len(st.c))
    out += _native_to_le(array(_U32, st.c))
    out += _pack_u32(len(st.t))
    out += st.t
    out += _pack_u32(len(st.f))
    out += _native_to_le(array("d", st.f))
    out += _pack_u32(len(st.i))
    out += _native_to_le(array("q", st.i))
    strs = st.s
    out += _pack_u32(len(strs))
    sep = _pick_separator("".join(strs).encode("utf-8", "surrogatepass"), b"\x00\x1f\x1e\x1d")
    _put_blob(out, sep, sep.decode("ascii").join(strs).encode("utf-8", "surrogatepass"))
    bs = st.b
    out += _pack_u32(len(bs))
    sep = _pick_separator(b"".join(bs), b"\x00\xff\x01\xfe\x02\xfd\x7f\x80")
    _put_blob(out, sep, sep.join(bs))
    return bytes(out)


def _native_to_le(a: array) -> bytes:
    if _BIG_ENDIAN_HOST:
        a.byteswap()
    return a.tobytes()


def _put_blob(out: bytearray, sep: bytes, blob: bytes) -> None:
    out.append(len(sep))
    out += sep
    out += _pack_u32(len(blob))
    out += blob


def _pick_separator(joined: bytes, single: bytes) -> bytes:
    """A separator that occurs in none of the values (``joined``), so split() gives them back.

    A multi-byte separator starts with a byte that occurs nowhere else in it, so it has no
    border and no occurrence can straddle a value and a separator. Separators are ASCII, so
    in a UTF-8 blob they are whole characters and text.split() agrees with bytes.split().
    """
    for c in single:
        sep = bytes((c,))
        if sep not in joined:
            return sep
    while True:
        sep = b"\x00" + bytes(1 + x % 127 for x in os.urandom(15))
        if sep not in joined:
            return sep


def _shape(v: Any, st: _Streams, out: bytearray, depth: int, arrays: bool) -> bool:
    """Append ``v``'s shape to ``out`` and its leaves to the streams; True if it has leaves.

    ``arrays`` is False inside an array element: elements must have a fixed size so that
    the decoder can slice every leaf of every element out of the streams at once.
    """
    t = type(v)
    if t is str:
        st.s.append(v)
        out.append(STR)
        return True
    if t is bytes:
        st.b.append(v)
        out.append(BYTES)
        return True
    if v is None:
        out.append(NONE)
        return False
    if t is float:
        st.f.append(v)
        out.append(FLOAT)
        return True
    if t is bool:
        st.t.append(1 if v else 0)
        out.append(BOOL)
        return True
    if t is int:
        if _INT64_MIN <= v <= _INT64_MAX:
            st.i.append(v)
            out.append(INT)
        else:
            st.b.append(v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True))
            out.append(BIGINT)
        return True
    if t is not dict and t is not list and t is not tuple:
        return _shape(_plain(v), st, out, depth, arrays)
    if depth >= MAX_DEPTH:
        raise EncodeError(f"value nested deeper than {MAX_DEPTH} levels")
    depth += 1
    n = len(v)
    leaves = False
    if t is dict:
        keys = [k.encode("utf-8", "surrogatepass") if type(k) is str else None for k in v]
        if all(k is not None and len(k) < 256 for k in keys):
            out += bytes((SDICT8, n)) if n < 256 else bytes((SDICT32,)) + _pack_u32(n)
            for k, item in zip(keys, v.values(), strict=True):
                out.append(len(k))
                out += k
                leaves |= _shape(item, st, out, depth, arrays)
            return leaves
        out += bytes((MAP8, n)) if n < 256 else bytes((MAP32,)) + _pack_u32(n)
        for k, item in v.items():
            leaves |= _shape(k, st, out, depth, arrays)
            leaves |= _shape(item, st, out, depth, arrays)
        return leaves
    if arrays and n and _same_types(v):
        # Try a homogeneous array: its count is data, so one shape serves any length.
        mark = len(out)
        snap = st.snapshot()
        out.append(ARRAY_LIST if t is list else ARRAY_TUPLE)
        if _shape(v[0], st, out, depth, False):
            elem = out[mark + 1 :]
            end = len(out)
            for item in v[1:] if n > 1 else ():
                _shape(item, st, out, depth, False)
                if out[end:] != elem:
                    break
                del out[end:]
            else:
                st.c.append(n)
                return True
        del out[mark:]
        st.rollback(snap)
    if t is list:
        out += bytes((LIST8, n)) if n < 256 else bytes((LIST32,)) + _pack_u32(n)
    else:
        out += bytes((TUPLE8, n)) if n < 256 else bytes((TUPLE32,)) + _pack_u32(n)
    for item in v:
        leaves |= _shape(item, st, out, depth, arrays)
    return leaves


def _same_types(v: list | tuple) -> bool:
    t0 = type(v[0])
    for x in v:
        if type(x) is not t0:
            return False
    return True


def _plain(v: Any) -> Any:
    """Map subclasses of the base types (str enums, IntEnum, namedtuple) to the base type."""
    if isinstance(v, bool):
        return True if v else False
    if isinstance(v, str):
        return str.__str__(v)
    if isinstance(v, int):
        return int.__int__(v)
    if isinstance(v, float):
        return float.__float__(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return bytes(memoryview(v))
    for base in (dict, list, tuple):
        if isinstance(v, base):
            return base(v)
    raise EncodeError(f"cannot encode a value of type {type(v).__name__}")


# ---------------------------------------------------------------------------------------
# Decoding


class Streams:
    """The decoded leaf streams of one record, in traversal order."""

    __slots__ = ("s", "b", "f", "i", "t", "c")

    def __init__(self, s: list, b: list, f: list, i: list, t: list, c: list) -> None:
        self.s = s
        self.b = b
        self.f = f
        self.i = i
        self.t = t
        self.c = c

    def lengths(self) -> tuple[int, ...]:
        return len(self.s), len(self.b), len(self.f), len(self.i), len(self.t), len(self.c)


def split_record(buf: bytes) -> tuple[bytes, Streams]:
    """Cut a record payload into its shape bytes and its decoded streams."""
    try:
        p = 4 + _unpack_u32(buf, 0)[0]
        if p > len(buf):
            raise DecodeError("record ends inside its shape")
        shape = buf[4:p]
        c, p = _read_array(buf, p, _U32, 4)
        q = p + 4 + _unpack_u32(buf, p)[0]
        if q > len(buf):
            raise DecodeError("record ends inside its boolean stream")
        t = list(map(bool, buf[p + 4 : q]))
        f, p = _read_array(buf, q, "d", 8)
        i, p = _read_array(buf, p, "q", 8)
        count, sep, start, p = _split_bounds(buf, p)
        if count:
            s = buf[start:p].decode("utf-8", "surrogatepass").split(sep.decode("utf-8"))
            _check_count(count, s)
        else:
            s = _empty(start, p)
        count, sep, start, p = _split_bounds(buf, p)
        if count:
            b = buf[start:p].split(sep)
            _check_count(count, b)
        else:
            b = _empty(start, p)
    except struct.error:
        raise DecodeError("record ends inside its stream headers") from None
    except UnicodeDecodeError as e:
        raise DecodeError(f"string stream is not valid UTF-8: {e.reason}") from None
    if p != len(buf):
        raise DecodeError(f"record holds {len(buf) - p} stray bytes after its streams")
    return shape, Streams(s, b, f, i, t, c)


def _read_array(buf: bytes, p: int, code: str, size: int) -> tuple[list, int]:
    p += 4
    q = p + _unpack_u32(buf, p - 4)[0] * size
    if q > len(buf):
        raise DecodeError("record ends inside a number stream")
    a = array(code)
    a.frombytes(buf[p:q])
    if _BIG_ENDIAN_HOST:
        a.byteswap()
    return a.tolist(), q


def _split_bounds(buf: bytes, p: int) -> tuple[int, bytes, int, int]:
    count = _unpack_u32(buf, p)[0]
    seplen = buf[p + 4] if p + 4 < len(buf) else 0
    sep = buf[p + 5 : p + 5 + seplen]
    q = p + 5 + seplen
    start = q + 4
    end = start + _unpack_u32(buf, q)[0]
    if end > len(buf) or not sep:
        raise DecodeError("record ends inside a string or bytes stream")
    return count, sep, start, end


def _check_count(count: int, parts: list) -> None:
    if len(parts) != count:
        raise DecodeError(f"stream declares {count} values but holds {len(parts)}")


def _empty(start: int, end: int) -> list:
    if end != start:
        raise DecodeError("empty stream with a non-empty blob")
    return []


def parse_shape(shape: bytes) -> tuple:
    """Parse and validate shape bytes into a node tree."""
    try:
        node, p = _parse(shape, 0, 0, False)
    except IndexError:
        raise DecodeError("shape ends early") from None
    except UnicodeDecodeError:
        raise DecodeError("dict key in the shape is not valid UTF-8") from None
    if p != len(shape):
        raise DecodeError(f"{len(shape) - p} stray bytes after the shape")
    return node


def _parse(sh: bytes, p: int, depth: int, in_array: bool) -> tuple[tuple, int]:
    tag = sh[p]
    kind = _LEAF_KINDS.get(tag)
    if kind is not None:
        return (kind,), p + 1
    if tag == NONE:
        return (K_NONE,), p + 1
    if depth >= MAX_DEPTH:
        raise DecodeError(f"value nested deeper than {MAX_DEPTH} levels")
    depth += 1
    if tag in (LIST8, TUPLE8, SDICT8, MAP8):
        n = sh[p + 1]
        p += 2
    elif tag in (LIST32, TUPLE32, SDICT32, MAP32):
        if p + 5 > len(sh):
            raise DecodeError("shape ends early")
        n = _unpack_u32(sh, p + 1)[0]
        p += 5
    elif tag in (ARRAY_LIST, ARRAY_TUPLE):
        if in_array:
            raise DecodeError("array nested inside an array element")
        elem, p = _parse(sh, p + 1, depth, True)
        if not _has_leaves(elem):
            raise DecodeError("array of elements without values")
        return (K_ARRAY_LIST if tag == ARRAY_LIST else K_ARRAY_TUPLE, elem), p
    else:
        raise DecodeError(f"unknown shape tag 0x{tag:02x} at byte {p}")
    if n > len(sh):
        raise DecodeError("container count exceeds the shape")
    if tag in (SDICT8, SDICT32):
        keys = []
        vals = []
        for _ in range(n):
            ln = sh[p]
            q = p + 1 + ln
            if q > len(sh):
                raise DecodeError("shape ends inside a dict key")
            keys.append(sh[p + 1 : q].decode("utf-8", "surrogatepass"))
            v, p = _parse(sh, q, depth, in_array)
            vals.append(v)
        return (K_SDICT, tuple(keys), tuple(vals)), p
    children = []
    for _ in range(2 * n if tag in (MAP8, MAP32) else n):
        c, p = _parse(sh, p, depth, in_array)
        children.append(c)
    if tag in (MAP8, MAP32):
        return (K_MAP, tuple(children)), p
    return (K_LIST if tag in (LIST8, LIST32) else K_TUPLE, tuple(children)), p


def _has_leaves(node: tuple) -> bool:
    k = node[0]
    if k == K_NONE:
        return False
    if k < K_LIST:
        return True
    if k == K_SDICT:
        return any(_has_leaves(c) for c in node[2])
    if k in (K_ARRAY_LIST, K_ARRAY_TUPLE):
        return True
    return any(_has_leaves(c) for c in node[1])


def int_from_bytes(b: bytes) -> int:
    return int.from_bytes(b, "little", signed=True)


def interpret(node: tuple, streams: Streams) -> Any:
    """Build the value by walking the shape: the path for shapes seen once."""
    its = [iter(streams.s), iter(streams.b), iter(streams.f), iter(streams.i), iter(streams.t), iter(streams.c)]
    try:
        value = _interp(node, its)
    except StopIteration:
        raise DecodeError("the shape needs more values than the record holds") from None
    except TypeError as e:
        raise DecodeError(f"invalid value: {e}") from None
    end = object()
    if any(next(it, end) is not end for it in its):
        raise DecodeError("the record holds values its shape does not use")
    return value


def _interp(node: tuple, its: list) -> Any:
    k = node[0]
    if k == K_STR:
        return next(its[0])
    if k == K_BYTES:
        return next(its[1])
    if k == K_NONE:
        return None
    if k == K_SDICT:
        return {key: _interp(v, its) for key, v in zip(node[1], node[2], strict=True)}
    if k == K_FLOAT:
        return next(its[2])
    if k == K_INT:
        return next(its[3])
    if k == K_BOOL:
        return next(its[4])
    if k == K_BIGINT:
        return int_from_bytes(next(its[1]))
    if k == K_LIST:
        return [_interp(c, its) for c in node[1]]
    if k == K_TUPLE:
        return tuple([_interp(c, its) for c in node[1]])
    if k == K_MAP:
        ch = node[1]
        d = {}
        for j in range(0, len(ch), 2):
            key = _interp(ch[j], its)
            d[key] = _interp(ch[j + 1], its)
        return d
    # Arrays: the count comes from the count stream; every element consumes values, so a
    # forged count runs the streams dry long before it can exhaust memory.
    n = next(its[5])
    elem = node[1]
    items = [_interp(elem, its) for _ in range(n)]
    return items if k == K_ARRAY_LIST else tuple(items)
