"""HTTP/2 toward the client (h2, server side): every stream is its own flow and its own task.

The connection task only moves frames: it feeds h2, turns events into per-stream body
queues and window wake-ups, and answers RST_STREAM / GOAWAY.  Each stream's task runs the
same exchange as HTTP/1 (exchange.run_exchange), so hooks, streaming and the choice of
upstream protocol are shared; an HTTP/1-only server gets the request translated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from gateway.layers.context import LayerContext
from gateway.layers.http import h2_frame_repr  # noqa: F401 - installs the cheap frame repr
from gateway.layers.http.exchange import ClientGone, run_exchange
from gateway.layers.http.flow_hooks import set_error
from gateway.layers.http.framing import h1_to_h2_fields
from gateway.layers.http.h2_flow_control import H2Sender, InboundBody, StreamGone
from gateway.layers.http.http1_io import READ_SIZE
from gateway.layers.http.http1_parse import Fields
from gateway.layers.http.mode_target import DEFAULT_PORTS
from gateway.layers.http.request_target import RequestTargetError, parse_authority
from gateway.layers.http.upstream import ServerPool

log = logging.getLogger("gateway.http2")

STREAM_WINDOW = 1024 * 1024
CONNECTION_WINDOW = 4 * 1024 * 1024
MAX_CONCURRENT_STREAMS = 100


def _split_headers(headers: list[tuple[bytes, bytes]]) -> tuple[dict[bytes, bytes], Fields]:
    pseudo: dict[bytes, bytes] = {}
    fields: Fields = []
    for k, v in headers:
        if k.startswith(b":"):
            pseudo[k] = v
        else:
            fields.append((k, v))
    return pseudo, fields


class H2ClientStream:
    """The client half of one exchange on an HTTP/2 connection (see exchange.ClientSide)."""

    def __init__(self, sender: H2Sender, stream_id: int, method: bytes) -> None:
        self.sender = sender
        self.stream_id = stream_id
        self.body = InboundBody(sender, stream_id, ClientGone)
        self.head_request = method.upper() == b"HEAD"

    @property
    def request_trailers(self) -> Fields | None:
        return self.body.trailers

    def request_body(self) -> Any:
        return self.body.chunks()

    async def send_continue(self) -> None:
        await self._guard(self.sender.send_headers(self.stream_id, [(b":status", b"100")]))

    async def _guard(self, aw: Any) -> None:
        try:
            await aw
        except StreamGone as e:
            raise ClientGone(str(e)) from e

    def _headers(self, response: Any) -> list[tuple[bytes, bytes]]:
        fields = h1_to_h2_fields([(k, v) for k, v in response.headers.fields if not k.startswith(b":")])
        return [(b":status", str(response.status_code).encode())] + fields

    def _no_body(self, response: Any) -> bool:
        s = response.status_code
        return self.head_request or 100 <= s < 200 or s in (204, 304)

    async def send_response(self, response: Any) -> None:
        body = b"" if self._no_body(response) else (response.raw_content or b"")
        trailers = list(response.trailers.fields) if response.trailers else None
        headers = self._headers(response)
        if not body and not trailers:
            await self._guard(self.sender.send_headers(self.stream_id, headers, end_stream=True))
            return
        await self._guard(self.sender.send_headers(self.stream_id, headers, flush=not body))
        if body:
            await self._guard(self.sender.send_data(self.stream_id, body, end_stream=not trailers))
        if trailers:
            await self._guard(self.sender.end_stream(self.stream_id, h1_to_h2_fields(trailers)))

    async def start_response(self, response: Any) -> Any:
        headers = [(k, v) for k, v in self._headers(response) if k != b"content-length" or not self._no_body(response)]
        await self._guard(self.sender.send_headers(self.stream_id, headers))
        return _StreamWriter(self)

    async def stop_request_body(self) -> None:
        """The response went out before the request body ended: RST_STREAM NO_ERROR tells
        the client to stop sending it (RFC 9113 8.1)."""
        if not self.body.done:
            self.sender.reset(self.stream_id, h2.errors.ErrorCodes.NO_ERROR)
            await self.sender.flush()

    async def send_error_response(self, status_code: int, message: str) -> None:
        body = message.encode("utf-8", "replace")
        headers = [
            (b":status", str(status_code).encode()),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
        await self._guard(self.sender.send_headers(self.stream_id, headers))
        await self._guard(self.sender.send_data(self.stream_id, body, end_stream=True))


class _StreamWriter:
    def __init__(self, stream: H2ClientStream) -> None:
        self.stream = stream

    async def data(self, data: bytes) -> None:
        if data:
            await self.stream._guard(self.stream.sender.send_data(self.stream.stream_id, data))

    async def end(self, trailers: Fields | None = None) -> None:
        t = h1_to_h2_fields(trailers) if trailers else None
        await self.stream._guard(self.stream.sender.end_stream(self.stream.stream_id, t))


class H2ClientConnection:
    def __init__(self, ctx: LayerContext, reader: Any, writer: Any, pool: ServerPool) -> None:
        self.ctx = ctx
        self.reader = reader
        self.writer = writer
        self.pool = pool
        config = h2.config.H2Configuration(client_side=False, header_encoding=None, validate_inbound_headers=True)
        self.conn = h2.connection.H2Connection(config)
        self.sender = H2Sender(self.conn, writer)
        self.streams: dict[int, H2ClientStream] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.goaway = False

    async def run(self, initial: bytes = b"") -> None:
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 0,
            },
        )
        self.conn.initiate_connection()
        self.conn.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        await self.sender.flush()
        try:
            data = initial
            while True:
                if data:
                    try:
                        events = self.conn.receive_data(data)
                    except h2.exceptions.ProtocolError as e:
                        log.info("HTTP/2 protocol error from client: %s", e)
                        await self._flush_quietly()
                        return
                    for event in events:
                        await self._handle(event)
                    await self.sender.flush()
                    if self.goaway and not self.tasks:
                        return
                try:
                    data = await self.reader.read(READ_SIZE)
                except (ConnectionError, OSError):
                    data = b""
                if not data:
                    return
        finally:
            self.sender.fail_all()
            for stream in list(self.streams.values()):
                stream.body.fail("client connection closed")
            if self.tasks:
                await asyncio.wait(list(self.tasks.values()), timeout=5)
            for task in self.tasks.values():
                task.cancel()

    async def _flush_quietly(self) -> None:
        try:
            await self.sender.flush()
        except (ConnectionError, OSError):
            pass

    async def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._start_stream(event)
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.body.feed(event.data, event.flow_controlled_length)
            else:
                self.sender.acknowledge(event.stream_id, event.flow_controlled_length)
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.body.end(list(event.headers))
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id)
            if stream is not None and stream.body.trailers is None:
                stream.body.end()
        elif isinstance(event, h2.events.StreamReset):
            self.sender.reset_streams.add(event.stream_id)
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.body.fail(f"client reset the stream (error code {event.error_code})")
                self.sender.window_changed()
                task = self.tasks.get(event.stream_id)
                if task is not None and not task.done():
                    task.cancel()
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self.sender.window_changed()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = True
            for sid, task in list(self.tasks.items()):
                if event.last_stream_id is not None and sid > event.last_stream_id:
                    task.cancel()

    def _start_stream(self, event: h2.events.RequestReceived) -> None:
        sid = event.stream_id
        pseudo, fields = _split_headers(list(event.headers))
        method = pseudo.get(b":method", b"GET")
        stream = H2ClientStream(self.sender, sid, method)
        self.streams[sid] = stream
        task = asyncio.get_running_loop().create_task(self._run_stream(stream, pseudo, fields))
        self.tasks[sid] = task

    async def _run_stream(self, stream: H2ClientStream, pseudo: dict[bytes, bytes], fields: Fields) -> None:
        flow = None
        try:
            try:
                request = self._build_request(pseudo, fields)
            except RequestTargetError as e:
                await stream.send_error_response(400, str(e))
                return
            from gateway.http import HTTPFlow

            flow = HTTPFlow(self.ctx.client, _server_for(self.ctx, request), live=True)
            flow.request = request
            await run_exchange(self.ctx, self.pool, flow, stream, alpn=[b"h2", b"http/1.1"])
        except asyncio.CancelledError:
            if flow is not None and flow.error is None:
                set_error(flow, "client reset the stream")
                try:
                    await self.ctx.addons.trigger("error", flow)
                except Exception:  # noqa: BLE001
                    pass
        except ClientGone:
            pass
        except Exception:  # noqa: BLE001
            log.exception("HTTP/2 stream failed")
            self.sender.reset(stream.stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
            await self._flush_quietly()
        finally:
            if flow is not None:
                flow.live = False
            stream.body.release()
            self.streams.pop(stream.stream_id, None)
            self.tasks.pop(stream.stream_id, None)
            if stream.stream_id in self.sender.reset_streams:
                self.sender.reset_streams.discard(stream.stream_id)
            await self._flush_quietly()

    def _build_request(self, pseudo: dict[bytes, bytes], fields: Fields) -> Any:
        from gateway.http import Headers, Request

        method = pseudo.get(b":method", b"")
        scheme = pseudo.get(b":scheme", b"https")
        authority = pseudo.get(b":authority", b"")
        path = pseudo.get(b":path", b"")
        if method == b"CONNECT":
            raise RequestTargetError("CONNECT over HTTP/2 is not supported")
        if not path:
            raise RequestTargetError("HTTP/2 request without :path")
        mode = self.pool.mode
        tunnelled = self.ctx.arrival.destination is not None or self.ctx.server is not None
        host_source = authority or next((v for k, v in fields if k == b"host"), b"")
        if mode.name == "reverse" and mode.address is not None:
            host, port = mode.address
            scheme = (mode.scheme if mode.scheme in ("http", "https") else "https").encode()
        elif mode.proxy_form and not tunnelled:
            host, port = parse_authority(host_source, DEFAULT_PORTS.get(scheme.decode(), 443))
        else:
            dest = self.ctx.arrival.destination
            if dest is None and self.ctx.server is not None:
                dest = tuple(self.ctx.server.server.address[:2])
            if dest is None:
                host, port = parse_authority(host_source, DEFAULT_PORTS.get(scheme.decode(), 443))
            else:
                host, port = dest
        return Request(
            host, port, method, scheme, authority, path, b"HTTP/2.0",
            Headers(fields), None, None, time.time(), None,
        )


def _server_for(ctx: LayerContext, request: Any) -> Any:
    from gateway.connection import Server

    if ctx.server is not None:
        return ctx.server.server
    return Server(address=(request.host, request.port))


async def serve_http2(ctx: LayerContext, reader: Any, writer: Any, pool: ServerPool, *, initial: bytes = b"") -> None:
    await H2ClientConnection(ctx, reader, writer, pool).run(initial)
