"""Sending on an h2 connection without overrunning the peer's flow-control windows.

h2 is sans-IO: it refuses data beyond the window and reports window growth as events.
``H2Sender`` owns the connection's write side: it sends data in pieces that fit the
stream and connection windows and waits for ``WindowUpdated`` / settings changes to go on.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import h2.connection
import h2.exceptions


class StreamGone(Exception):
    """The stream was reset or the connection ended while we were sending on it."""


class H2Sender:
    def __init__(self, conn: h2.connection.H2Connection, writer: Any) -> None:
        self.conn = conn
        self.writer = writer
        self._window = asyncio.Event()
        self.closed = False
        self.reset_streams: set[int] = set()

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    def window_changed(self) -> None:
        """A WINDOW_UPDATE or SETTINGS change arrived: wake senders."""
        self._window.set()

    def fail_all(self) -> None:
        self.closed = True
        self._window.set()

    async def send_data(self, stream_id: int, data: bytes, *, end_stream: bool = False) -> None:
        """Send ``data`` as frames fitting the windows; one socket write per window's worth."""
        view = memoryview(data)
        while True:
            if self.closed or stream_id in self.reset_streams:
                raise StreamGone(f"stream {stream_id} closed")
            try:
                window = self.conn.local_flow_control_window(stream_id)
                frame = self.conn.max_outbound_frame_size
                if window <= 0 and len(view):
                    self._window.clear()
                    await self._window.wait()
                    continue
                if not len(view) and end_stream:
                    self.conn.send_data(stream_id, b"", end_stream=True)
                while len(view) and window > 0:
                    n = min(window, frame, len(view))
                    piece, view = view[:n], view[n:]
                    window -= n
                    self.conn.send_data(stream_id, bytes(piece), end_stream=end_stream and not len(view))
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as e:
                raise StreamGone(str(e)) from e
            await self.flush()
            if not len(view):
                return

    async def send_headers(
        self, stream_id: int, headers: list[tuple[bytes, bytes]], *, end_stream: bool = False, flush: bool = True
    ) -> None:
        """``flush=False`` when data follows at once: HEADERS and DATA then leave in one
        write (curl 7.88 cut a response whose HEADERS came alone while it was uploading)."""
        if self.closed or stream_id in self.reset_streams:
            raise StreamGone(f"stream {stream_id} closed")
        try:
            self.conn.send_headers(stream_id, headers, end_stream=end_stream)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as e:
            raise StreamGone(str(e)) from e
        if flush:
            await self.flush()

    async def end_stream(self, stream_id: int, trailers: list[tuple[bytes, bytes]] | None = None) -> None:
        if trailers:
            await self.send_headers(stream_id, trailers, end_stream=True)
            return
        if self.closed or stream_id in self.reset_streams:
            raise StreamGone(f"stream {stream_id} closed")
        try:
            self.conn.end_stream(stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as e:
            raise StreamGone(str(e)) from e
        await self.flush()

    def acknowledge(self, stream_id: int, n: int) -> None:
        """We forwarded ``n`` flow-controlled bytes: let the peer send that much more."""
        if n <= 0 or self.closed:
            return
        try:
            self.conn.acknowledge_received_data(n, stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            try:
                self.conn.increment_flow_control_window(n)
            except h2.exceptions.ProtocolError:
                pass

    def reset(self, stream_id: int, error_code: int = 0x8) -> None:
        self.reset_streams.add(stream_id)
        try:
            self.conn.reset_stream(stream_id, error_code)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError, KeyError):
            pass


_END = object()

COALESCE_MAX = 256 * 1024
"""Most body bytes handed on as one chunk when several DATA frames are waiting."""


class InboundBody:
    """Body bytes of one stream, handed to the exchange as they arrive; each chunk is
    acknowledged to the peer only when the consumer asks for the next one, i.e. after it
    forwarded the previous one, so a slow receiver slows the sender down.

    DATA frames that arrived together (one read from the connection carries many: nginx
    sends 8 KiB frames) are handed on as one chunk, so the consumer's per-chunk work (an
    h2 send, a TLS write, a flush, a window update) runs once per read, not once per frame.
    """

    def __init__(self, sender: H2Sender, stream_id: int, gone: type[Exception]) -> None:
        self.sender = sender
        self.stream_id = stream_id
        self.gone = gone
        self.trailers: list[tuple[bytes, bytes]] | None = None
        self.done = False
        self._items: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._unacked = 0

    def _put(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def feed(self, data: bytes, flow_controlled_length: int) -> None:
        self._unacked += flow_controlled_length
        self._put((data, flow_controlled_length))

    def end(self, trailers: list[tuple[bytes, bytes]] | None = None) -> None:
        if trailers:
            self.trailers = trailers
        self._put(_END)

    def fail(self, msg: str) -> None:
        self._put(self.gone(msg))

    async def chunks(self) -> Any:
        items = self._items
        while not self.done:
            if not items:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
                continue
            parts: list[bytes] = []
            size = n = taken = 0
            while items and size < COALESCE_MAX:
                item = items[0]
                if item is _END or isinstance(item, Exception):
                    break
                items.popleft()
                taken += 1
                data, length = item
                n += length
                if data:
                    parts.append(data)
                    size += len(data)
            if not taken:
                item = items.popleft()
                self.done = True
                if item is _END:
                    return
                raise item
            if parts:
                yield parts[0] if len(parts) == 1 else b"".join(parts)
            self._unacked -= n
            self.sender.acknowledge(self.stream_id, n)
            await self.sender.flush()

    def release(self) -> None:
        """Give the window of bytes nobody will read back to the peer's connection window."""
        if self._unacked > 0:
            self.sender.acknowledge(self.stream_id, self._unacked)
            self._unacked = 0
