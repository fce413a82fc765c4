"""``Stack``: IP packets and time in, IP packets and events out (sans-IO, aioquic-style).

The stack impersonates every destination: a SYN to any address and port becomes a
``TcpConnectionRequest`` carrying the original destination, and the owner decides
whether the handshake completes (accept), is refused with a RST as a closed port would
(refuse) or is ignored (drop), so it can first find out what the real server says.

This module holds the IP input path (header checks, reassembly, TTL) and the owner's
packet/event/timer loop; the parts it dispatches to live beside it: ``tcp_table`` (TCP
demultiplexing and the connection table), ``udp_endpoint`` (UDP flows), ``icmp_endpoint``
(echo and errors, path MTU learning) and ``output`` (IP wrapping and fragmentation).
"""

from __future__ import annotations

import logging

from netstack.config import StackConfig
from netstack.counters import Counters
from netstack.errors import PacketError
from netstack.events import Event
from netstack.fragments import Reassembler
from netstack.icmp import (
    V4_DEST_UNREACH,
    V4_PROTO_UNREACH,
    V4_TIME_EXCEEDED,
    V6_PARAM_PROBLEM,
    V6_TIME_EXCEEDED,
)
from netstack.ipv4 import PROTO_ICMP, PROTO_TCP, PROTO_UDP, parse_ipv4
from netstack.ipv4 import is_unicast_source as v4_unicast_src
from netstack.ipv6 import NH_ICMPV6, NH_NONE, build_ipv6, parse_ipv6, walk_extensions
from netstack.ipv6 import is_unicast_source as v6_unicast_src
from netstack.tcp_table import TcpTable
from netstack.udp_endpoint import UdpEndpoint

log = logging.getLogger(__name__)

__all__ = ["Stack"]


class Stack(TcpTable, UdpEndpoint):
    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = cfg = config or StackConfig()
        self.counters = Counters()
        self._init_output()
        self._init_tcp()
        self._init_icmp()
        self._init_udp()
        self._frag4 = Reassembler(
            self.counters,
            "frag4",
            timeout=cfg.frag_timeout_v4,
            max_bytes=cfg.frag_max_bytes,
            max_datagrams=cfg.frag_max_datagrams,
            max_fragments=cfg.frag_max_fragments,
            max_size=0xFFFF - 20,
        )
        self._frag6 = Reassembler(
            self.counters,
            "frag6",
            timeout=cfg.frag_timeout_v6,
            max_bytes=cfg.frag_max_bytes,
            max_datagrams=cfg.frag_max_datagrams,
            max_fragments=cfg.frag_max_fragments,
        )

    # ------------------------------------------------------------------ input

    def receive_packet(self, packet: bytes | memoryview, now: float, trusted: bool = False) -> None:
        """Process one IP packet.  ``trusted``: the link vouched for its integrity (the
        WireGuard AEAD did), so inner TCP/UDP/ICMP checksums are not verified again.

        The stack may keep views into ``packet`` (queued out-of-order TCP data), so pass a
        buffer that is not reused afterwards.
        """
        self._now = now
        try:
            data = packet if isinstance(packet, memoryview) else memoryview(packet)
            if not data:
                raise PacketError("ip.empty")
            version = data[0] >> 4
            if version == 4:
                self._receive_v4(data, now, not trusted)
            elif version == 6:
                self._receive_v6(data, now, not trusted)
            else:
                raise PacketError("ip.bad_version")
        except PacketError as e:
            self.counters[e.reason] += 1
        except Exception:  # noqa: BLE001 - bad input must never take the owner down
            self.counters["stack.internal_error"] += 1
            log.exception("netstack: error processing a packet")

    def _receive_v4(self, data: memoryview, now: float, verify: bool) -> None:
        p = parse_ipv4(data)
        if not v4_unicast_src(p.src):
            raise PacketError("ipv4.bad_source")
        if p.mf or p.frag_offset:
            if p.frag_offset + len(p.payload) + len(p.header) > 0xFFFF:
                raise PacketError("frag4.too_big")
            first = (bytes(p.header), bytes(p.header) + bytes(p.payload[:8])) if p.frag_offset == 0 else None
            done = self._frag4.add(
                (p.src, p.dst, p.proto, p.ident), p.frag_offset, p.mf, p.payload, now, first
            )
            if done is None:
                return
            payload, (header, _quote) = done  # type: ignore[misc]
            p.payload = memoryview(payload)
            p.header = memoryview(header)  # type: ignore[arg-type]
            p.mf = False
            p.frag_offset = 0
        if self.config.router_hop and p.ttl <= 1:
            self._icmp_error_v4(p, V4_TIME_EXCEEDED, 0, from_own=True)
            raise PacketError("ipv4.ttl_exceeded")
        proto = p.proto
        if proto == PROTO_TCP:
            self._tcp_input(p.src, p.dst, p.payload, False, verify)
        elif proto == PROTO_UDP:
            self._udp_input_v4(p, verify)
        elif proto == PROTO_ICMP:
            self._icmp_input_v4(p, verify)
        else:
            self._icmp_error_v4(p, V4_DEST_UNREACH, V4_PROTO_UNREACH)
            raise PacketError("ipv4.unknown_protocol")

    def _receive_v6(self, data: memoryview, now: float, verify: bool) -> None:
        try:
            p = parse_ipv6(data)
        except PacketError as e:
            if e.icmp is not None and len(data) >= 40:
                self._icmp_error_v6_raw(data, e.icmp)
            raise
        if not v6_unicast_src(p.src) and p.proto != NH_ICMPV6:
            raise PacketError("ipv6.bad_source")
        if p.frag is not None:
            offset, more, ident, nh = p.frag
            assert p.unfragmentable is not None
            first = (bytes(p.unfragmentable), nh, bytes(p.packet[:1232])) if offset == 0 else None
            done = self._frag6.add((p.src, p.dst, ident), offset, more, p.payload, now, first)
            if done is None:
                return
            payload, (_unfrag, first_nh, _quote) = done  # type: ignore[misc]
            view = memoryview(payload)
            nh, off, frag_at = walk_extensions(view, 0, first_nh, p.dst[0] == 0xFF, False)
            if frag_at >= 0:
                raise PacketError("ipv6.nested_fragment")
            p.proto = nh
            p.payload = view[off:]
            p.frag = None
            # What ICMP errors quote for the reassembled packet: as if it came unfragmented.
            p.packet = memoryview(build_ipv6(p.src, p.dst, first_nh, payload, hop_limit=p.hop_limit))
        if self.config.router_hop and p.hop_limit <= 1:
            self._icmp_error_v6(p, V6_TIME_EXCEEDED, 0, from_own=True)
            raise PacketError("ipv6.hop_limit_exceeded")
        proto = p.proto
        if proto == PROTO_TCP:
            self._tcp_input(p.src, p.dst, p.payload, True, verify)
        elif proto == PROTO_UDP:
            self._udp_input_v6(p, verify)
        elif proto == NH_ICMPV6:
            self._icmp_input_v6(p, verify)
        elif proto == NH_NONE:
            raise PacketError("ipv6.no_next_header")
        else:
            # RFC 8200 4: unrecognised next header -> parameter problem, code 1.  The
            # pointer is approximate when extension headers precede it (first header only).
            self._icmp_error_v6(p, V6_PARAM_PROBLEM, 1, value=6)
            raise PacketError("ipv6.unknown_protocol")

    # ------------------------------------------------------------------ owner loop

    def packets_to_send(self) -> list[bytes]:
        """Whole IP packets to put on the link, in order."""
        self._flush()
        out = self._out
        if out:
            self._out = []
        return out

    def next_event(self) -> Event | None:
        if self._dirty:
            self._flush()
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """When ``handle_timer`` should next be called, or None."""
        self._flush()
        best = self._tcp_next_timer()
        for t in (self._frag4.next_timer(), self._frag6.next_timer(), self._udp.next_timer()):
            if t is not None and (best is None or t < best):
                best = t
        return best

    def handle_timer(self, now: float) -> None:
        self._now = now
        try:
            self._handle_timer(now)
        except Exception:  # noqa: BLE001
            self.counters["stack.internal_error"] += 1
            log.exception("netstack: error in timer handling")

    def _handle_timer(self, now: float) -> None:
        self._flush()
        self._tcp_handle_timer(now)
        # RFC 792 / RFC 8200 4.5: time exceeded (code 1) when the first fragment had arrived.
        for _header, quote in self._frag4.expire(now):  # type: ignore[misc]
            self._icmp_error_v4_raw(quote, quote[12:16], quote[16:20], V4_TIME_EXCEEDED, 1)
        for _unfrag, _nh, quote in self._frag6.expire(now):  # type: ignore[misc]
            self._icmp_error_v6_raw(memoryview(quote), (V6_TIME_EXCEEDED, 1, 0))
        self._udp_expire(now)
