"""Sequence arithmetic modulo 2**32, checked against a brute-force definition."""

from hypothesis import given
from hypothesis import strategies as st

from netstack.tcp.seq import (
    MASK,
    seq_add,
    seq_diff,
    seq_geq,
    seq_gt,
    seq_in_window,
    seq_leq,
    seq_lt,
    seq_max,
    seq_min,
    unwrap,
    wrap,
)

u32 = st.integers(0, MASK)
small = st.integers(-(2**31) + 1, 2**31 - 1)


def test_wrap_boundary():
    assert seq_lt(0xFFFFFFFF, 0)
    assert seq_gt(0, 0xFFFFFFFF)
    assert seq_add(0xFFFFFFF0, 0x20) == 0x10
    assert seq_diff(0x10, 0xFFFFFFF0) == 0x20
    assert seq_diff(0xFFFFFFF0, 0x10) == -0x20
    assert seq_in_window(0x5, 0xFFFFFFF0, 0x20)
    assert not seq_in_window(0x10, 0xFFFFFFF0, 0x20)
    assert seq_max(0xFFFFFFFF, 3) == 3 and seq_min(0xFFFFFFFF, 3) == 0xFFFFFFFF


@given(u32, small)
def test_ordering_follows_offset(a, d):
    b = seq_add(a, d)
    assert seq_diff(b, a) == d
    assert seq_lt(a, b) == (d > 0)
    assert seq_leq(a, b) == (d >= 0)
    assert seq_gt(a, b) == (d < 0)
    assert seq_geq(a, b) == (d <= 0)


@given(u32, st.integers(0, 2**40), st.integers(-(2**30), 2**30))
def test_unwrap_inverts_wrap(iss, ref, delta):
    target = ref + delta
    if target < 0:
        return
    assert unwrap(wrap(iss, target), wrap(iss, ref), ref) == target
