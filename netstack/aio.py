"""``NetstackDriver``: a ``Stack`` run on an asyncio loop.

A link calls ``feed``/``feed_many`` with the IP packets it reads and gets the stack's
packets back through the ``send_packets`` callback.  Work is batched per loop iteration:
feeding only processes the packet, and one scheduled pass then drains events, collects the
packets to send and re-arms the single ``loop.call_at`` timer for all connections.

The owner decides per connection (``on_tcp_request``, which may be a coroutine so the
gateway can connect upstream first) and receives each accepted connection as an asyncio
``StreamReader``/``StreamWriter`` pair (``on_tcp_connection``), UDP as callbacks
(``on_udp_datagram``) or as one ``NetstackDatagramStream`` per flow (``on_udp_flow``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

from netstack.config import StackConfig
from netstack.datagrams import NetstackDatagramStream
from netstack.events import (
    IcmpEchoRequest,
    TcpConnectionRequest,
    TcpEvent,
    UdpDatagram,
    UdpFlowExpired,
)
from netstack.stack import Stack
from netstack.tcp.events import Closed, Connected, DataReceived, EofReceived, SendSpaceAvailable
from netstack.transport import NetstackTransport

log = logging.getLogger(__name__)

# Timer-driven passes are at least this far apart.  TCP pacing arms a timer per burst
# (~1 ms) on every sending connection; with many connections their times interleave, and a
# timer already due would run again at once: the gap batches them into one pass and keeps a
# due-but-unhandled timer from spinning the loop.  Well below the pacing burst, so a paced
# connection still gets each burst on time.
TIMER_MIN_GAP = 0.0005

Address = tuple[str, int]
Decision = str  # "accept" | "refuse" | "drop"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A uvloop loop when uvloop is installed (several times faster per callback), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """``asyncio.run`` on uvloop when it is installed."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


class NetstackDriver:
    def __init__(
        self,
        stack: Stack | StackConfig | None = None,
        *,
        send_packets: Callable[[list[bytes]], None],
        on_tcp_request: Callable[[Address, Address], Decision | Awaitable[Decision]] | None = None,
        on_tcp_connection: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
        | None = None,
        on_udp_datagram: Callable[[Address, Address, bytes], Any] | None = None,
        on_udp_flow: Callable[[NetstackDatagramStream], Awaitable[None]] | None = None,
        on_icmp_echo: Callable[[IcmpEchoRequest], bool | Awaitable[bool]] | None = None,
        trusted: bool = False,
        reader_limit: int = 2**16,
        extra_info: dict[str, Any] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """``trusted``: the link vouches for packet integrity (skip inner checksum checks).
        ``extra_info``: added to every connection's ``get_extra_info`` (how a link tags its
        connections, e.g. ``{"tun_interface": "tun0"}``).

        ``on_tcp_request(src, dst)`` returns (or resolves to) "accept", "refuse" or "drop";
        without it every connection is accepted.  ``on_udp_datagram(src, dst, data)`` may
        return "refuse" to answer with ICMP port unreachable.
        """
        self.stack = stack if isinstance(stack, Stack) else Stack(stack)
        self._loop = loop or asyncio.get_running_loop()
        self._send_packets = send_packets
        self._on_tcp_request = on_tcp_request
        self._on_tcp_connection = on_tcp_connection
        self._on_udp_datagram = on_udp_datagram
        self._on_udp_flow = on_udp_flow
        self._on_icmp_echo = on_icmp_echo
        self._trusted = trusted
        self._reader_limit = reader_limit
        self._extra_info = dict(extra_info or {})
        self._transports: dict[int, NetstackTransport] = {}
        self._flows: dict[tuple[Address, Address], NetstackDatagramStream] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._run_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._timer_floor = 0.0  # no timer pass before this loop time (TIMER_MIN_GAP)
        self._closed = False

    # ------------------------------------------------------------ link side

    def feed(self, packet: bytes) -> None:
        """One IP packet from the link (processed now; answers go out this loop iteration)."""
        self.stack.receive_packet(packet, self._loop.time(), self._trusted)
        self._kick()

    def feed_many(self, packets: Iterable[bytes]) -> None:
        """A batch of IP packets read from the link in one go."""
        stack = self.stack
        now = self._loop.time()
        trusted = self._trusted
        for p in packets:
            stack.receive_packet(p, now, trusted)
        self._run()

    # ------------------------------------------------------------ owner side

    def send_udp(self, src: Address, dst: Address, data: bytes) -> None:
        """Send a datagram to a client (``dst``) from ``src`` (the address it wrote to)."""
        self.stack.udp_send(src, dst, data, self._loop.time())
        self._kick()

    def refuse_udp(self, src: Address, dst: Address, data: bytes = b"") -> None:
        """ICMP port unreachable to client ``src`` about its datagram to ``dst``."""
        self.stack.refuse_udp(src, dst, data)
        self._kick()

    @property
    def counters(self) -> dict[str, int]:
        return self.stack.counters

    @property
    def connection_count(self) -> int:
        return len(self._transports)

    def close(self) -> None:
        """Abort every connection, end every flow, stop timers and owner tasks."""
        if self._closed:
            return
        self._closed = True
        for t in list(self._transports.values()):
            t.abort()
        for f in list(self._flows.values()):
            f._expired()
        self._flows.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in list(self._tasks):
            task.cancel()
        self._run()

    # ------------------------------------------------------------ the pass

    def _kick(self) -> None:
        if not self._run_scheduled:
            self._run_scheduled = True
            self._loop.call_soon(self._run)

    def _run(self) -> None:
        self._run_scheduled = False
        stack = self.stack
        try:
            while (ev := stack.next_event()) is not None:
                self._dispatch(ev)
            packets = stack.packets_to_send()
            if packets:
                self._send_packets(packets)
        except Exception:  # noqa: BLE001 - the loop must keep running
            log.exception("netstack: driver pass failed")
        if not self._closed:
            self._arm_timer()

    def _arm_timer(self) -> None:
        t = self.stack.get_timer()
        if t is None:
            return
        if t < self._timer_floor:
            t = self._timer_floor
        if self._timer is not None:
            if self._timer_at is not None and self._timer_at <= t:
                return
            self._timer.cancel()
        self._timer_at = t
        self._timer = self._loop.call_at(t, self._on_timer)

    def _on_timer(self) -> None:
        at = self._timer_at or 0.0
        self._timer = None
        self._timer_at = None
        now = self._loop.time()
        self._timer_floor = now + TIMER_MIN_GAP
        self.stack.handle_timer(max(now, at))
        self._run()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("netstack: owner task failed", exc_info=task.exception())

    # ------------------------------------------------------------ events

    def _dispatch(self, ev: object) -> None:
        if isinstance(ev, TcpEvent):
            t = self._transports.get(ev.conn_id)
            e = ev.event
            if t is None:
                if isinstance(e, DataReceived):
                    # An orphan (closed by us, still finishing): take its data so it can finish.
                    self.stack.tcp_consumed(ev.conn_id, len(e.data))
                return
            if isinstance(e, DataReceived):
                t._data(e.data)
            elif isinstance(e, SendSpaceAvailable):
                t._send_space()
            elif isinstance(e, Connected):
                self._connected(t)
            elif isinstance(e, EofReceived):
                t._eof()
            elif isinstance(e, Closed):
                self._transports.pop(ev.conn_id, None)
                t._closed(e.reason)
        elif isinstance(ev, UdpDatagram):
            self._udp(ev)
        elif isinstance(ev, TcpConnectionRequest):
            self._tcp_request(ev)
        elif isinstance(ev, UdpFlowExpired):
            flow = self._flows.pop((ev.src, ev.dst), None)
            if flow is not None:
                flow._expired()
        elif isinstance(ev, IcmpEchoRequest):
            self._icmp_echo(ev)

    def _tcp_request(self, ev: TcpConnectionRequest) -> None:
        if self._on_tcp_request is None:
            self._decide(ev, "accept")
            return
        try:
            res = self._on_tcp_request(ev.src, ev.dst)
        except Exception:  # noqa: BLE001
            log.exception("netstack: on_tcp_request failed; dropping the SYN")
            res = "drop"
        if inspect.isawaitable(res):
            self._spawn(self._decide_later(ev, res))
        else:
            self._decide(ev, res)

    async def _decide_later(self, ev: TcpConnectionRequest, res: Awaitable[Decision]) -> None:
        try:
            decision = await res
        except Exception:  # noqa: BLE001
            log.exception("netstack: on_tcp_request failed; dropping the SYN")
            decision = "drop"
        self._decide(ev, decision)
        self._run()

    def _decide(self, ev: TcpConnectionRequest, decision: Decision) -> None:
        stack = self.stack
        if decision == "accept":
            if stack.accept_tcp(ev.conn_id):
                self._transports[ev.conn_id] = NetstackTransport(
                    self, ev.conn_id, ev.src, ev.dst, self._extra_info
                )
        elif decision == "refuse":
            stack.refuse_tcp(ev.conn_id)
        else:
            stack.drop_tcp(ev.conn_id)

    def _connected(self, t: NetstackTransport) -> None:
        if self._on_tcp_connection is None:
            t.abort()
            return
        loop = self._loop
        reader = asyncio.StreamReader(limit=self._reader_limit, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        t._connected(protocol)
        writer = asyncio.StreamWriter(t, protocol, reader, loop)
        self._spawn(self._serve(t, reader, writer))

    async def _serve(
        self, t: NetstackTransport, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        assert self._on_tcp_connection is not None
        try:
            await self._on_tcp_connection(reader, writer)
        except Exception:  # noqa: BLE001 - one connection's handler must not take the rest down
            log.exception("netstack: on_tcp_connection failed")
            t.abort()

    def _forget_transport(self, conn_id: int, t: NetstackTransport) -> None:
        if self._transports.get(conn_id) is t:
            del self._transports[conn_id]

    def _udp(self, ev: UdpDatagram) -> None:
        if self._on_udp_flow is not None:
            key = (ev.src, ev.dst)
            flow = self._flows.get(key)
            if flow is None:
                flow = self._flows[key] = NetstackDatagramStream(self, ev.src, ev.dst)
                self._spawn(self._serve_flow(flow))
            flow._put(ev.data)
        if self._on_udp_datagram is not None:
            try:
                res = self._on_udp_datagram(ev.src, ev.dst, ev.data)
            except Exception:  # noqa: BLE001
                log.exception("netstack: on_udp_datagram failed")
                return
            if inspect.isawaitable(res):
                self._spawn(self._udp_later(ev, res))
            elif res == "refuse":
                self.stack.refuse_udp(ev.src, ev.dst, ev.data)

    async def _udp_later(self, ev: UdpDatagram, res: Awaitable[Any]) -> None:
        if await res == "refuse":
            self.refuse_udp(ev.src, ev.dst, ev.data)

    async def _serve_flow(self, flow: NetstackDatagramStream) -> None:
        assert self._on_udp_flow is not None
        try:
            await self._on_udp_flow(flow)
        finally:
            flow.close()

    def _forget_flow(self, key: tuple[Address, Address], flow: NetstackDatagramStream) -> None:
        if self._flows.get(key) is flow:
            del self._flows[key]

    def _icmp_echo(self, ev: IcmpEchoRequest) -> None:
        if self._on_icmp_echo is None:
            return
        res = self._on_icmp_echo(ev)
        if inspect.isawaitable(res):
            self._spawn(self._icmp_later(ev, res))
        elif res:
            self.stack.icmp_echo_reply(ev)

    async def _icmp_later(self, ev: IcmpEchoRequest, res: Awaitable[bool]) -> None:
        if await res:
            self.stack.icmp_echo_reply(ev)
            self._kick()
