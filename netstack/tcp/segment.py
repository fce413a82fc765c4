"""TCP segment parsing and building (RFC 9293 header, RFC 7323/2018/6691 options).

Parsing and building use precompiled ``struct.Struct`` objects and return the payload as a
``memoryview`` of the caller's buffer (no copy).  Checksums are summed with integer
arithmetic from ``netstack.checksum``; the header and the payload are summed separately so
the payload is never copied just to be checksummed.
"""

from __future__ import annotations

import struct

FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80

PROTO_TCP = 6
HEADER_LEN = 20
MAX_OPTIONS_LEN = 40

_HDR = struct.Struct("!HHIIBBHHH")
_II = struct.Struct("!II")
_H = struct.Struct("!H")
_MSS = struct.Struct("!BBH")
_TS_ALIGNED = struct.Struct("!BBBBII")  # NOP NOP TS(8) len(10) val ecr -- also SACKOK+TS
_TS_PREFIX = b"\x01\x01\x08\x0a"
_SACKOK_TS_PREFIX = b"\x04\x02\x08\x0a"
_SACKOK_ALIGNED = b"\x01\x01\x04\x02"


class SegmentError(ValueError):
    """A segment that cannot be parsed; ``reason`` is short and usable as a counter key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TcpSegment:
    """One TCP segment, options decoded.  ``window`` is the raw (unscaled) header field."""

    __slots__ = (
        "src_port",
        "dst_port",
        "seq",
        "ack",
        "flags",
        "window",
        "urgent",
        "mss",
        "wscale",
        "sack_permitted",
        "sack_blocks",
        "ts_val",
        "ts_ecr",
        "payload",
    )

    def __init__(
        self,
        src_port: int = 0,
        dst_port: int = 0,
        seq: int = 0,
        ack: int = 0,
        flags: int = 0,
        window: int = 0,
        *,
        urgent: int = 0,
        mss: int | None = None,
        wscale: int | None = None,
        sack_permitted: bool = False,
        sack_blocks: tuple[tuple[int, int], ...] = (),
        ts_val: int | None = None,
        ts_ecr: int | None = None,
        payload: bytes | memoryview = b"",
    ) -> None:
        self.src_port = src_port
        self.dst_port = dst_port
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.urgent = urgent
        self.mss = mss
        self.wscale = wscale
        self.sack_permitted = sack_permitted
        self.sack_blocks = sack_blocks
        self.ts_val = ts_val
        self.ts_ecr = ts_ecr
        self.payload = payload

    @property
    def seg_len(self) -> int:
        """Sequence space the segment occupies: payload plus one each for SYN and FIN."""
        return len(self.payload) + (self.flags & SYN != 0) + (self.flags & FIN != 0)

    def __repr__(self) -> str:
        names = "".join(
            n for n, f in (("F", FIN), ("S", SYN), ("R", RST), ("P", PSH), ("A", ACK)) if self.flags & f
        )
        extra = []
        if self.mss is not None:
            extra.append(f"mss={self.mss}")
        if self.wscale is not None:
            extra.append(f"ws={self.wscale}")
        if self.sack_permitted:
            extra.append("sackok")
        if self.sack_blocks:
            extra.append(f"sack={list(self.sack_blocks)}")
        if self.ts_val is not None:
            extra.append(f"ts={self.ts_val}/{self.ts_ecr}")
        return (
            f"<TcpSegment {self.src_port}->{self.dst_port} [{names}] seq={self.seq} ack={self.ack} "
            f"win={self.window} len={len(self.payload)}{' ' if extra else ''}{' '.join(extra)}>"
        )


def parse_segment(data: bytes | bytearray | memoryview) -> TcpSegment:
    """Decode a TCP header and its options.  The checksum is not verified here."""
    n = len(data)
    if n < HEADER_LEN:
        raise SegmentError("truncated")
    sp, dp, seq, ack, off, flags, win, _csum, urg = _HDR.unpack_from(data)
    hl = (off >> 4) << 2
    if hl < HEADER_LEN or hl > n:
        raise SegmentError("bad_data_offset")
    seg = TcpSegment.__new__(TcpSegment)
    seg.src_port = sp
    seg.dst_port = dp
    seg.seq = seq
    seg.ack = ack
    seg.flags = flags
    seg.window = win
    seg.urgent = urg
    seg.mss = None
    seg.wscale = None
    seg.sack_permitted = False
    seg.sack_blocks = ()
    seg.ts_val = None
    seg.ts_ecr = None
    seg.payload = memoryview(data)[hl:]
    if hl > HEADER_LEN:
        if hl == 32 and data[20:24] == _TS_PREFIX:
            seg.ts_val, seg.ts_ecr = _II.unpack_from(data, 24)
        else:
            _parse_options(seg, data, hl)
    return seg


def _parse_options(seg: TcpSegment, data: bytes | bytearray | memoryview, end: int) -> None:
    i = HEADER_LEN
    while i < end:
        kind = data[i]
        if kind == 0:  # EOL
            return
        if kind == 1:  # NOP
            i += 1
            continue
        if i + 1 >= end:
            raise SegmentError("bad_option")
        ln = data[i + 1]
        if ln < 2 or i + ln > end:
            raise SegmentError("bad_option")
        if kind == 2:
            if ln != 4:
                raise SegmentError("bad_option")
            seg.mss = _H.unpack_from(data, i + 2)[0]
        elif kind == 3:
            if ln != 3:
                raise SegmentError("bad_option")
            seg.wscale = min(data[i + 2], 14)  # RFC 7323 2.3: larger shifts are used as 14
        elif kind == 4:
            if ln != 2:
                raise SegmentError("bad_option")
            seg.sack_permitted = True
        elif kind == 5:
            if (ln - 2) % 8 or ln == 2:
                raise SegmentError("bad_option")
            seg.sack_blocks = tuple(_II.unpack_from(data, j) for j in range(i + 2, i + ln, 8))
        elif kind == 8:
            if ln != 10:
                raise SegmentError("bad_option")
            seg.ts_val, seg.ts_ecr = _II.unpack_from(data, i + 2)
        i += ln


def build_options(
    mss: int | None = None,
    wscale: int | None = None,
    sack_permitted: bool = False,
    ts_val: int | None = None,
    ts_ecr: int | None = None,
    sack_blocks: tuple[tuple[int, int], ...] | list[tuple[int, int]] = (),
) -> bytes:
    """Options in the layout Linux uses (each piece 32-bit aligned), SACK blocks cut to fit 40 bytes."""
    parts = []
    used = 0
    if mss is not None:
        parts.append(_MSS.pack(2, 4, mss))
        used += 4
    if ts_val is not None:
        prefix = 0x0402 if sack_permitted else 0x0101
        parts.append(_TS_ALIGNED.pack(prefix >> 8, prefix & 0xFF, 8, 10, ts_val, ts_ecr or 0))
        used += 12
    elif sack_permitted:
        parts.append(_SACKOK_ALIGNED)
        used += 4
    if wscale is not None:
        parts.append(bytes((1, 3, 3, wscale)))
        used += 4
    if sack_blocks:
        room = (MAX_OPTIONS_LEN - used - 4) // 8
        blocks = sack_blocks[:room]
        if blocks:
            parts.append(bytes((1, 1, 5, 2 + 8 * len(blocks))))
            parts.extend(_II.pack(left, right) for left, right in blocks)
    return b"".join(parts)


def build_raw(
    src_port: int,
    dst_port: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    options: bytes,
    payload: bytes | bytearray | memoryview,
    pseudo_sum: int,
) -> bytes:
    """Header + options + payload with the checksum set.

    ``pseudo_sum`` is the pseudo-header sum *without* the TCP length (the connection
    precomputes it once per address pair); the length is added here.
    """
    hl = HEADER_LEN + len(options)
    plen = len(payload)
    hdr = _HDR.pack(src_port, dst_port, seq, ack, hl << 2, flags, window, 0, 0) + options
    total = pseudo_sum + hl + plen + int.from_bytes(hdr, "big")
    if plen:
        p = int.from_bytes(payload, "big")
        total += p << 8 if plen & 1 else p
    if total:
        total %= 0xFFFF
        csum = (~total & 0xFFFF) if total else 0
    else:
        csum = 0xFFFF
    hdr = hdr[:16] + _H.pack(csum) + hdr[18:]
    return hdr + payload if plen else hdr


def pseudo_sum_for(src_ip: bytes, dst_ip: bytes) -> int:
    """Pseudo-header sum for TCP between two packed addresses (IPv4 or IPv6), length excluded."""
    return int.from_bytes(src_ip, "big") + int.from_bytes(dst_ip, "big") + PROTO_TCP


def build_segment(seg: TcpSegment, src_ip: bytes, dst_ip: bytes) -> bytes:
    """Encode ``seg`` with its options and a correct checksum for the given packed addresses."""
    opts = build_options(seg.mss, seg.wscale, seg.sack_permitted, seg.ts_val, seg.ts_ecr, seg.sack_blocks)
    return build_raw(
        seg.src_port,
        seg.dst_port,
        seg.seq & 0xFFFFFFFF,
        seg.ack & 0xFFFFFFFF,
        seg.flags,
        seg.window,
        opts,
        seg.payload,
        pseudo_sum_for(src_ip, dst_ip),
    )
