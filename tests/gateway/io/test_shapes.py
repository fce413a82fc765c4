"""The value encoding inside flow-file records: every type round-trips, compiled and
interpreted decoding agree, and damaged or forged payloads raise DecodeError only."""

from __future__ import annotations

import enum
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.io import shapes
from gateway.io.shape_compiler import Decoder, compile_shape, shape_source
from gateway.io.shapes import DecodeError, EncodeError

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text()
    | st.binary()
    | st.integers(min_value=2**63 - 2, max_value=2**70)
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=6)
    | st.lists(children, max_size=6).map(tuple)
    | st.dictionaries(st.text(max_size=8), children, max_size=6)
    | st.dictionaries(st.integers(), children, max_size=3),
    max_leaves=40,
)


def interpreted(payload: bytes):
    return Decoder(compile_after=10**9).decode(payload)


def compiled(payload: bytes):
    return Decoder(compile_after=1).decode(payload)


def same(a, b) -> bool:
    """Equality that also compares types (True == 1 and (1,) != [1] must be told apart)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_every_value_round_trips_both_ways(v):
    payload = shapes.encode(v)
    assert same(interpreted(payload), v)
    assert same(compiled(payload), v)


@pytest.mark.parametrize(
    "v",
    [
        None,
        True,
        False,
        0,
        -1,
        255,
        2**63 - 1,
        -(2**63),
        2**63,
        -(2**200),
        0.0,
        -0.0,
        float("inf"),
        1e-300,
        "",
        "x" * 300,
        "nul\x00inside\x1fand\x1e\x1d",
        "\udc80\udcff surrogate-escaped bytes",
        "ünïcödé ✓ 🐍",
        b"",
        bytes(range(256)) * 3,
        [],
        (),
        {},
        [[], (), {}],
        {"a": {"b": {"c": [1, (2, b"3")]}}},
        {1: "int key", (1, 2): "tuple key", None: "none key", b"k": "bytes key"},
        {"k" * 300: "long key"},
        list(range(300)),
        {str(i): i for i in range(300)},
        tuple((b"Name-%d" % i, b"value %d" % i) for i in range(40)),
        [(True, b"x", 1.5), (False, b"y", 2.5)],
        [None, None],
        [[1, 2], [3, 4, 5]],
        [{"from_client": i % 2 == 0, "content": bytes([i]), "timestamp": float(i)} for i in range(50)],
    ],
)
def test_edge_values_round_trip(v):
    payload = shapes.encode(v)
    assert same(interpreted(payload), v)
    assert same(compiled(payload), v)


def test_string_and_bytes_that_contain_every_single_byte_separator():
    nasty_bytes = [bytes(range(256)), b"\x00\xff", b"\x00" * 10]
    nasty_strs = ["".join(map(chr, range(128))), "\x00\x1f\x1e\x1d"]
    v = {"b": nasty_bytes, "s": nasty_strs, "mixed": (bytes(range(256)), "".join(map(chr, range(128))))}
    payload = shapes.encode(v)
    assert same(interpreted(payload), v)
    assert same(compiled(payload), v)


def test_subclasses_of_base_types_are_stored_as_the_base_type():
    class Color(enum.IntEnum):
        RED = 1

    class Name(enum.StrEnum):
        A = "a"

    out = compiled(shapes.encode({"c": Color.RED, "n": Name.A, "ba": bytearray(b"xy")}))
    assert out == {"c": 1, "n": "a", "ba": b"xy"}
    assert type(out["c"]) is int and type(out["n"]) is str and type(out["ba"]) is bytes


def test_unknown_types_and_too_deep_values_are_refused():
    with pytest.raises(EncodeError):
        shapes.encode({"x": object()})
    deep: list = []
    for _ in range(shapes.MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(EncodeError):
        shapes.encode(deep)


def test_headers_become_one_array_so_the_shape_does_not_depend_on_their_number():
    def state(n):
        return {"headers": tuple((b"h%d" % i, b"v") for i in range(n)), "x": 1}

    shape_of = [shapes.split_record(shapes.encode(state(n)))[0] for n in (1, 2, 7, 40)]
    assert len(set(shape_of)) == 1
    src = shape_source(shapes.parse_shape(shape_of[0]))
    assert "zip(" in src  # headers come out of two stream slices, not element by element


def test_generated_source_holds_no_data_from_the_record():
    v = {"key'); import os; os.system('x": "value\"); import os #", "k2": [b"')"]}
    payload = shapes.encode(v)
    shape, _ = shapes.split_record(payload)
    src = shape_source(shapes.parse_shape(shape))
    assert "value" not in src and "import os; os.system" not in src.replace(repr(next(iter(v))), "")
    assert compiled(payload) == v


def test_decoder_compiles_a_shape_once_it_repeats():
    d = Decoder(compile_after=3)
    payload = shapes.encode({"a": 1, "b": "x"})
    for _ in range(5):
        assert d.decode(payload) == {"a": 1, "b": "x"}
    entry = next(iter(d._shapes.values()))
    assert entry[2] is not None


def test_shape_cache_is_bounded():
    d = Decoder(max_shapes=4, compile_after=1)
    for i in range(20):
        d.decode(shapes.encode({f"k{i}": i}))
    assert len(d._shapes) <= 4


# --- damaged and forged payloads -------------------------------------------------------

SAMPLES = [
    {"id": "x", "headers": ((b"a", b"b"), (b"c", b"d")), "n": [1, 2.5, None, True], "big": 2**80},
    [{"from_client": True, "content": b"\x00\xff" * 10, "ts": 1.0}] * 5,
    {"s": "ünï" * 50, "t": ("a", "b", "c"), "m": {1: 2}},
]


@pytest.mark.parametrize("sample", SAMPLES)
def test_truncated_payloads_raise_decode_error(sample):
    payload = shapes.encode(sample)
    for cut in range(len(payload)):
        for decode in (interpreted, compiled):
            with pytest.raises(DecodeError):
                decode(payload[:cut])


@pytest.mark.parametrize("sample", SAMPLES)
def test_mutated_payloads_raise_only_decode_error(sample):
    payload = shapes.encode(sample)
    rnd = random.Random(7)
    for _ in range(400):
        b = bytearray(payload)
        for _ in range(rnd.randint(1, 4)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        for decode in (interpreted, compiled):
            try:
                decode(bytes(b))
            except DecodeError:
                pass


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_decode_error(data):
    for decode in (interpreted, compiled):
        try:
            decode(data)
        except DecodeError:
            pass


def _record(shape: bytes, c=(), t=b"", strs=(), bs=()) -> bytes:
    import struct

    out = struct.pack("<I", len(shape)) + shape
    out += struct.pack("<I", len(c)) + b"".join(struct.pack("<I", x) for x in c)
    out += struct.pack("<I", len(t)) + t
    out += struct.pack("<I", 0) + struct.pack("<I", 0)  # floats, ints
    sblob = "\x00".join(strs).encode()
    out += struct.pack("<I", len(strs)) + b"\x01\x00" + struct.pack("<I", len(sblob)) + sblob
    bblob = b"\x00".join(bs)
    out += struct.pack("<I", len(bs)) + b"\x01\x00" + struct.pack("<I", len(bblob)) + bblob
    return out


def test_a_forged_huge_array_count_does_not_allocate_it():
    # An array of str whose count claims four billion elements but the stream has two.
    payload = _record(bytes([shapes.ARRAY_LIST, shapes.STR]), c=[2**32 - 1], strs=["a", "b"])
    for decode in (interpreted, compiled):
        with pytest.raises(DecodeError):
            decode(payload)
    ok = _record(bytes([shapes.ARRAY_LIST, shapes.STR]), c=[2], strs=["a", "b"])
    assert compiled(ok) == ["a", "b"] == interpreted(ok)


def test_arrays_of_valueless_elements_and_nested_arrays_are_refused():
    empty_elems = _record(bytes([shapes.ARRAY_LIST, shapes.NONE]), c=[10**9])
    nested = _record(bytes([shapes.ARRAY_LIST, shapes.ARRAY_LIST, shapes.STR]), c=[1, 1], strs=["a"])
    for payload in (empty_elems, nested):
        for decode in (interpreted, compiled):
            with pytest.raises(DecodeError):
                decode(payload)


def test_unhashable_forged_dict_key_is_a_decode_error():
    payload = _record(bytes([shapes.MAP8, 1, shapes.LIST8, 0, shapes.NONE]))
    for decode in (interpreted, compiled):
        with pytest.raises(DecodeError):
            decode(payload)


def test_compiled_builder_runs_without_builtins():
    node = shapes.parse_shape(bytes([shapes.LIST8, 1, shapes.STR]))
    build = compile_shape(node)
    assert build.__globals__["__builtins__"] == {}
