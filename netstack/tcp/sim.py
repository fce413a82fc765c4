"""A deterministic network simulator for the TCP core: two ``TcpConnection``s, one virtual clock.

Each direction of the path is a ``LinkSpec``: a bottleneck of given bandwidth with a
drop-tail queue, a one-way propagation delay, and seeded random loss, reordering (an extra
delay for some packets), duplication and corruption (a flipped byte, caught by the
receiver's checksum check as a real stack would).  Time only moves when the next packet
arrives or a connection's timer fires, so a 10-second transfer takes as long as the CPU
needs for its segments, and the same seed always gives the same run.

Used by the tests (``tests/netstack/tcp``) and by ``scripts/bench-netstack-sim``, which
prints a throughput matrix over loss rates and receive buffer sizes.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from dataclasses import dataclass, field

from netstack.checksum import verify

from .config import TcpConfig
from .connection import TcpConnection, TcpState
from .events import Closed, DataReceived, EofReceived, SendSpaceAvailable
from .reset import rst_for
from .segment import SYN, SegmentError, parse_segment, pseudo_sum_for

CLIENT = (bytes((10, 0, 0, 1)), 40000)
SERVER = (bytes((10, 0, 0, 2)), 443)


@dataclass
class LinkSpec:
    """One direction of the path."""

    delay: float = 0.020
    bandwidth: float | None = 50e6 / 8  # bytes per second at the bottleneck; None: infinite
    queue_bytes: int = 256 * 1024
    loss: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.010
    duplicate: float = 0.0
    corrupt: float = 0.0
    overhead: int = 40  # IP header bytes counted against the bandwidth


@dataclass
class LinkStats:
    sent: int = 0
    dropped_loss: int = 0
    dropped_queue: int = 0
    duplicated: int = 0
    reordered: int = 0
    corrupted: int = 0


class Link:
    __slots__ = ("spec", "rng", "busy_until", "stats", "__dict__")

    def __init__(self, spec: LinkSpec, rng: random.Random) -> None:
        self.spec = spec
        self.rng = rng
        self.busy_until = 0.0
        self.stats = LinkStats()

    def schedule(self, now: float, raw: bytes) -> list[tuple[float, bytes]]:
        """Arrival times (possibly none, possibly two) of a packet put on the link at ``now``."""
        spec = self.spec
        rng = self.rng
        st = self.stats
        st.sent += 1
        if spec.loss and rng.random() < spec.loss:
            st.dropped_loss += 1
            return []
        if spec.bandwidth:
            start = self.busy_until if self.busy_until > now else now
            if (start - now) * spec.bandwidth > spec.queue_bytes:
                st.dropped_queue += 1
                return []
            self.busy_until = start + (len(raw) + spec.overhead) / spec.bandwidth
            t = self.busy_until + spec.delay
        else:
            t = now + spec.delay
        if spec.corrupt and rng.random() < spec.corrupt:
            st.corrupted += 1
            b = bytearray(raw)
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
            raw = bytes(b)
        if spec.reorder and rng.random() < spec.reorder:
            st.reordered += 1
            t += rng.random() * spec.reorder_delay
        out = [(t, raw)]
        if spec.duplicate and rng.random() < spec.duplicate:
            st.duplicated += 1
            out.append((t + rng.random() * spec.reorder_delay, raw))
        return out


@dataclass
class Endpoint:
    """One side: its connection plus a simple application (bulk sender and/or reader)."""

    name: str
    addr: tuple[bytes, int]
    peer: tuple[bytes, int]
    config: TcpConfig
    iss: int
    conn: TcpConnection | None = None
    to_send: bytes = b""
    sent_upto: int = 0
    close_after_send: bool = True
    closed_sent: bool = False
    received: bytearray = field(default_factory=bytearray)
    keep_data: bool = True
    received_count: int = 0
    read_rate: float | None = None  # bytes/s the application reads; None: reads at once
    read_budget: float = 0.0
    last_read: float = 0.0
    unread: int = 0
    eof: bool = False
    closed: str | None = None
    close_on_eof: bool = False  # True: close only after the peer's FIN (as a server answering a request)
    events: list = field(default_factory=list)
    done_at: float | None = None
    hasher: object = None


@dataclass
class SimResult:
    elapsed: float
    client_received: int
    server_received: int
    client_closed: str | None
    server_closed: str | None
    forward: LinkStats
    backward: LinkStats
    client_stats: dict
    server_stats: dict
    steps: int
    server_sha256: str = ""
    client_sha256: str = ""

    def goodput(self, nbytes: int) -> float:
        return nbytes / self.elapsed if self.elapsed > 0 else 0.0


class Simulator:
    """Client (active open) and server (created from the first SYN) over two links.

    Pass ``on_client``/``on_server`` callables to script either application; by default the
    client sends ``client_data`` and the server ``server_data``, each closes after sending and
    reads everything it receives.
    """

    def __init__(
        self,
        seed: int = 1,
        forward: LinkSpec | None = None,
        backward: LinkSpec | None = None,
        client_config: TcpConfig | None = None,
        server_config: TcpConfig | None = None,
        client_iss: int = 0xFFFFF000,
        server_iss: int = 0xFFFFFF00,
        client_data: bytes = b"",
        server_data: bytes = b"",
        verify_checksums: bool = True,
    ) -> None:
        rng = random.Random(seed)
        self.fwd = Link(forward or LinkSpec(), random.Random(rng.getrandbits(64)))
        self.bwd = Link(backward or LinkSpec(), random.Random(rng.getrandbits(64)))
        self.client = Endpoint(
            "client", CLIENT, SERVER, client_config or TcpConfig(), client_iss, to_send=client_data
        )
        self.server = Endpoint(
            "server",
            SERVER,
            CLIENT,
            server_config or TcpConfig(),
            server_iss,
            to_send=server_data,
            close_on_eof=True,
        )
        self.verify = verify_checksums
        self.now = 0.0
        self._heap: list[tuple[float, int, int, bytes]] = []
        self._n = 0
        self.steps = 0
        self.dropped_bad_checksum = 0
        self.dropped_unparseable = 0
        self._pseudo = {
            0: pseudo_sum_for(CLIENT[0], SERVER[0]),  # towards the server
            1: pseudo_sum_for(SERVER[0], CLIENT[0]),
        }
        self.client.conn = TcpConnection.connect(CLIENT, SERVER, 0.0, self.client.config, client_iss)
        self.client.hasher = hashlib.sha256()
        self.server.hasher = hashlib.sha256()

    # -- plumbing

    def _emit(self, ep: Endpoint, now: float) -> None:
        conn = ep.conn
        if conn is None:
            return
        segs = conn.segments_to_send(now)
        if not segs:
            return
        to_server = ep is self.client
        link = self.fwd if to_server else self.bwd
        direction = 0 if to_server else 1
        heap = self._heap
        for raw in segs:
            for t, pkt in link.schedule(now, raw):
                self._n += 1
                heapq.heappush(heap, (t, self._n, direction, pkt))

    def _deliver(self, direction: int, raw: bytes, now: float) -> None:
        if self.verify and not verify(raw, self._pseudo[direction] + len(raw)):
            self.dropped_bad_checksum += 1
            return
        try:
            seg = parse_segment(raw)
        except SegmentError:
            self.dropped_unparseable += 1
            return
        ep = self.server if direction == 0 else self.client
        if ep.conn is None:
            if seg.flags & SYN and ep is self.server:
                ep.conn = TcpConnection.from_syn(seg, ep.addr, ep.peer, now, ep.config, ep.iss)
            return
        if ep.conn.state is TcpState.CLOSED:
            if ep is self.server and seg.flags & SYN:
                return
            # Gone (TIME_WAIT over): answer as a stack with no such connection does, so a
            # peer still in LAST-ACK learns it at once instead of retransmitting its FIN.
            rst = rst_for(seg, ep.addr[0], ep.peer[0])
            if rst is not None:
                link = self.fwd if ep is self.client else self.bwd
                for t, pkt in link.schedule(now, rst):
                    self._n += 1
                    heapq.heappush(self._heap, (t, self._n, 0 if ep is self.client else 1, pkt))
            return
        ep.conn.receive(seg, now)

    def _app(self, ep: Endpoint, now: float) -> None:
        conn = ep.conn
        if conn is None:
            return
        while True:
            ev = conn.next_event()
            if ev is None:
                break
            if isinstance(ev, DataReceived):
                n = len(ev.data)
                ep.received_count += n
                ep.hasher.update(ev.data)  # type: ignore[attr-defined]
                if ep.keep_data:
                    ep.received += ev.data
                if ep.read_rate is None:
                    conn.consumed(n)
                else:
                    ep.unread += n
            elif isinstance(ev, EofReceived):
                ep.eof = True
            elif isinstance(ev, Closed):
                ep.closed = ev.reason
                if ep.done_at is None:
                    ep.done_at = now
            elif isinstance(ev, SendSpaceAvailable):
                pass
            ep.events.append((now, type(ev).__name__))
        if ep.read_rate is not None and ep.unread:
            ep.read_budget += (now - ep.last_read) * ep.read_rate
            ep.last_read = now
            take = min(ep.unread, int(ep.read_budget))
            if take > 0:
                ep.unread -= take
                ep.read_budget -= take
                conn.consumed(take)
        else:
            ep.last_read = now
        if ep.sent_upto < len(ep.to_send):
            space = conn.send_space()
            if space:
                chunk = ep.to_send[ep.sent_upto : ep.sent_upto + space]
                ep.sent_upto += conn.send(chunk)
        if (
            ep.close_after_send
            and not ep.closed_sent
            and ep.sent_upto >= len(ep.to_send)
            and (ep.eof or not ep.close_on_eof)
            and conn.state in (TcpState.ESTABLISHED, TcpState.CLOSE_WAIT)
        ):
            ep.closed_sent = True
            conn.close()

    def _next_time(self) -> float | None:
        t = self._heap[0][0] if self._heap else None
        for ep in (self.client, self.server):
            if ep.conn is not None:
                tt = ep.conn.get_timer()
                if tt is not None and (t is None or tt < t):
                    t = tt
            if ep.read_rate is not None and ep.unread:
                tt = self.now + 0.001
                if t is None or tt < t:
                    t = tt
        return t

    # -- running

    def kick(self) -> None:
        """Let both sides send what their applications queued from outside the event loop (a
        ``stop`` callback refilling a send buffer): without it, data queued after the last
        ACK of an emptied buffer would wait for an event that never comes."""
        for ep in (self.client, self.server):
            self._emit(ep, self.now)

    def run(self, until: float = 60.0, max_steps: int = 5_000_000, stop=None) -> SimResult:
        """Advance virtual time until both sides closed (or ``stop(sim)`` is true, or ``until``)."""
        client, server = self.client, self.server
        self._app(client, 0.0)
        self._emit(client, 0.0)
        heap = self._heap
        while self.steps < max_steps:
            self.steps += 1
            t = self._next_time()
            if t is None or t > until:
                self.now = until if t is not None else self.now
                break
            if t > self.now:
                self.now = t
            now = self.now
            while heap and heap[0][0] <= now:
                _, _, direction, raw = heapq.heappop(heap)
                self._deliver(direction, raw, now)
            for ep in (client, server):
                conn = ep.conn
                if conn is None:
                    continue
                tt = conn.get_timer()
                if tt is not None and tt <= now:
                    conn.handle_timer(now)
                self._app(ep, now)
                self._emit(ep, now)
            if stop is not None and stop(self):
                break
            if self._finished():
                break
        return self.result()

    def _finished(self) -> bool:
        for ep in (self.client, self.server):
            if ep.conn is None or ep.conn.state not in (TcpState.CLOSED, TcpState.TIME_WAIT):
                return False
        return True

    def result(self) -> SimResult:
        c, s = self.client, self.server
        return SimResult(
            elapsed=self.now,
            client_received=c.received_count,
            server_received=s.received_count,
            client_closed=c.closed,
            server_closed=s.closed,
            forward=self.fwd.stats,
            backward=self.bwd.stats,
            client_stats=c.conn.counters() if c.conn else {},
            server_stats=s.conn.counters() if s.conn else {},
            steps=self.steps,
            server_sha256=s.hasher.hexdigest(),  # type: ignore[attr-defined]
            client_sha256=c.hasher.hexdigest(),  # type: ignore[attr-defined]
        )


def pattern(n: int, seed: int = 0) -> bytes:
    """``n`` reproducible pseudo-random bytes (cheap to make, hard to reassemble wrongly)."""
    rng = random.Random(seed)
    return rng.randbytes(n)
