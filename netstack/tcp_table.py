"""The TCP half of ``Stack``: demultiplexing segments to connections, connection requests
waiting for the owner's accept/refuse/drop, the connection table with its TIME_WAIT
lingerers and limits, and the one timer heap of all connections.

Work is batched: incoming data segments only mark their connection dirty, and a dirty
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
from collections import OrderedDict
from dataclasses import replace

from netstack.checksum import ones_sum, pseudo_header_sum
from netstack.errors import PacketError
from netstack.events import TcpConnectionRequest, TcpEvent
from netstack.icmp import TokenBucket
from netstack.ipv4 import HEADER as IPV4_HEADER
from netstack.ipv4 import PROTO_TCP
from netstack.ipv4 import is_unicast_destination as v4_unicast_dst
from netstack.ipv6 import HEADER as IPV6_HEADER
from netstack.ipv6 import is_unicast_destination as v6_unicast_dst
from netstack.ipv6 import is_unicast_source as v6_unicast_src
from netstack.output import IpOutput
from netstack.tcp.config import TcpConfig
from netstack.tcp.connection import TcpConnection, TcpState
from netstack.tcp.events import Closed, Connected
from netstack.tcp.iss import new_iss
from netstack.tcp.reset import rst_for
from netstack.tcp.segment import ACK, FIN, RST, SYN, SegmentError, TcpSegment, parse_segment

log = logging.getLogger("netstack.stack")

ConnKey = tuple[bytes, int, bytes, int]
"""(remote ip, remote port, local ip, local port): how an incoming segment finds its connection."""

_CLOSED = TcpState.CLOSED


class _Conn:
    """A TCP connection with what the stack needs to wrap its segments in IP."""

    __slots__ = (
        "cid",
        "conn",
        "key",
        "v6",
        "local_ip",
        "remote_ip",
        "half_open",
        "ident",
        "base_sum",
        "ttl",
        "iss",
    )

    def __init__(self, cid: int, conn: TcpConnection, key: ConnKey, v6: bool, ttl: int, iss: int) -> None:
        self.cid = cid
        self.iss = iss  # what the core's snd_* offsets count from, to check quoted sequence numbers
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


class TcpTable(IpOutput):
    """Connections by 4-tuple, pending requests, and the owner's TCP API."""

    _conns: dict[int, _Conn]
    _by_key: dict[ConnKey, int]
    _pending: OrderedDict[int, _Pending]
    _pending_by_key: dict[ConnKey, int]
    _syn_received: int
    _lingering: OrderedDict[int, _Conn]
    _dirty: dict[int, _Conn]
    _heap: list[tuple[float, int]]
    _armed: dict[int, float]
    _next_id: int
    _tcp4: TcpConfig
    _tcp6: TcpConfig
    _rst_bucket: TokenBucket

    def _init_tcp(self) -> None:
        self._next_id = 1
        self._conns = {}
        self._by_key = {}
        self._pending = OrderedDict()
        self._pending_by_key = {}
        self._syn_received = 0
        self._lingering = OrderedDict()
        self._dirty = {}
        self._heap = []
        self._armed = {}
        cfg = self.config
        self._tcp4 = replace(cfg.tcp, mss=min(cfg.tcp.mss, cfg.mtu - 40))
        self._tcp6 = replace(cfg.tcp, mss=min(cfg.tcp.mss, cfg.mtu - 60))
        self._rst_bucket = TokenBucket(cfg.rst_rate, cfg.rst_burst)

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
        iss = new_iss(local, remote, now)
        try:
            conn = TcpConnection.from_syn(pend.syn, local, remote, now, cfg, iss)
        except Exception:  # noqa: BLE001 - a bad SYN must not take the owner down
            self.counters["stack.internal_error"] += 1
            log.exception("netstack: cannot create a connection for an accepted SYN")
            return False
        c = _Conn(conn_id, conn, key, pend.v6, self.config.ttl, iss)
        if self._pmtu:
            entry = self._pmtu.get(src)
            if entry is not None and entry[1] > now:
                # A path MTU learnt from an earlier connection holds for this one too.
                conn.set_path_mss(entry[0] - (60 if pend.v6 else 40))
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

    def _tcp_packet_too_big(self, key: ConnKey, seq: int, mss: int) -> bool:
        """Lower the MSS of the connection an ICMP packet-too-big quotes (RFC 5927 4.1: only
        if the quoted sequence number is one we sent and is not yet acknowledged)."""
        cid = self._by_key.get(key)
        if cid is None:
            self.counters["icmp.pmtu_no_connection"] += 1
            return False
        c = self._conns[cid]
        conn = c.conn
        # Sequence offsets in the core count from the ISS; wire numbers wrap at 2**32.
        offset = (seq - c.iss - conn.snd_una) & 0xFFFFFFFF
        if offset >= conn.snd_max - conn.snd_una:
            self.counters["icmp.pmtu_bad_seq"] += 1
            return False
        try:
            conn.set_path_mss(mss)
        except Exception:  # noqa: BLE001
            self._fail_conn(c)
            return False
        self.counters["rx.icmp.path_mss_set"] += 1
        self._dirty[cid] = c
        return True

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

    # ------------------------------------------------------------------ timers

    def _tcp_next_timer(self) -> float | None:
        """The earliest connection timer or request timeout, dropping stale heap entries."""
        heap = self._heap
        armed = self._armed
        while heap and armed.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        best = heap[0][0] if heap else None
        if self._pending:
            t = next(iter(self._pending.values())).created + self.config.tcp_request_timeout
            if best is None or t < best:
                best = t
        return best

    def _tcp_handle_timer(self, now: float) -> None:
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
        limit = now - self.config.tcp_request_timeout
        while self._pending:
            pid, pend = next(iter(self._pending.items()))
            if pend.created > limit:
                break
            self._forget_pending(pid)
            self.counters["tcp.request_timeout"] += 1
            self._events.append(TcpEvent(pid, Closed("timeout")))
