"""Internet checksum (RFC 1071) with integer arithmetic.

Summing 16-bit words in ones' complement is the same as reducing the whole buffer, read
as one big-endian integer, modulo 0xFFFF (because 2**16 == 1 mod 0xFFFF).  CPython's
bignum conversion and modulo run in C, so this is one pass over the bytes instead of a
Python loop over words.
"""

from __future__ import annotations


def ones_sum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """Ones' complement sum of ``data`` (padded to even length), folded to 16 bits.

    ``initial`` lets callers chain a pseudo-header sum in.  The result is in 0..0xFFFF,
    with 0xFFFF standing for a non-zero total that is a multiple of 0xFFFF.
    """
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    total = int.from_bytes(data, "big") + initial
    if total == 0:
        return 0
    r = total % 0xFFFF
    return r or 0xFFFF


def checksum(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """The value to put in a header's checksum field."""
    return (~ones_sum(data, initial)) & 0xFFFF


def pseudo_header_sum(src: bytes, dst: bytes, proto: int, length: int) -> int:
    """Partial sum of the IPv4 or IPv6 pseudo-header (addresses as packed bytes)."""
    return int.from_bytes(src, "big") + int.from_bytes(dst, "big") + proto + length


def verify(data: bytes | bytearray | memoryview, initial: int = 0) -> bool:
    """True when a received header's checksum (included in ``data``) is right."""
    return ones_sum(data, initial) == 0xFFFF
