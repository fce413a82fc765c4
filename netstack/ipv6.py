"""IPv6 header parsing and building (RFC 8200).

The fixed header is checked (version, payload length against the buffer), then the
extension header chain is walked the way RFC 8200 section 4 asks of a destination node:
hop-by-hop options only directly after the fixed header, options whose type says
"discard" discard the packet (with a parameter problem where the type asks for one),
a routing header with segments left is refused (no routing type is implemented), and a
fragment header hands the rest of the packet to reassembly.  Atomic fragments (offset 0,
no more fragments; RFC 6946) are processed at once.
"""

from __future__ import annotations

import struct

from netstack.errors import PacketError

HEADER = struct.Struct("!IHBB16s16s")
HEADER_LEN = 40
FRAGMENT = struct.Struct("!BBHI")

NH_HOPOPTS = 0
NH_TCP = 6
NH_UDP = 17
NH_ROUTING = 43
NH_FRAGMENT = 44
NH_ICMPV6 = 58
NH_NONE = 59
NH_DSTOPTS = 60

# ICMPv6 parameter problem codes (RFC 4443 3.4)
PP_HEADER_FIELD = 0
PP_NEXT_HEADER = 1
PP_OPTION = 2

_ICMP_PARAM_PROBLEM = 4


class IPv6Packet:
    """A received IPv6 packet with its extension headers walked.

    ``proto``/``payload`` are the upper-layer protocol and its bytes, unless ``frag`` is
    set: then the packet is a fragment, ``frag`` is (offset in bytes, more, identification,
    next header), ``payload`` is the fragment data and ``unfragmentable`` the headers before
    the fragment header.
    """

    __slots__ = (
        "src",
        "dst",
        "proto",
        "hop_limit",
        "tclass",
        "flow",
        "frag",
        "unfragmentable",
        "packet",
        "payload",
    )
    version = 6

    def __init__(
        self,
        src: bytes,
        dst: bytes,
        proto: int,
        hop_limit: int,
        tclass: int,
        flow: int,
        frag: tuple[int, bool, int, int] | None,
        unfragmentable: memoryview | None,
        packet: memoryview,
        payload: memoryview,
    ) -> None:
        self.src = src
        self.dst = dst
        self.proto = proto
        self.hop_limit = hop_limit
        self.tclass = tclass
        self.flow = flow
        self.frag = frag
        self.unfragmentable = unfragmentable
        self.packet = packet
        """The whole packet, trimmed to its payload length (quoted back in ICMPv6 errors)."""
        self.payload = payload


def _walk_options(data: memoryview, start: int, end: int, dst_multicast: bool) -> None:
    """Check the TLV options of a hop-by-hop or destination options header.

    Only Pad1 and PadN are known; an unknown option's two high bits say what to do
    (RFC 8200 4.2): skip, discard, discard + parameter problem, or discard + parameter
    problem unless the destination was multicast.
    """
    i = start
    while i < end:
        opt = data[i]
        if opt == 0:  # Pad1
            i += 1
            continue
        if i + 2 > end:
            raise PacketError("ipv6.bad_option")
        olen = data[i + 1]
        if i + 2 + olen > end:
            raise PacketError("ipv6.bad_option")
        if opt != 1:  # not PadN: unknown
            action = opt >> 6
            if action == 1:
                raise PacketError("ipv6.unknown_option")
            if action == 2 or (action == 3 and not dst_multicast):
                raise PacketError("ipv6.unknown_option", (_ICMP_PARAM_PROBLEM, PP_OPTION, i))
            if action == 3:
                raise PacketError("ipv6.unknown_option")
        i += 2 + olen


def walk_extensions(
    data: memoryview, offset: int, nh: int, dst_multicast: bool, first: bool
) -> tuple[int, int, int]:
    """Walk extension headers from ``offset`` whose type is ``nh``.

    Returns (next header, offset of that header, offset of the fragment header or -1).
    Stops at the first header that is not an extension header, or at a fragment header
    that is not atomic.  ``first`` says ``offset`` directly follows the fixed header (the
    only place a hop-by-hop header may be); pointers in ICMP errors are relative to
    ``data``, which callers make the whole packet.
    """
    n = len(data)
    nh_field = 6 if first else -1
    while True:
        if nh == NH_HOPOPTS or nh == NH_DSTOPTS or nh == NH_ROUTING:
            if nh == NH_HOPOPTS and not (first and offset == HEADER_LEN):
                raise PacketError(
                    "ipv6.misplaced_hop_by_hop", (_ICMP_PARAM_PROBLEM, PP_NEXT_HEADER, max(nh_field, 0))
                )
            if offset + 8 > n:
                raise PacketError("ipv6.truncated_extension")
            hlen = (data[offset + 1] + 1) << 3
            if offset + hlen > n:
                raise PacketError("ipv6.truncated_extension")
            if nh == NH_ROUTING:
                if data[offset + 3] != 0:
                    # No routing type is implemented; RFC 8200 4.4 asks for a parameter
                    # problem pointing at the routing type when segments are left.
                    raise PacketError(
                        "ipv6.routing_header", (_ICMP_PARAM_PROBLEM, PP_HEADER_FIELD, offset + 2)
                    )
            else:
                _walk_options(data, offset + 2, offset + hlen, dst_multicast)
            nh_field = offset
            nh = data[offset]
            offset += hlen
        elif nh == NH_FRAGMENT:
            if offset + 8 > n:
                raise PacketError("ipv6.truncated_extension")
            nxt, _res, offlag, _ident = FRAGMENT.unpack_from(data, offset)
            if offlag & 0xFFF9 == 0:
                # Atomic fragment (RFC 6946): not part of any reassembly.
                nh_field = offset
                nh = nxt
                offset += 8
                continue
            return nh, offset, offset
        else:
            return nh, offset, -1


def parse_ipv6(data: memoryview) -> IPv6Packet:
    """Parse the fixed header and walk the extension headers."""
    n = len(data)
    if n < HEADER_LEN:
        raise PacketError("ipv6.truncated")
    vtf, plen, nh, hop_limit, src, dst = HEADER.unpack_from(data)
    if vtf >> 28 != 6:
        raise PacketError("ipv6.bad_version")
    if plen == 0 and nh == NH_HOPOPTS:
        raise PacketError("ipv6.jumbogram")
    end = HEADER_LEN + plen
    if end > n:
        raise PacketError("ipv6.truncated")
    packet = data[:end]
    dst_multicast = dst[0] == 0xFF
    nh, offset, frag_at = walk_extensions(packet, HEADER_LEN, nh, dst_multicast, True)
    frag = None
    unfrag = None
    if frag_at >= 0:
        nxt, _res, offlag, ident = FRAGMENT.unpack_from(packet, frag_at)
        frag = (offlag & 0xFFF8, bool(offlag & 1), ident, nxt)
        unfrag = packet[:frag_at]
        offset = frag_at + 8
        nh = NH_FRAGMENT
    return IPv6Packet(
        src, dst, nh, hop_limit, (vtf >> 20) & 0xFF, vtf & 0xFFFFF, frag, unfrag, packet, packet[offset:]
    )


def build_ipv6_header(
    src: bytes, dst: bytes, nh: int, payload_len: int, *, hop_limit: int = 64, tclass: int = 0, flow: int = 0
) -> bytes:
    if payload_len > 0xFFFF:
        raise ValueError(f"IPv6 payload too large: {payload_len}")
    return HEADER.pack(0x60000000 | (tclass << 20) | flow, payload_len, nh, hop_limit, src, dst)


def build_ipv6(
    src: bytes, dst: bytes, nh: int, payload: bytes | bytearray | memoryview, *, hop_limit: int = 64
) -> bytes:
    return HEADER.pack(0x60000000, len(payload), nh, hop_limit, src, dst) + bytes(payload)


def is_unicast_source(addr: bytes) -> bool:
    """Whether a received source may be answered: not multicast, unspecified or loopback."""
    if addr[0] == 0xFF:
        return False
    return addr[:15] != b"\x00" * 15 or addr[15] > 1


def is_unicast_destination(addr: bytes) -> bool:
    return addr[0] != 0xFF and (addr[:15] != b"\x00" * 15 or addr[15] > 1)
