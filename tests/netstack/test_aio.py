"""The asyncio driver: streams over netstack connections, backpressure both ways, owner
decisions, UDP flows.

The client here is the TCP core itself in active open (``TcpConnection.connect``) with
hand-built IPv4 headers, joined to the driver by a tiny in-memory link; no root needed.
(The same behaviour against the kernel's TCP is in tests/e2e/test_netstack_kernel.py.)
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket

import pytest

from netstack.aio import NetstackDriver, run
from netstack.config import StackConfig
from netstack.ipv4 import build_ipv4, parse_ipv4
from netstack.stack import Stack
from netstack.tcp.config import TcpConfig
from netstack.tcp.connection import TcpConnection
from netstack.tcp.events import Closed, Connected, DataReceived, EofReceived
from netstack.tcp.segment import parse_segment

CLIENT = "10.0.0.2"
SERVER = "198.51.100.1"


class Client:
    """One client connection driven on the loop, its packets crossing an in-memory link."""

    def __init__(
        self, driver: NetstackDriver, port: int, *, sport: int = 40000, consume: bool = True
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.driver = driver
        self.local = (socket.inet_aton(CLIENT), sport)
        self.remote = (socket.inet_aton(SERVER), port)
        self.conn = TcpConnection.connect(self.local, self.remote, self.loop.time(), TcpConfig(), 0xFFFFF000)
        self.consume = consume
        self.received = bytearray()
        self.events: list[object] = []
        self.changed = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self.pump()

    def pump(self) -> None:
        now = self.loop.time()
        for seg in self.conn.segments_to_send(now):
            pkt = build_ipv4(self.local[0], self.remote[0], 6, seg)
            self.loop.call_soon(self.driver.feed, pkt)
        while (ev := self.conn.next_event()) is not None:
            if isinstance(ev, DataReceived):
                self.received += ev.data
                if self.consume:
                    self.conn.consumed(len(ev.data))
            else:
                self.events.append(ev)
            self.changed.set()
        if self._timer is not None:
            self._timer.cancel()
        t = self.conn.get_timer()
        if t is not None:
            self._timer = self.loop.call_at(t, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.conn.handle_timer(self.loop.time())
        self.pump()

    def deliver(self, pkt: bytes) -> None:
        ip = parse_ipv4(memoryview(pkt))
        seg = parse_segment(ip.payload)
        if (ip.dst, seg.dst_port) == self.local:
            self.conn.receive(seg, self.loop.time())
            self.pump()

    def take(self, n: int) -> None:
        self.conn.consumed(n)
        self.pump()

    async def wait_for(self, predicate, timeout: float = 10.0) -> None:
        async def loop() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


class Harness:
    def __init__(self, **callbacks) -> None:
        self.clients: list[Client] = []
        self.driver = NetstackDriver(
            StackConfig(), send_packets=self._to_clients, extra_info={"link": "test"}, **callbacks
        )

    def _to_clients(self, packets: list[bytes]) -> None:
        for p in packets:
            for c in self.clients:
                asyncio.get_running_loop().call_soon(c.deliver, p)

    def client(self, port: int, **kw) -> Client:
        c = Client(self.driver, port, sport=40000 + len(self.clients), **kw)
        self.clients.append(c)
        return c


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def test_echo_roundtrip_and_clean_close() -> None:
    h = Harness(on_tcp_connection=echo)
    c = h.client(80)
    await c.wait_for(lambda: any(isinstance(e, Connected) for e in c.events))
    data = random.Random(1).randbytes(300_000)
    c.conn.send(data)
    c.conn.close()
    c.pump()
    await c.wait_for(lambda: any(isinstance(e, Closed) for e in c.events) and len(c.received) == len(data))
    assert bytes(c.received) == data
    assert [type(e) for e in c.events] == [Connected, EofReceived, Closed]
    assert h.driver.connection_count == 0


async def test_extra_info_is_that_of_a_socket() -> None:
    seen: dict = {}

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for k in ("peername", "sockname", "socket", "link"):
            seen[k] = writer.get_extra_info(k)
        seen["can_write_eof"] = writer.can_write_eof()
        writer.close()

    h = Harness(on_tcp_connection=app)
    c = h.client(443)
    await c.wait_for(lambda: "peername" in seen)
    assert seen == {
        "peername": (CLIENT, 40000),
        "sockname": (SERVER, 443),
        "socket": None,
        "link": "test",
        "can_write_eof": True,
    }


async def test_connections_open_together_keep_their_own_addresses() -> None:
    """Each transport's extra info is its own: the gateway connects upstream to the
    ``sockname`` a connection reports, so a shared dict sent connections opened together
    to the destination of the latest one."""
    writers: list = []
    opened = asyncio.Event()

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        if len(writers) == 3:
            opened.set()
        await opened.wait()

    h = Harness(on_tcp_connection=app)
    for port in (80, 443, 5001):
        h.client(port)
    await asyncio.wait_for(opened.wait(), 5)
    seen = sorted((w.get_extra_info("peername"), w.get_extra_info("sockname")) for w in writers)
    assert seen == [
        ((CLIENT, 40000), (SERVER, 80)),
        ((CLIENT, 40001), (SERVER, 443)),
        ((CLIENT, 40002), (SERVER, 5001)),
    ]
    assert len({w.get_extra_info("netstack_conn_id") for w in writers}) == 3
    assert all(w.get_extra_info("link") == "test" for w in writers)


async def test_drain_blocks_while_the_peer_does_not_read() -> None:
    """Send-side backpressure: the peer's window closes, our send buffer fills, drain() waits."""
    progress = {"written": 0, "done": False}

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        chunk = b"x" * 65536
        for _ in range(160):  # 10 MiB: more than the peer's window plus our send buffer
            writer.write(chunk)
            await writer.drain()
            progress["written"] += len(chunk)
        writer.close()
        progress["done"] = True

    h = Harness(on_tcp_connection=flood)
    c = h.client(80, consume=False)
    await c.wait_for(lambda: len(c.received) > 0)
    await asyncio.sleep(0.5)
    stalled_at = progress["written"]
    assert not progress["done"]
    (t,) = h.driver._transports.values()
    assert t.get_write_buffer_size() > 0
    await asyncio.sleep(0.3)
    assert progress["written"] == stalled_at  # still blocked: nothing was read
    c.take(len(c.received))
    c.consume = True
    await c.wait_for(lambda: progress["done"] and len(c.received) == 160 * 65536, timeout=30)


async def test_receive_window_closes_when_the_application_stops_reading() -> None:
    """Receive-side backpressure: unread data is not acknowledged as consumed."""
    gate = asyncio.Event()
    got = bytearray()

    async def lazy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await gate.wait()
        while data := await reader.read(1 << 20):
            got.extend(data)
        writer.close()

    h = Harness(on_tcp_connection=lazy)
    c = h.client(80)
    await c.wait_for(lambda: any(isinstance(e, Connected) for e in c.events))
    total = 12 << 20
    blob = random.Random(2).randbytes(total)
    offset = 0

    def push() -> None:
        nonlocal offset
        while offset < total:
            n = c.conn.send(memoryview(blob)[offset : offset + 65536])
            if n == 0:
                break
            offset += n
        c.pump()

    push()
    for _ in range(40):
        await asyncio.sleep(0.05)
        push()
    (cid,) = h.driver._transports
    core = h.driver.stack.tcp_connection(cid)
    # the window closed: the client is stuck well short of the total...
    assert offset < total
    stuck_at = offset
    for _ in range(10):
        await asyncio.sleep(0.03)
        push()
    assert offset == stuck_at
    # ...with no more in flight than our receive buffer, the reader's buffer and its own send buffer
    assert core._unconsumed <= core.config.recv_buffer + 4096  # (edge rounding to the window scale)
    assert offset <= core.config.recv_buffer + c.conn.config.send_buffer + (1 << 20)
    gate.set()
    for _ in range(400):
        if offset >= total:
            break
        await asyncio.sleep(0.02)
        push()
    c.conn.close()
    c.pump()
    await c.wait_for(lambda: any(isinstance(e, Closed) for e in c.events), timeout=30)
    assert hashlib.sha256(got).digest() == hashlib.sha256(blob).digest()


async def test_half_close_from_the_client() -> None:
    async def answer_after_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # to EOF
        writer.write(b"you sent %d bytes" % len(data))
        await writer.drain()
        writer.close()

    h = Harness(on_tcp_connection=answer_after_eof)
    c = h.client(80)
    await c.wait_for(lambda: any(isinstance(e, Connected) for e in c.events))
    c.conn.send(b"a" * 5000)
    c.conn.close()
    c.pump()
    await c.wait_for(lambda: any(isinstance(e, Closed) for e in c.events))
    assert bytes(c.received) == b"you sent 5000 bytes"


async def test_write_eof_then_keep_reading() -> None:
    got: dict = {}

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        writer.write_eof()
        got["data"] = await reader.read()
        writer.close()

    h = Harness(on_tcp_connection=app)
    c = h.client(80)
    await c.wait_for(lambda: any(isinstance(e, EofReceived) for e in c.events))
    assert bytes(c.received) == b"bye"
    c.conn.send(b"still talking")
    c.conn.close()
    c.pump()
    await c.wait_for(lambda: "data" in got)
    assert got["data"] == b"still talking"


async def test_reset_from_the_client_raises_in_the_reader() -> None:
    caught: list = []

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(100):
                pass
        except ConnectionResetError as e:
            caught.append(e)

    h = Harness(on_tcp_connection=app)
    c = h.client(80)
    c.conn.send(b"hello")
    c.pump()
    await c.wait_for(lambda: any(isinstance(e, Connected) for e in c.events))
    await asyncio.sleep(0.05)
    c.conn.abort()
    c.pump()
    for _ in range(100):
        if caught:
            break
        await asyncio.sleep(0.01)
    assert len(caught) == 1


async def test_abort_from_the_application_resets_the_client() -> None:
    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        writer.transport.abort()

    h = Harness(on_tcp_connection=app)
    c = h.client(80)
    c.conn.send(b"x")
    c.pump()
    await c.wait_for(lambda: any(isinstance(e, Closed) for e in c.events))
    assert [e.reason for e in c.events if isinstance(e, Closed)] == ["reset"]


@pytest.mark.parametrize("is_async", [False, True])
async def test_owner_decisions(is_async: bool) -> None:
    decisions = {81: "accept", 82: "refuse", 83: "drop"}
    asked: list = []

    def decide(src, dst):
        asked.append((src, dst))
        if is_async:

            async def later() -> str:
                await asyncio.sleep(0.01)
                return decisions[dst[1]]

            return later()
        return decisions[dst[1]]

    h = Harness(on_tcp_request=decide, on_tcp_connection=echo)
    ok, refused, dropped = h.client(81), h.client(82), h.client(83)
    await ok.wait_for(lambda: any(isinstance(e, Connected) for e in ok.events))
    await refused.wait_for(lambda: bool(refused.events))
    assert [type(e) for e in refused.events] == [Closed] and refused.events[0].reason in ("refused", "reset")
    await asyncio.sleep(0.2)
    assert dropped.events == []
    assert sorted(d[1] for _s, d in asked) == [(SERVER, 81)[1], 82, 83]
    assert h.driver.counters["tx.tcp.refused"] == 1 and h.driver.counters["tcp.dropped_by_owner"] == 1


async def test_udp_flows_as_datagram_streams() -> None:
    from netstack.udp import build_udp

    flows: list = []

    async def serve(stream) -> None:
        flows.append(stream.get_extra_info("peername"))
        while (data := await stream.recv()) is not None:
            stream.send(data.upper())
        flows.append("ended")

    sent: list[bytes] = []
    driver = NetstackDriver(StackConfig(udp_idle_timeout=0.3), send_packets=sent.extend, on_udp_flow=serve)
    src = socket.inet_aton(CLIENT)
    dst = socket.inet_aton(SERVER)
    for word in (b"one", b"two"):
        driver.feed(build_ipv4(src, dst, 17, build_udp(5000, 53, word, src, dst)))
    for _ in range(100):
        if len(sent) == 2:
            break
        await asyncio.sleep(0.01)
    replies = [bytes(parse_ipv4(memoryview(p)).payload[8:]) for p in sent]
    assert replies == [b"ONE", b"TWO"]
    for _ in range(200):
        if "ended" in flows:
            break
        await asyncio.sleep(0.01)
    assert flows == [(CLIENT, 5000), "ended"]
    driver.close()


def test_runs_on_uvloop() -> None:
    pytest.importorskip("uvloop")

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        assert type(loop).__module__.startswith("uvloop")
        h = Harness(on_tcp_connection=echo)
        c = h.client(80)
        await c.wait_for(lambda: any(isinstance(e, Connected) for e in c.events))
        c.conn.send(b"over uvloop")
        c.conn.close()
        c.pump()
        await c.wait_for(lambda: any(isinstance(e, Closed) for e in c.events))
        return bytes(c.received)

    assert run(main()) == b"over uvloop"


class _AlwaysDueStack(Stack):
    """A stack whose timer stays due however often it is handled (a stuck or storming timer)."""

    def __init__(self) -> None:
        super().__init__(StackConfig())
        self.handled = 0

    def get_timer(self) -> float | None:
        return 0.0  # long past

    def handle_timer(self, now: float) -> None:
        self.handled += 1


async def test_a_timer_that_stays_due_cannot_spin_the_loop() -> None:
    """The driver spaces timer passes by TIMER_MIN_GAP (0.5 ms): an always-due timer gets a bounded
    number of passes per second of loop time (a bound that a slower machine only lowers)."""
    stack = _AlwaysDueStack()
    loop = asyncio.get_running_loop()
    driver = NetstackDriver(stack, send_packets=lambda packets: None)
    driver._kick()
    t0 = loop.time()
    await asyncio.sleep(0.05)
    elapsed = loop.time() - t0
    driver.close()
    assert 1 <= stack.handled <= elapsed / 0.0005 + 3
