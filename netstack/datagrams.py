"""``NetstackDatagramStream``: the datagrams of one UDP 4-tuple as a stream.

It has the shape of gateway's ``DatagramStream`` protocol (``recv``/``send``/``close``/
``get_extra_info``) without importing gateway: ``recv()`` returns the next datagram from the
client, or None once the flow went idle (the stack's UDP idle timeout) or was closed.  The
queue is bounded: a client outrunning the application loses datagrams, as it would with a
full socket buffer, and they are counted.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netstack.aio import NetstackDriver


class NetstackDatagramStream:
    def __init__(
        self,
        driver: NetstackDriver,
        client: tuple[str, int],
        destination: tuple[str, int],
        max_queue: int = 256,
    ) -> None:
        self._driver = driver
        self._client = client
        self._destination = destination
        self._queue: deque[bytes] = deque()
        self._max_queue = max_queue
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.dropped = 0
        self._extra = {**driver._extra_info, "peername": client, "sockname": destination, "socket": None}

    async def recv(self) -> bytes | None:
        while not self._queue:
            if self._closed:
                return None
            self._waiter = self._driver._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def send(self, data: bytes) -> None:
        """Send one datagram to the client, from the address it wrote to."""
        if not self._closed:
            self._driver.send_udp(self._destination, self._client, data)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._driver._forget_flow((self._client, self._destination), self)
            self._wake()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def _put(self, data: bytes) -> None:
        if self._closed:
            return
        if len(self._queue) >= self._max_queue:
            self.dropped += 1
            self._driver.stack.counters["udp.stream_queue_full"] += 1
            return
        self._queue.append(data)
        self._wake()

    def _expired(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)
