"""HTTP/2 toward the server (h2, client side): one multiplexed connection per server and
client connection; each exchange opens a stream on it.

A reader task moves frames from the server into per-stream response queues; server push
is refused (ENABLE_PUSH 0, and any pushed stream reset); GOAWAY makes the connection
unusable for new streams and fails streams the server will not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from gateway.layers.context import ServerStream
from gateway.layers.http import h2_frame_repr  # noqa: F401 - installs the cheap frame repr
from gateway.layers.http.framing import h1_to_h2_fields
from gateway.layers.http.h2_flow_control import H2Sender, InboundBody, StreamGone
from gateway.layers.http.http1_io import READ_SIZE
from gateway.layers.http.http1_parse import Fields, ResponseHead
from gateway.layers.http.upstream import ServerGone

log = logging.getLogger("gateway.http2")

STREAM_WINDOW = 1024 * 1024
CONNECTION_WINDOW = 4 * 1024 * 1024


def request_headers_for_h2(request: Any) -> list[tuple[bytes, bytes]]:
    fields = [(k, v) for k, v in request.headers.fields if not k.startswith(b":")]
    authority = request.data.authority
    if not authority:
        host = next((v for k, v in fields if k.lower() == b"host"), None)
        authority = host or f"{request.host}:{request.port}".encode()
    return [
        (b":method", request.data.method),
        (b":scheme", request.data.scheme or b"https"),
        (b":authority", authority),
        (b":path", request.data.path or b"/"),
    ] + h1_to_h2_fields(fields)


class H2UpstreamStream:
    """One exchange on the server's HTTP/2 connection (same interface as Http1Upstream)."""

    protocol = "h2"
    reusable = False

    def __init__(self, conn: H2Upstream, stream_id: int) -> None:
        self.conn = conn
        self.server = conn.server
        self.stream_id = stream_id
        self.head: asyncio.Future[ResponseHead] = asyncio.get_running_loop().create_future()
        self.body = InboundBody(conn.sender, stream_id, ServerGone)
        self.method = b"GET"

    @property
    def response_trailers(self) -> Fields | None:
        return self.body.trailers

    async def send_request(self, request: Any, *, streamed: bool) -> Any:
        self.method = request.data.method
        headers = request_headers_for_h2(request)
        body = None if streamed else (request.raw_content or b"")
        trailers = None if streamed or not request.trailers else h1_to_h2_fields(list(request.trailers.fields))
        try:
            if body is not None and not body and not trailers:
                await self.conn.sender.send_headers(self.stream_id, headers, end_stream=True)
            else:
                await self.conn.sender.send_headers(self.stream_id, headers)
                if body:
                    await self.conn.sender.send_data(self.stream_id, body, end_stream=not trailers)
                if trailers:
                    await self.conn.sender.end_stream(self.stream_id, trailers)
        except StreamGone as e:
            raise ServerGone(f"HTTP/2 stream to server failed: {e}") from e
        return _UpstreamWriter(self)

    async def read_response_head(self) -> ResponseHead:
        return await self.head

    async def early_response_head(self) -> ResponseHead | None:
        """The response that arrived before sending the request failed, if any."""
        if self.head.done() and not self.head.cancelled() and self.head.exception() is None:
            return self.head.result()
        return None

    def response_body(self) -> Any:
        return self.body.chunks()

    def detach(self) -> Any:
        raise ServerGone("HTTP/2 streams cannot be upgraded")

    def reset(self) -> None:
        self.conn.sender.reset(self.stream_id, h2.errors.ErrorCodes.CANCEL)
        self.conn.streams.pop(self.stream_id, None)
        self.body.release()

    def fail(self, msg: str) -> None:
        if not self.head.done():
            self.head.set_exception(ServerGone(msg))
        self.body.fail(msg)


class _UpstreamWriter:
    def __init__(self, stream: H2UpstreamStream) -> None:
        self.stream = stream

    async def data(self, data: bytes) -> None:
        try:
            await self.stream.conn.sender.send_data(self.stream.stream_id, data)
        except StreamGone as e:
            raise ServerGone(str(e)) from e

    async def end(self, trailers: Fields | None = None) -> None:
        try:
            await self.stream.conn.sender.end_stream(
                self.stream.stream_id, h1_to_h2_fields(trailers) if trailers else None
            )
        except StreamGone as e:
            raise ServerGone(str(e)) from e


class H2Upstream:
    protocol = "h2"

    def __init__(self, stream: ServerStream, key: tuple) -> None:
        self.stream = stream
        self.server = stream.server
        self.key = key
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.h2 = h2.connection.H2Connection(config)
        self.sender = H2Sender(self.h2, stream.writer)
        self.streams: dict[int, H2UpstreamStream] = {}
        self.goaway = False
        self.closed = False
        self._task: asyncio.Task[None] | None = None

    @property
    def usable(self) -> bool:
        if self.closed or self.goaway:
            return False
        limit = self.h2.remote_settings.max_concurrent_streams
        return len(self.streams) < limit

    async def start(self) -> None:
        self.h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
            },
        )
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        await self.sender.flush()
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    def open_stream(self) -> H2UpstreamStream:
        sid = self.h2.get_next_available_stream_id()
        s = H2UpstreamStream(self, sid)
        self.streams[sid] = s
        return s

    async def _read_loop(self) -> None:
        reason = "server closed the HTTP/2 connection"
        try:
            while True:
                try:
                    data = await self.stream.reader.read(READ_SIZE)
                except (ConnectionError, OSError) as e:
                    reason = f"server connection lost: {e}"
                    data = b""
                if not data:
                    break
                try:
                    events = self.h2.receive_data(data)
                except h2.exceptions.ProtocolError as e:
                    reason = f"HTTP/2 protocol error from server: {e}"
                    with contextlib.suppress(ConnectionError, OSError):
                        await self.sender.flush()
                    break
                for event in events:
                    self._handle(event)
                with contextlib.suppress(ConnectionError, OSError):
                    await self.sender.flush()
        finally:
            self.closed = True
            self.sender.fail_all()
            for s in list(self.streams.values()):
                s.fail(reason)
            self.streams.clear()

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            s = self.streams.get(event.stream_id)
            if s is not None and not s.head.done():
                status = b"0"
                fields: Fields = []
                for k, v in event.headers:
                    if k == b":status":
                        status = v
                    elif not k.startswith(b":"):
                        fields.append((k, v))
                s.head.set_result(ResponseHead(b"HTTP/2.0", int(status), b"", fields))
        elif isinstance(event, h2.events.DataReceived):
            s = self.streams.get(event.stream_id)
            if s is not None:
                s.body.feed(event.data, event.flow_controlled_length)
            else:
                self.sender.acknowledge(event.stream_id, event.flow_controlled_length)
        elif isinstance(event, h2.events.TrailersReceived):
            s = self.streams.get(event.stream_id)
            if s is not None:
                s.body.end(list(event.headers))
        elif isinstance(event, h2.events.StreamEnded):
            s = self.streams.pop(event.stream_id, None)
            if s is not None and s.body.trailers is None:
                s.body.end()
        elif isinstance(event, h2.events.StreamReset):
            self.sender.reset_streams.add(event.stream_id)
            s = self.streams.pop(event.stream_id, None)
            if s is not None:
                s.fail(f"server reset the stream (error code {event.error_code})")
            self.sender.window_changed()
        elif isinstance(event, h2.events.PushedStreamReceived):
            self.sender.reset(event.pushed_stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self.sender.window_changed()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = True
            last = event.last_stream_id or 0
            for sid, s in list(self.streams.items()):
                if sid > last:
                    s.fail("server sent GOAWAY before answering this stream")
                    self.streams.pop(sid, None)

    async def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(Exception):
                self.h2.close_connection()
                await self.sender.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        with contextlib.suppress(Exception):
            self.stream.writer.close()
