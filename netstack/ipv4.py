"""IPv4 header parsing and building (RFC 791, RFC 1122).

Parsing checks what a receiving host must check before it trusts a length: version, IHL,
total length against the buffer, and the header checksum.  Options are skipped (a host
may ignore them; source routing in particular is never honoured).  Link-layer padding after
the total length is cut off.  Addresses stay packed ``bytes`` on the hot path; text forms
are made only when an event leaves the stack.
"""

from __future__ import annotations

import struct

from netstack.checksum import checksum, verify
from netstack.errors import PacketError

HEADER = struct.Struct("!BBHHHBBH4s4s")
HEADER_LEN = 20

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17

FLAG_DF = 0x4000
FLAG_MF = 0x2000
OFFSET_MASK = 0x1FFF
MAX_PACKET = 0xFFFF


class IPv4Packet:
    """One received IPv4 datagram (or fragment): header fields and a view of its payload."""

    __slots__ = ("src", "dst", "proto", "ttl", "tos", "ident", "df", "mf", "frag_offset", "header", "payload")
    version = 4

    def __init__(
        self,
        src: bytes,
        dst: bytes,
        proto: int,
        ttl: int,
        tos: int,
        ident: int,
        df: bool,
        mf: bool,
        frag_offset: int,
        header: memoryview,
        payload: memoryview,
    ) -> None:
        self.src = src
        self.dst = dst
        self.proto = proto
        self.ttl = ttl
        self.tos = tos
        self.ident = ident
        self.df = df
        self.mf = mf
        self.frag_offset = frag_offset
        """In bytes (the wire field times 8)."""
        self.header = header
        """The header as received, options included (quoted back in ICMP errors)."""
        self.payload = payload

    @property
    def is_fragment(self) -> bool:
        return self.mf or self.frag_offset != 0


def parse_ipv4(data: memoryview) -> IPv4Packet:
    """Parse and check an IPv4 header; raise ``PacketError`` on anything a host must drop."""
    n = len(data)
    if n < HEADER_LEN:
        raise PacketError("ipv4.truncated")
    vihl, tos, total, ident, frag, ttl, proto, _csum, src, dst = HEADER.unpack_from(data)
    if vihl >> 4 != 4:
        raise PacketError("ipv4.bad_version")
    ihl = (vihl & 0x0F) << 2
    if ihl < HEADER_LEN:
        raise PacketError("ipv4.bad_ihl")
    if total < ihl:
        raise PacketError("ipv4.bad_total_length")
    if total > n:
        raise PacketError("ipv4.truncated")
    header = data[:ihl]
    if not verify(header):
        raise PacketError("ipv4.bad_checksum")
    if frag & 0x8000:
        raise PacketError("ipv4.reserved_flag")
    return IPv4Packet(
        src,
        dst,
        proto,
        ttl,
        tos,
        ident,
        bool(frag & FLAG_DF),
        bool(frag & FLAG_MF),
        (frag & OFFSET_MASK) << 3,
        header,
        data[ihl:total],
    )


def build_ipv4_header(
    src: bytes,
    dst: bytes,
    proto: int,
    payload_len: int,
    *,
    ttl: int = 64,
    ident: int = 0,
    df: bool = True,
    mf: bool = False,
    frag_offset: int = 0,
    tos: int = 0,
) -> bytes:
    """A 20-byte header with its checksum; ``frag_offset`` in bytes (a multiple of 8)."""
    frag = (FLAG_DF if df else 0) | (FLAG_MF if mf else 0) | (frag_offset >> 3)
    total = HEADER_LEN + payload_len
    if total > MAX_PACKET:
        raise ValueError(f"IPv4 packet too large: {total}")
    hdr = HEADER.pack(0x45, tos, total, ident & 0xFFFF, frag, ttl, proto, 0, src, dst)
    csum = checksum(hdr)
    return hdr[:10] + csum.to_bytes(2, "big") + hdr[12:]


def build_ipv4(
    src: bytes,
    dst: bytes,
    proto: int,
    payload: bytes | bytearray | memoryview,
    *,
    ttl: int = 64,
    ident: int = 0,
    df: bool = True,
    tos: int = 0,
) -> bytes:
    """A whole unfragmented IPv4 packet."""
    return build_ipv4_header(src, dst, proto, len(payload), ttl=ttl, ident=ident, df=df, tos=tos) + bytes(
        payload
    )


def is_unicast_source(addr: bytes) -> bool:
    """Whether a received source address may be answered (RFC 1122 3.2.1.3 martians)."""
    first = addr[0]
    return not (first == 0 or first == 127 or first >= 224)


def is_unicast_destination(addr: bytes) -> bool:
    """False for multicast, limited broadcast, 'this network' and loopback destinations.

    A subnet-directed broadcast cannot be recognised without knowing the subnet, which an
    interception stack does not have; it is treated as unicast.
    """
    first = addr[0]
    return not (first == 0 or first == 127 or first >= 224)
