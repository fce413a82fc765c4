"""``Stack``: IP packets and time in, IP packets and events out (sans-IO, aioquic-style).

The stack impersonates every destination: a SYN to any address and port becomes a
``TcpConnectionRequest`` carrying the original destination, and the owner decides
whether the handshake completes (accept), is refused with a RST as a closed port would
(refuse) or is ignored (drop), so it can first find out what the real server says.

Work is batched: incoming segments only mark their connection dirty, and a dirty
connection's segments, events and timer are collected once, when the owner next asks for
packets, events or the timer.  A burst of segments read from a link in one go therefore
costs one pass per connection, and the TCP core can answer the burst with one ACK.

Timers of all connections live in one heap with lazy deletion: a connection has at most one
live entry (pushed only when its deadline moves earlier); an entry that fires early is
simply re-armed from ``get_timer()``.
"""

from __future__ import annotations

import heapq
import logging
import os
import socket
from collections import OrderedDict, deque
from dataclasses import replace

from netstack.checksum import ones_sum, pseudo_header_sum
from netstack.config import StackConfig
from netstack.counters import Counters
from netstack.errors import PacketError
from netstack.events import (
    Address,
    Event,
    IcmpEchoAnswered,
    IcmpEchoRequest,
    TcpConnectionRequest,
    TcpEvent,
    UdpDatagram,
    UdpFlowExpired,
)
from netstack.fragments import Reassembler, fragment_ipv4, fragment_ipv6
from netstack.icmp import (
    V4_DEST_UNREACH,
    V4_ECHO_REPLY,
    V4_ECHO_REQUEST,
    V4_ERRORS,
    V4_FRAG_NEEDED,
    V4_PORT_UNREACH,
    V4_PROTO_UNREACH,
    V4_TIME_EXCEEDED,
    V6_DEST_UNREACH,
    V6_ECHO_REPLY,
    V6_ECHO_REQUEST,
    V6_MLD,
    V6_NEIGHBOUR,
    V6_PACKET_TOO_BIG,
    V6_PARAM_PROBLEM,
    V6_PORT_UNREACH,
    V6_TIME_EXCEEDED,
    TokenBucket,
    build_icmpv4,
    build_icmpv6,
    echo_reply_v4,
    echo_reply_v6,
    error_v4,
    error_v6,
    parse_icmpv4,
    parse_icmpv6,
)
from netstack.ipv4 import HEADER as IPV4_HEADER
from netstack.ipv4 import PROTO_ICMP, PROTO_TCP, PROTO_UDP, IPv4Packet, build_ipv4, parse_ipv4
from netstack.ipv4 import is_unicast_destination as v4_unicast_dst
from netstack.ipv4 import is_unicast_source as v4_unicast_src
from netstack.ipv6 import HEADER as IPV6_HEADER
from netstack.ipv6 import NH_ICMPV6, NH_NONE, IPv6Packet, build_ipv6, parse_ipv6, walk_extensions
from netstack.ipv6 import is_unicast_destination as v6_unicast_dst
from netstack.ipv6 import is_unicast_source as v6_unicast_src
from netstack.tcp.connection import TcpConnection, TcpState
from netstack.tcp.events import Closed, Connected
from netstack.tcp.iss import new_iss
from netstack.tcp.reset import rst_for
from netstack.tcp.segment import ACK, FIN, RST, SYN, SegmentError, TcpSegment, parse_segment
from netstack.udp import PROTO_UDP as _UDP
from netstack.udp import UdpFlows, build_udp, parse_udp

log = logging.getLogger(__name__)

ConnKey = tuple[bytes, int, bytes, int]
"""(remote ip, remote port, local ip, local port): how an incoming segment finds its connection."""

_CLOSED = TcpState.CLOSED
_V4_INFO_TYPES = frozenset({0, 8, 13, 14, 15, 16, 17, 18})


class _Conn:
    """A TCP connection with what the stack needs to wrap its segments in IP."""

    __slots__ = ("cid", "conn", "key", "v6", "local_ip", "remote_ip", "half_open", "ident", "base_sum", "ttl")

    def __init__(self, cid: int, conn: TcpConnection, key: ConnKey, v6: bool, ttl: int) -> None:
        self.cid = cid
        self.conn = conn
        self.key = key
        self.v6 = v6
        self.remote_ip = key[0]
        self.local_ip = key[2]
        self.half_open = True
        self.ident = 0
        self.ttl = ttl
        # Sum of the IPv4 header words that never change on this connection, so each
        # packet's header checksum is two additions and a fold.
        self.base_sum = (
            ones_sum(IPV4_HEADER.pack(0x45, 0, 0, 0, 0x4000, ttl, PROTO_TCP, 0, key[2], key[0]))
            if not v6
            else 0
        )

    def wrap(self, segment: bytes) -> bytes:
        n = len(segment)
        if self.v6:
            return (
                IPV6_HEADER.pack(0x60000000, n, PROTO_TCP, self.ttl, self.local_ip, self.remote_ip) + segment
            )
        ident = self.ident = (self.ident + 1) & 0xFFFF
        total = 20 + n
        s = self.base_sum + total + ident
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        return (
            IPV4_HEADER.pack(
                0x45,
                0,
                total,
                ident,
                0x4000,
                self.ttl,
                PROTO_TCP,
                (~s) & 0xFFFF,
                self.local_ip,
                self.remote_ip,
            )
            + segment
        )


class _Pending:
    """A SYN waiting for the owner's accept/refuse/drop."""

    __slots__ = ("key", "syn", "v6", "created")

    def __init__(self, key: ConnKey, syn: TcpSegment, v6: bool, created: float) -> None:
        self.key = key
        self.syn = syn
        self.v6 = v6
        self.created = created


def _pack_ip(ip: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)


class Stack:
    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = cfg = config or StackConfig()
        self.counters = Counters()
        self._out: list[bytes] = []
        self._events: deque[Event] = deque()
        self._now = 0.0
        self._next_id = 1
        self._conns: dict[int, _Conn] = {}
        self._by_key: dict[ConnKey, int] = {}
        self._pending: OrderedDict[int, _Pending] = OrderedDict()
        self._pending_by_key: dict[ConnKey, int] = {}
        self._syn_received = 0
        self._lingering: OrderedDict[int, _Conn] = OrderedDict()
        self._dirty: dict[int, _Conn] = {}
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, float] = {}
        self._tcp4 = replace(cfg.tcp, mss=min(cfg.tcp.mss, cfg.mtu - 40))
        self._tcp6 = replace(cfg.tcp, mss=min(cfg.tcp.mss, cfg.mtu - 60))
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
        self._udp = UdpFlows(self.counters, idle_timeout=cfg.udp_idle_timeout, max_flows=cfg.max_udp_flows)
        self._icmp_bucket = TokenBucket(cfg.icmp_error_rate, cfg.icmp_error_burst)
        self._rst_bucket = TokenBucket(cfg.rst_rate, cfg.rst_burst)
        self._own: set[bytes] = {_pack_ip(a) for a in cfg.addresses}
        self._own4 = next((a for a in self._own if len(a) == 4), None)
        self._own6 = next((a for a in self._own if len(a) == 16), None)
        self._ip_ident = int.from_bytes(os.urandom(2), "big")
        self._ntop: dict[bytes, str] = {}
        self._pmtu: OrderedDict[bytes, tuple[int, float]] = OrderedDict()

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
        elif proto == _UDP:
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

    # ------------------------------------------------------------------ TCP

    def _tcp_input(self, src: bytes, dst: bytes, payload: memoryview, v6: bool, verify: bool) -> None:
        if len(payload) < 20:
            raise PacketError("tcp.truncated")
        if verify and ones_sum(payload, pseudo_header_sum(src, dst, PROTO_TCP, len(payload))) != 0xFFFF:
            raise PacketError("tcp.bad_checksum")
        try:
            seg = parse_segment(payload)
        except SegmentError as e:
            raise PacketError("tcp." + e.reason) from None
        key = (src, seg.src_port, dst, seg.dst_port)
        cid = self._by_key.get(key)
        flags = seg.flags
        if cid is not None:
            c = self._conns[cid]
            if cid in self._lingering and flags & (SYN | ACK | RST) == SYN:
                # A new connection reusing the 4-tuple of one in TIME_WAIT (RFC 9293
                # 3.10.7.4, RFC 6191): the old one has nothing left to protect here.
                self._remove_conn(c)
                self.counters["tcp.time_wait_reused"] += 1
            else:
                try:
                    c.conn.receive(seg, self._now)
                except Exception:  # noqa: BLE001
                    self._fail_conn(c)
                    return
                if seg.payload:
                    # Data: batch, so a burst read from the link is answered with few ACKs.
                    self._dirty[cid] = c
                else:
                    # A pure ACK: let the sender refill its window now, once per ACK, as a
                    # kernel does; batching ACKs would make the congestion window look
                    # application-limited and stall its growth.
                    self._dirty.pop(cid, None)
                    try:
                        self._flush_conn(c)
                    except Exception:  # noqa: BLE001
                        self._fail_conn(c)
                return
        pid = self._pending_by_key.get(key)
        if pid is not None:
            if flags & RST:
                self._forget_pending(pid)
                self._events.append(TcpEvent(pid, Closed("reset")))
                raise PacketError("tcp.reset_while_pending")
            raise PacketError("tcp.while_pending")
        if flags & (SYN | ACK | RST) == SYN:
            self._new_syn(key, seg, v6)
            return
        if flags & RST:
            raise PacketError("tcp.no_connection_rst")
        self._send_rst(seg, src, dst, v6)
        raise PacketError("tcp.no_connection")

    def _new_syn(self, key: ConnKey, seg: TcpSegment, v6: bool) -> None:
        if seg.flags & FIN:
            raise PacketError("tcp.syn_fin")
        src, sport, dst, dport = key
        if sport == 0 or dport == 0:
            raise PacketError("tcp.port_zero")
        if v6:
            if not (v6_unicast_src(src) and v6_unicast_dst(dst)):
                raise PacketError("tcp.syn_not_unicast")
        elif not v4_unicast_dst(dst):
            raise PacketError("tcp.syn_not_unicast")
        if len(self._pending) + self._syn_received >= self.config.max_half_open:
            raise PacketError("tcp.syn_flood")
        if len(self._pending) + len(self._conns) - len(self._lingering) >= self.config.max_connections:
            raise PacketError("tcp.connection_limit")
        pid = self._next_id
        self._next_id += 1
        self._pending[pid] = _Pending(key, seg, v6, self._now)
        self._pending_by_key[key] = pid
        self.counters["rx.tcp.syn"] += 1
        self._events.append(TcpConnectionRequest(pid, self._addr(src, sport), self._addr(dst, dport)))

    def _forget_pending(self, pid: int) -> _Pending | None:
        pend = self._pending.pop(pid, None)
        if pend is not None:
            del self._pending_by_key[pend.key]
        return pend

    def _send_rst(self, seg: TcpSegment, src: bytes, dst: bytes, v6: bool) -> None:
        """Answer a segment for no connection with the RFC 9293 reset, rate-limited."""
        if not self._rst_bucket.take(self._now):
            self.counters["tcp.rst_rate_limited"] += 1
            return
        rst = rst_for(seg, dst, src)
        if rst is None:
            return
        self.counters["tx.tcp.rst"] += 1
        self._send_ip(dst, src, PROTO_TCP, rst)

    def accept_tcp(self, conn_id: int) -> bool:
        """Complete the handshake of a requested connection.  False when the request is
        gone (the client reset it, or it timed out) or a limit forbids it."""
        pend = self._forget_pending(conn_id)
        if pend is None:
            return False
        src, sport, dst, dport = key = pend.key
        local = (dst, dport)
        remote = (src, sport)
        now = self._now
        cfg = self._tcp6 if pend.v6 else self._tcp4
        try:
            conn = TcpConnection.from_syn(pend.syn, local, remote, now, cfg, new_iss(local, remote, now))
        except Exception:  # noqa: BLE001 - a bad SYN must not take the owner down
            self.counters["stack.internal_error"] += 1
            log.exception("netstack: cannot create a connection for an accepted SYN")
            return False
        c = _Conn(conn_id, conn, key, pend.v6, self.config.ttl)
        self._conns[conn_id] = c
        self._by_key[key] = conn_id
        self._syn_received += 1
        self._dirty[conn_id] = c
        self.counters["rx.tcp.accepted"] += 1
        return True

    def refuse_tcp(self, conn_id: int) -> bool:
        """Answer a requested connection with a RST (a closed port)."""
        pend = self._forget_pending(conn_id)
        if pend is None:
            return False
        src, _sport, dst, _dport = pend.key
        rst = rst_for(pend.syn, dst, src)
        if rst is not None:
            self.counters["tx.tcp.refused"] += 1
            self._send_ip(dst, src, PROTO_TCP, rst)
        return True

    def drop_tcp(self, conn_id: int) -> bool:
        """Forget a requested connection without answering (a filtered port)."""
        if self._forget_pending(conn_id) is None:
            return False
        self.counters["tcp.dropped_by_owner"] += 1
        return True

    def tcp_send(self, conn_id: int, data: bytes | memoryview) -> int:
        """Queue data; returns how much the connection's send buffer took (0 when gone)."""
        c = self._conns.get(conn_id)
        if c is None:
            return 0
        try:
            n = c.conn.send(data)
        except Exception:  # noqa: BLE001
            self._fail_conn(c)
            return 0
        self._dirty[conn_id] = c
        return n

    def tcp_send_space(self, conn_id: int) -> int:
        c = self._conns.get(conn_id)
        return 0 if c is None else c.conn.send_space()

    def tcp_consumed(self, conn_id: int, n: int) -> None:
        c = self._conns.get(conn_id)
        if c is not None:
            try:
                c.conn.consumed(n)
            except Exception:  # noqa: BLE001
                self._fail_conn(c)
                return
            self._dirty[conn_id] = c

    def tcp_close(self, conn_id: int) -> None:
        c = self._conns.get(conn_id)
        if c is not None:
            try:
                c.conn.close()
            except Exception:  # noqa: BLE001
                self._fail_conn(c)
                return
            self._dirty[conn_id] = c

    def tcp_abort(self, conn_id: int) -> None:
        c = self._conns.get(conn_id)
        if c is not None:
            try:
                c.conn.abort()
            except Exception:  # noqa: BLE001
                self._fail_conn(c)
                return
            self._dirty[conn_id] = c

    def tcp_connection(self, conn_id: int) -> TcpConnection | None:
        """The connection's TCP core (for its state and statistics)."""
        c = self._conns.get(conn_id)
        return None if c is None else c.conn

    @property
    def tcp_connection_count(self) -> int:
        """Connections the owner may still use (not counting those lingering in TIME_WAIT)."""
        return len(self._conns) - len(self._lingering)

    @property
    def tcp_pending_count(self) -> int:
        return len(self._pending)

    def _flush(self) -> None:
        dirty = self._dirty
        while dirty:
            cid = next(iter(dirty))
            c = dirty.pop(cid)
            try:
                self._flush_conn(c)
            except Exception:  # noqa: BLE001 - one broken connection must not stop the rest
                self._fail_conn(c)

    def _fail_conn(self, c: _Conn) -> None:
        """A connection's core raised: count it, tell the owner it was reset, forget it."""
        self.counters["stack.internal_error"] += 1
        log.exception("netstack: TCP connection %d failed; dropping it", c.cid)
        self._remove_conn(c)
        self._events.append(TcpEvent(c.cid, Closed("reset")))

    def _flush_conn(self, c: _Conn) -> None:
        conn = c.conn
        now = self._now
        segments = conn.segments_to_send(now)
        if segments:
            out = self._out
            wrap = c.wrap
            for s in segments:
                out.append(wrap(s))
        closed = False
        events = self._events
        while (ev := conn.next_event()) is not None:
            if c.half_open and isinstance(ev, (Connected, Closed)):
                c.half_open = False
                self._syn_received -= 1
            if isinstance(ev, Closed):
                closed = True
            events.append(TcpEvent(c.cid, ev))
        if closed:
            for s in conn.segments_to_send(now):
                self._out.append(c.wrap(s))
        if conn.state is _CLOSED:
            self._remove_conn(c)
            return
        if closed:
            # TIME_WAIT: the owner is done with it, but it stays to answer a retransmitted
            # FIN until its timer; their number is bounded, the oldest go first.
            lingering = self._lingering
            lingering[c.cid] = c
            while len(lingering) > self.config.max_time_wait:
                _cid, old = lingering.popitem(last=False)
                self._remove_conn(old)
                self.counters["tcp.time_wait_evicted"] += 1
        t = conn.get_timer()
        if t is not None:
            armed = self._armed.get(c.cid)
            if armed is None or t < armed:
                self._armed[c.cid] = t
                heapq.heappush(self._heap, (t, c.cid))
                if len(self._heap) > 2 * len(self._armed) + 64:
                    self._heap = [(t2, cid) for cid, t2 in self._armed.items()]
                    heapq.heapify(self._heap)

    def _remove_conn(self, c: _Conn) -> None:
        if self._conns.pop(c.cid, None) is not None:
            if self._by_key.get(c.key) == c.cid:
                del self._by_key[c.key]
            if c.half_open:
                c.half_open = False
                self._syn_received -= 1
        self._armed.pop(c.cid, None)
        self._dirty.pop(c.cid, None)
        self._lingering.pop(c.cid, None)

    # ------------------------------------------------------------------ UDP

    def _udp_input_v4(self, p: IPv4Packet, verify: bool) -> None:
        sport, dport, data = parse_udp(p.payload, p.src, p.dst, verify, False)
        if not v4_unicast_dst(p.dst):
            raise PacketError("udp.not_unicast")
        self._udp_deliver(p.src, sport, p.dst, dport, data)

    def _udp_input_v6(self, p: IPv6Packet, verify: bool) -> None:
        sport, dport, data = parse_udp(p.payload, p.src, p.dst, verify, True)
        if not v6_unicast_dst(p.dst):
            raise PacketError("udp.not_unicast")
        self._udp_deliver(p.src, sport, p.dst, dport, data)

    def _udp_deliver(self, src: bytes, sport: int, dst: bytes, dport: int, data: memoryview) -> None:
        new, evicted = self._udp.touch((src, sport, dst, dport), self._now)
        if evicted is not None:
            self._events.append(
                UdpFlowExpired(self._addr(evicted[0], evicted[1]), self._addr(evicted[2], evicted[3]))
            )
        self.counters["rx.udp"] += 1
        self._events.append(UdpDatagram(self._addr(src, sport), self._addr(dst, dport), bytes(data), new))

    def udp_send(
        self, src: Address, dst: Address, data: bytes | memoryview, now: float | None = None
    ) -> None:
        """Send a datagram to a client: ``src`` is the address it appears to come from (the
        client's original destination), ``dst`` the client.  Fragmented above the MTU."""
        sip = _pack_ip(src[0])
        dip = _pack_ip(dst[0])
        if len(sip) != len(dip):
            raise ValueError("udp_send: mixed address families")
        self._now = max(self._now, now) if now is not None else self._now
        seg = build_udp(src[1], dst[1], data, sip, dip)
        self._send_ip(sip, dip, PROTO_UDP, seg)
        self.counters["tx.udp"] += 1
        self._udp.touch((dip, dst[1], sip, src[1]), self._now)

    def refuse_udp(self, src: Address, dst: Address, data: bytes = b"") -> None:
        """Answer a client's datagram (``src`` client, ``dst`` its destination) with ICMP
        port unreachable, as a closed port would, and forget its flow."""
        sip = _pack_ip(src[0])
        dip = _pack_ip(dst[0])
        self._udp.remove((sip, src[1], dip, dst[1]))
        seg = build_udp(src[1], dst[1], data[:1024], sip, dip)
        if len(sip) == 4:
            invoking = build_ipv4(sip, dip, PROTO_UDP, seg)
            self._icmp_error_v4_raw(invoking, sip, dip, V4_DEST_UNREACH, V4_PORT_UNREACH)
        else:
            invoking = build_ipv6(sip, dip, PROTO_UDP, seg)
            self._icmp_error_v6_raw(memoryview(invoking), (V6_DEST_UNREACH, V6_PORT_UNREACH, 0))

    @property
    def udp_flow_count(self) -> int:
        return len(self._udp)

    # ------------------------------------------------------------------ ICMP

    def _echo_allowed(self, dst: bytes) -> str:
        policy = self.config.echo_reply
        if policy == "any":
            return "reply"
        if policy == "own":
            return "reply" if dst in self._own else "no"
        if policy == "owner":
            return "owner"
        return "no"

    def _icmp_input_v4(self, p: IPv4Packet, verify: bool) -> None:
        payload = p.payload
        typ, _code = parse_icmpv4(payload, verify)
        if typ == V4_ECHO_REQUEST:
            if not v4_unicast_dst(p.dst):
                raise PacketError("icmp.echo_not_unicast")
            what = self._echo_allowed(p.dst)
            if what == "no":
                raise PacketError("icmp.echo_not_answered")
            src, dst = self._ntop_ip(p.src), self._ntop_ip(p.dst)
            if what == "owner":
                ident, seq = int.from_bytes(payload[4:6], "big"), int.from_bytes(payload[6:8], "big")
                self._events.append(IcmpEchoRequest(src, dst, ident, seq, bytes(payload[8:]), 4))
                return
            self._send_ip(p.dst, p.src, PROTO_ICMP, echo_reply_v4(payload))
            self.counters["tx.icmp.echo_reply"] += 1
            self._events.append(IcmpEchoAnswered(src, dst, 4))
        elif typ in V4_ERRORS:
            self.counters["rx.icmp.error"] += 1
            if typ == V4_DEST_UNREACH and _code == V4_FRAG_NEEDED:
                self.counters["rx.icmp.frag_needed"] += 1
                # RFC 1191: next-hop MTU in bytes 6-8; the quoted header names the client.
                if len(payload) >= 28:
                    self._learn_pmtu(bytes(payload[24:28]), int.from_bytes(payload[6:8], "big"), 576)
        elif typ == V4_ECHO_REPLY:
            raise PacketError("icmp.unexpected_echo_reply")
        else:
            raise PacketError("icmp.unhandled_type")

    def _icmp_input_v6(self, p: IPv6Packet, verify: bool) -> None:
        payload = p.payload
        typ, _code = parse_icmpv6(payload, p.src, p.dst, verify)
        if typ in V6_NEIGHBOUR:
            raise PacketError("icmp6.ndp_ignored")
        if typ in V6_MLD:
            raise PacketError("icmp6.mld_ignored")
        if not v6_unicast_src(p.src):
            raise PacketError("ipv6.bad_source")
        if typ == V6_ECHO_REQUEST:
            if not v6_unicast_dst(p.dst):
                raise PacketError("icmp6.echo_not_unicast")
            what = self._echo_allowed(p.dst)
            if what == "no":
                raise PacketError("icmp6.echo_not_answered")
            src, dst = self._ntop_ip(p.src), self._ntop_ip(p.dst)
            if what == "owner":
                ident, seq = int.from_bytes(payload[4:6], "big"), int.from_bytes(payload[6:8], "big")
                self._events.append(IcmpEchoRequest(src, dst, ident, seq, bytes(payload[8:]), 6))
                return
            self._send_ip(p.dst, p.src, NH_ICMPV6, echo_reply_v6(payload, p.dst, p.src))
            self.counters["tx.icmp6.echo_reply"] += 1
            self._events.append(IcmpEchoAnswered(src, dst, 6))
        elif typ < 128:
            self.counters["rx.icmp6.error"] += 1
            if typ == V6_PACKET_TOO_BIG:
                self.counters["rx.icmp6.packet_too_big"] += 1
                if len(payload) >= 48:
                    self._learn_pmtu(bytes(payload[32:48]), int.from_bytes(payload[4:8], "big"), 1280)
        elif typ == V6_ECHO_REPLY:
            raise PacketError("icmp6.unexpected_echo_reply")
        else:
            raise PacketError("icmp6.unhandled_type")

    def icmp_echo_reply(self, request: IcmpEchoRequest) -> None:
        """Answer an echo request the owner was asked about (``echo_reply="owner"``)."""
        src = _pack_ip(request.dst)
        dst = _pack_ip(request.src)
        rest = request.ident.to_bytes(2, "big") + request.seq.to_bytes(2, "big")
        if request.version == 4:
            self._send_ip(src, dst, PROTO_ICMP, build_icmpv4(V4_ECHO_REPLY, 0, rest, request.data))
        else:
            self._send_ip(src, dst, NH_ICMPV6, build_icmpv6(V6_ECHO_REPLY, 0, rest, request.data, src, dst))

    def _icmp_error_v4(
        self, p: IPv4Packet, typ: int, code: int, value: int = 0, from_own: bool = False
    ) -> None:
        """Send an ICMP error about ``p`` where RFC 1122 3.2.2 allows one."""
        if not (v4_unicast_src(p.src) and v4_unicast_dst(p.dst)) or p.frag_offset:
            self.counters["icmp.error_suppressed"] += 1
            return
        if p.proto == PROTO_ICMP and (len(p.payload) < 1 or p.payload[0] not in _V4_INFO_TYPES):
            self.counters["icmp.error_suppressed"] += 1
            return
        invoking = bytes(p.header) + bytes(p.payload[:548])
        self._icmp_error_v4_send(invoking, p.src, p.dst, typ, code, value, from_own)

    def _icmp_error_v4_raw(self, invoking: bytes, src: bytes, dst: bytes, typ: int, code: int) -> None:
        """An ICMP error about a packet known only by its bytes (a fragment, a refused datagram)."""
        if not (v4_unicast_src(src) and v4_unicast_dst(dst)):
            self.counters["icmp.error_suppressed"] += 1
            return
        self._icmp_error_v4_send(invoking, src, dst, typ, code, 0, False)

    def _icmp_error_v4_send(
        self, invoking: bytes, src: bytes, dst: bytes, typ: int, code: int, value: int, from_own: bool
    ) -> None:
        if not self._icmp_bucket.take(self._now):
            self.counters["icmp.rate_limited"] += 1
            return
        me = self._own4 if from_own and self._own4 is not None else dst
        self._send_ip(me, src, PROTO_ICMP, error_v4(typ, code, invoking, value), df=False)
        self.counters["tx.icmp.error"] += 1

    def _icmp_error_v6(
        self, p: IPv6Packet, typ: int, code: int, value: int = 0, from_own: bool = False
    ) -> None:
        """Send an ICMPv6 error about ``p`` where RFC 4443 2.4(e) allows one."""
        if not (v6_unicast_src(p.src) and v6_unicast_dst(p.dst)):
            self.counters["icmp6.error_suppressed"] += 1
            return
        if p.frag is not None and p.frag[0] != 0:
            self.counters["icmp6.error_suppressed"] += 1
            return
        if p.proto == NH_ICMPV6 and (len(p.payload) < 1 or p.payload[0] < 128):
            self.counters["icmp6.error_suppressed"] += 1
            return
        self._icmp_error_v6_send(p.packet, p.src, p.dst, typ, code, value, from_own)

    def _icmp_error_v6_raw(self, data: memoryview, icmp: tuple[int, int, int]) -> None:
        """An ICMPv6 error (parameter problem) about a packet that failed to parse."""
        src = bytes(data[8:24])
        dst = bytes(data[24:40])
        if not (v6_unicast_src(src) and v6_unicast_dst(dst)):
            self.counters["icmp6.error_suppressed"] += 1
            return
        typ, code, value = icmp
        self._icmp_error_v6_send(data, src, dst, typ, code, value, False)

    def _icmp_error_v6_send(
        self, invoking: memoryview, src: bytes, dst: bytes, typ: int, code: int, value: int, from_own: bool
    ) -> None:
        if not self._icmp_bucket.take(self._now):
            self.counters["icmp.rate_limited"] += 1
            return
        me = self._own6 if from_own and self._own6 is not None else dst
        self._send_ip(me, src, NH_ICMPV6, error_v6(typ, code, bytes(invoking[:1232]), me, src, value))
        self.counters["tx.icmp6.error"] += 1

    # ------------------------------------------------------------------ output, timers, events

    def _learn_pmtu(self, client: bytes, mtu: int, floor: int) -> None:
        """Remember a smaller path MTU towards a client (RFC 1191 / RFC 8201) for the
        datagrams we fragment.  Bounded in size and time (10 minutes, RFC 1191), and never
        below the protocol minimum, so a forged error can do little."""
        if mtu >= self.config.mtu:
            return
        mtu = max(mtu, floor)
        pmtu = self._pmtu
        pmtu[client] = (mtu, self._now + 600.0)
        pmtu.move_to_end(client)
        while len(pmtu) > 4096:
            pmtu.popitem(last=False)
        self.counters["rx.icmp.pmtu_learned"] += 1

    def path_mtu(self, client: str) -> int:
        """The MTU used towards ``client``: the link MTU unless ICMP taught us a smaller one."""
        entry = self._pmtu.get(_pack_ip(client))
        return entry[0] if entry is not None and entry[1] > self._now else self.config.mtu

    def _send_ip(self, src: bytes, dst: bytes, proto: int, payload: bytes, df: bool = True) -> None:
        """Wrap an upper-layer message in IP, fragmenting it when it exceeds the path MTU."""
        mtu = self.config.mtu
        if self._pmtu:
            entry = self._pmtu.get(dst)
            if entry is not None and entry[1] > self._now:
                mtu = entry[0]
        ttl = self.config.ttl
        if len(src) == 4:
            self._ip_ident = ident = (self._ip_ident + 1) & 0xFFFF
            if len(payload) + 20 <= mtu:
                self._out.append(build_ipv4(src, dst, proto, payload, ttl=ttl, ident=ident, df=df))
            else:
                self._out.extend(fragment_ipv4(src, dst, proto, payload, mtu, ident=ident, ttl=ttl))
                self.counters["tx.ipv4.fragmented"] += 1
        elif len(payload) + 40 <= mtu:
            self._out.append(build_ipv6(src, dst, proto, payload, hop_limit=ttl))
        else:
            ident = int.from_bytes(os.urandom(4), "big")
            self._out.extend(
                fragment_ipv6(src, dst, proto, payload, max(mtu, 1280), ident=ident, hop_limit=ttl)
            )
            self.counters["tx.ipv6.fragmented"] += 1

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
        heap = self._heap
        armed = self._armed
        while heap and armed.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        best = heap[0][0] if heap else None
        cfg = self.config
        for t in (
            self._frag4.next_timer(),
            self._frag6.next_timer(),
            self._udp.next_timer(),
            next((pd.created + cfg.tcp_request_timeout for pd in self._pending.values()), None),
        ):
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
        heap = self._heap
        armed = self._armed
        conns = self._conns
        # Take what is due first, then run it: a connection whose timer is still due after
        # handling is re-armed and runs at the next call, never in a loop here.
        due_conns: list[_Conn] = []
        while heap and heap[0][0] <= now:
            t, cid = heapq.heappop(heap)
            if armed.get(cid) != t:
                continue
            del armed[cid]
            c = conns.get(cid)
            if c is not None:
                due_conns.append(c)
        for c in due_conns:
            if c.cid not in conns:
                continue
            try:
                due = c.conn.get_timer()
                if due is not None and due <= now:
                    c.conn.handle_timer(now)
                self._flush_conn(c)
            except Exception:  # noqa: BLE001
                self._fail_conn(c)
        # RFC 792 / RFC 8200 4.5: time exceeded (code 1) when the first fragment had arrived.
        for _header, quote in self._frag4.expire(now):  # type: ignore[misc]
            self._icmp_error_v4_raw(quote, quote[12:16], quote[16:20], V4_TIME_EXCEEDED, 1)
        for _unfrag, _nh, quote in self._frag6.expire(now):  # type: ignore[misc]
            self._icmp_error_v6_raw(memoryview(quote), (V6_TIME_EXCEEDED, 1, 0))
        for key in self._udp.expire(now):
            self._events.append(UdpFlowExpired(self._addr(key[0], key[1]), self._addr(key[2], key[3])))
        limit = now - self.config.tcp_request_timeout
        while self._pending:
            pid, pend = next(iter(self._pending.items()))
            if pend.created > limit:
                break
            self._forget_pending(pid)
            self.counters["tcp.request_timeout"] += 1
            self._events.append(TcpEvent(pid, Closed("timeout")))

    # ------------------------------------------------------------------ addresses

    def _ntop_ip(self, ip: bytes) -> str:
        s = self._ntop.get(ip)
        if s is None:
            if len(self._ntop) > 4096:
                self._ntop.clear()
            s = self._ntop[ip] = socket.inet_ntop(socket.AF_INET6 if len(ip) == 16 else socket.AF_INET, ip)
        return s

    def _addr(self, ip: bytes, port: int) -> Address:
        return (self._ntop_ip(ip), port)
