"""ICMPv4 (RFC 792, RFC 1122 3.2.2) and ICMPv6 (RFC 4443) messages.

Echo requests are answered by the stack itself; errors are built from the invoking packet
and sent only where RFC 1122 3.2.2 / RFC 4443 2.4(e) allow: never about an ICMP error,
a non-first fragment, or a packet sent to or from a multicast/broadcast address, and at a
bounded rate (a token bucket) so a flood of bad packets cannot turn the stack into an
amplifier.  Neighbour discovery and MLD messages (RFC 4861, RFC 3810) mean nothing on a
layer-3 link like TUN or WireGuard: they are counted and ignored, never answered.
"""

from __future__ import annotations

import struct

from netstack.checksum import checksum, ones_sum, pseudo_header_sum
from netstack.errors import PacketError
from netstack.ipv6 import NH_ICMPV6

HEADER = struct.Struct("!BBH")
ECHO = struct.Struct("!BBHHH")

# ICMPv4 types
V4_ECHO_REPLY = 0
V4_DEST_UNREACH = 3
V4_ECHO_REQUEST = 8
V4_TIME_EXCEEDED = 11
V4_PARAM_PROBLEM = 12
V4_ERRORS = frozenset({3, 4, 5, 11, 12})
# ICMPv4 destination unreachable codes
V4_PROTO_UNREACH = 2
V4_PORT_UNREACH = 3
V4_FRAG_NEEDED = 4

# ICMPv6 types
V6_DEST_UNREACH = 1
V6_PACKET_TOO_BIG = 2
V6_TIME_EXCEEDED = 3
V6_PARAM_PROBLEM = 4
V6_ECHO_REQUEST = 128
V6_ECHO_REPLY = 129
V6_PORT_UNREACH = 4
V6_NEIGHBOUR = frozenset({133, 134, 135, 136, 137})  # RS, RA, NS, NA, redirect (RFC 4861)
V6_MLD = frozenset({130, 131, 132, 143})

V4_QUOTE_LIMIT = 576  # RFC 1812 4.3.2.3: the whole error at most 576 bytes
V6_QUOTE_LIMIT = 1280  # RFC 4443 2.4(c): the whole error at most the minimum MTU


def parse_icmpv4(payload: memoryview, verify: bool) -> tuple[int, int]:
    """Return (type, code); ICMP checksums cover the message alone."""
    if len(payload) < 8:
        raise PacketError("icmp.truncated")
    typ, code, _csum = HEADER.unpack_from(payload)
    if verify and ones_sum(payload) != 0xFFFF:
        raise PacketError("icmp.bad_checksum")
    return typ, code


def parse_icmpv6(payload: memoryview, src: bytes, dst: bytes, verify: bool) -> tuple[int, int]:
    """Return (type, code); ICMPv6 checksums include the pseudo-header (RFC 4443 2.3)."""
    n = len(payload)
    if n < 4:
        raise PacketError("icmp6.truncated")
    typ, code, _csum = HEADER.unpack_from(payload)
    if verify and ones_sum(payload, pseudo_header_sum(src, dst, NH_ICMPV6, n)) != 0xFFFF:
        raise PacketError("icmp6.bad_checksum")
    if typ in (V6_ECHO_REQUEST, V6_ECHO_REPLY) and n < 8:
        raise PacketError("icmp6.truncated")
    return typ, code


def build_icmpv4(typ: int, code: int, rest: bytes, data: bytes | memoryview) -> bytes:
    """An ICMPv4 message: type, code, checksum, the 4 'rest of header' bytes, data."""
    msg = HEADER.pack(typ, code, 0) + rest + bytes(data)
    return msg[:2] + checksum(msg).to_bytes(2, "big") + msg[4:]


def build_icmpv6(typ: int, code: int, rest: bytes, data: bytes | memoryview, src: bytes, dst: bytes) -> bytes:
    msg = HEADER.pack(typ, code, 0) + rest + bytes(data)
    csum = checksum(msg, pseudo_header_sum(src, dst, NH_ICMPV6, len(msg)))
    return msg[:2] + csum.to_bytes(2, "big") + msg[4:]


def echo_reply_v4(request: memoryview) -> bytes:
    """The ICMP message answering an echo request (identifier, sequence and data echoed)."""
    return build_icmpv4(V4_ECHO_REPLY, 0, bytes(request[4:8]), request[8:])


def echo_reply_v6(request: memoryview, src: bytes, dst: bytes) -> bytes:
    return build_icmpv6(V6_ECHO_REPLY, 0, bytes(request[4:8]), request[8:], src, dst)


def error_v4(typ: int, code: int, invoking: memoryview | bytes, value: int = 0) -> bytes:
    """An ICMPv4 error message quoting the invoking packet; ``value`` is the next-hop MTU
    for code 4 (RFC 1191) or the pointer of a parameter problem."""
    if typ == V4_PARAM_PROBLEM:
        rest = bytes([value & 0xFF, 0, 0, 0])
    else:
        rest = (value & 0xFFFF).to_bytes(4, "big")
    return build_icmpv4(typ, code, rest, invoking[: V4_QUOTE_LIMIT - 28])


def error_v6(
    typ: int, code: int, invoking: memoryview | bytes, src: bytes, dst: bytes, value: int = 0
) -> bytes:
    """An ICMPv6 error message quoting the invoking packet; ``value`` is the MTU (packet
    too big) or the pointer (parameter problem)."""
    return build_icmpv6(typ, code, value.to_bytes(4, "big"), invoking[: V6_QUOTE_LIMIT - 48], src, dst)


def quoted_ports(inner: memoryview) -> tuple[int, int] | None:
    """The (source, destination) ports quoted by an ICMP error, if at least 4 bytes are there."""
    if len(inner) < 4:
        return None
    return int.from_bytes(inner[0:2], "big"), int.from_bytes(inner[2:4], "big")


class TokenBucket:
    """Rate limit for outgoing ICMP errors (RFC 4443 2.4(f), RFC 1812 4.3.2.8)."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp: float | None = None

    def take(self, now: float) -> bool:
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
