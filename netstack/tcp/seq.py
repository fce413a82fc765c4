"""Sequence-number arithmetic modulo 2**32 (RFC 9293 section 3.4).

Sequence numbers wrap, so ``a < b`` on raw values is wrong near 2**32.  Every comparison
of wire sequence numbers goes through these helpers.  Inside ``TcpConnection`` the state
is kept as unbounded *stream offsets* (plain ints counted from the ISN) and converted
with ``unwrap``/``wrap`` at the edge, so the hot path compares ordinary integers.
"""

from __future__ import annotations

MOD = 1 << 32
MASK = MOD - 1
HALF = 1 << 31


def seq_add(a: int, n: int) -> int:
    """``a + n`` modulo 2**32 (``n`` may be negative)."""
    return (a + n) & MASK


def seq_diff(a: int, b: int) -> int:
    """The signed distance ``a - b`` in -2**31 .. 2**31-1."""
    d = (a - b) & MASK
    return d - MOD if d & HALF else d


def seq_lt(a: int, b: int) -> bool:
    return a != b and (a - b) & HALF != 0


def seq_leq(a: int, b: int) -> bool:
    return a == b or (a - b) & HALF != 0


def seq_gt(a: int, b: int) -> bool:
    return seq_lt(b, a)


def seq_geq(a: int, b: int) -> bool:
    return seq_leq(b, a)


def seq_max(a: int, b: int) -> int:
    return b if seq_lt(a, b) else a


def seq_min(a: int, b: int) -> int:
    return a if seq_lt(a, b) else b


def seq_in_window(x: int, left: int, size: int) -> bool:
    """``left <= x < left + size`` modulo 2**32."""
    return ((x - left) & MASK) < size


def wrap(base: int, offset: int) -> int:
    """The wire sequence number of stream ``offset`` counted from ``base`` (the ISN)."""
    return (base + offset) & MASK


def unwrap(wire: int, ref_wire: int, ref_offset: int) -> int:
    """The stream offset of ``wire``: the one nearest to ``ref_offset`` (whose wire value is ``ref_wire``)."""
    d = (wire - ref_wire) & MASK
    return ref_offset + (d - MOD if d & HALF else d)
