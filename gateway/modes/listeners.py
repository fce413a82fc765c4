"""Socket listeners shared by the socket modes: accept, turn into an ``Arrival``, hand over.

A mode only produces client connections (DESIGN.md, seam 3): each listener accepts
connections (or, for UDP, groups datagrams by client address into ``DatagramStream``s),
lets the mode fill in the destination, and calls the handler.  ``stop()`` closes the
listening sockets and cancels the connections still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.proxy.arrival import Address, Arrival

log = logging.getLogger("gateway.modes")

DEFAULT_LISTEN_HOST = "127.0.0.1"
UDP_IDLE_TIMEOUT = 60.0
UDP_QUEUE = 256


def _addr(a: Any) -> Address:
    return (str(a[0]), int(a[1])) if a else ("", 0)


class ModeServer:
    """A running mode: its bound addresses and a way to stop it."""

    def __init__(self, spec: str, handler: Any) -> None:
        self.spec = spec
        self.handler = handler
        self.addresses: list[Address] = []
        self._tasks: set[asyncio.Task] = set()

    @property
    def address(self) -> Address:
        return self.addresses[0]

    def _track(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _register(self, addrs: list[Address]) -> None:
        self.addresses.extend(addrs)
        listen = getattr(self.handler, "listen_addresses", None)
        for a in addrs:
            if listen is not None:
                listen.add(a)

    def _unregister(self) -> None:
        listen = getattr(self.handler, "listen_addresses", None)
        if listen is not None:
            for a in self.addresses:
                listen.discard(a)

    async def stop(self) -> None:
        self._unregister()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)


class TcpListener(ModeServer):
    """``accept(reader, writer) -> Arrival | None`` decides per connection (None: drop)."""

    def __init__(
        self,
        spec: str,
        handler: Any,
        accept: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[Arrival | None]],
    ) -> None:
        super().__init__(spec, handler)
        self._accept = accept
        self._server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, host or None, port, reuse_address=True, limit=2**16
        )
        self._register([_addr(s.getsockname()) for s in self._server.sockets])

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Top of a connection task: a cancellation (stop(), shutdown) ends here.  Python
        # 3.11's stream callback would otherwise log the CancelledError as an error.
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._track()
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            arrival = await self._accept(reader, writer)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a bad client must not reach the event loop
            log.exception("%s: accepting a connection failed", self.spec)
            arrival = None
        if arrival is None:
            writer.close()
            return
        await self.handler.handle_tcp(reader, writer, arrival)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await super().stop()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)


class UdpStream:
    """The datagrams of one client address on a UDP listener (``arrival.DatagramStream``)."""

    def __init__(self, listener: UdpListener, peer: Address, sockname: Address) -> None:
        self.listener = listener
        self.peer = peer
        self.sockname = sockname
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(UDP_QUEUE)
        self.closed = False
        self.last_seen = time.monotonic()

    async def recv(self) -> bytes | None:
        if self.closed and self.queue.empty():
            return None
        try:
            return await asyncio.wait_for(self.queue.get(), self.listener.idle_timeout)
        except TimeoutError:
            self.close()
            return None

    def send(self, data: bytes) -> None:
        transport = self.listener.transport
        if transport is not None and not transport.is_closing():
            transport.sendto(data, self.peer)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.listener.streams.pop(self.peer, None)
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self.peer, "sockname": self.sockname}.get(name, default)


class UdpListener(ModeServer, asyncio.DatagramProtocol):
    def __init__(self, spec: str, handler: Any, make_arrival: Callable[[Address, Address], Arrival]) -> None:
        ModeServer.__init__(self, spec, handler)
        self._make_arrival = make_arrival
        self.transport: asyncio.DatagramTransport | None = None
        self.streams: dict[Address, UdpStream] = {}
        self.idle_timeout = UDP_IDLE_TIMEOUT
        self.dropped = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in (host or "") else socket.AF_INET
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: self, local_addr=(host or "0.0.0.0", port), family=family
        )
        self._register([_addr(self.transport.get_extra_info("sockname"))])

    def datagram_received(self, data: bytes, addr: Any) -> None:
        peer = _addr(addr)
        stream = self.streams.get(peer)
        if stream is None:
            sockname = _addr(self.transport.get_extra_info("sockname")) if self.transport else ("", 0)
            stream = UdpStream(self, peer, sockname)
            self.streams[peer] = stream
            arrival = self._make_arrival(peer, sockname)
            task = asyncio.get_running_loop().create_task(self.handler.handle_udp(stream, arrival))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            stream.queue.put_nowait(data)
        except asyncio.QueueFull:
            self.dropped += 1

    def error_received(self, exc: Exception) -> None:
        log.debug("%s: %s", self.spec, exc)

    async def stop(self) -> None:
        for s in list(self.streams.values()):
            s.close()
        if self.transport is not None:
            self.transport.close()
        await super().stop()
