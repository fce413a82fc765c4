"""The reset a stack sends for a segment that belongs to no connection (RFC 9293 3.10.7.1)."""

from __future__ import annotations

from .segment import ACK, FIN, RST, SYN, TcpSegment, build_raw, pseudo_sum_for


def rst_for(seg: TcpSegment, src_ip: bytes, dst_ip: bytes) -> bytes | None:
    """The RST answering ``seg``, sent from ``src_ip`` (the segment's destination) to ``dst_ip``.

    Returns None for an incoming RST: a reset is never answered with a reset.
    If the segment carries an ACK the reset takes its sequence number from that ACK;
    otherwise it has sequence 0 and acknowledges everything the segment occupied.
    """
    flags = seg.flags
    if flags & RST:
        return None
    if flags & ACK:
        seq, ack, out = seg.ack, 0, RST
    else:
        seg_len = len(seg.payload) + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        seq, ack, out = 0, (seg.seq + seg_len) & 0xFFFFFFFF, RST | ACK
    return build_raw(seg.dst_port, seg.src_port, seq, ack, out, 0, b"", b"", pseudo_sum_for(src_ip, dst_ip))
