"""One HTTP request/response exchange through the proxy, with mitmproxy's hook order.

requestheaders -> (request body) -> request -> (server) -> responseheaders -> (response
body) -> response, or error.  An addon answering in requestheaders/request skips the
server; ``flow.kill()`` ends the exchange; a streamed body (``.stream = True``, a callable,
or larger than ``stream_large_bodies``) passes through chunk by chunk and the
request/response hook then sees ``content is None`` after the body went through.

The exchange is written against two small interfaces, so the same code serves a client
speaking HTTP/1 or HTTP/2 and a server speaking either: the client side (one HTTP/1
connection or one HTTP/2 stream) and the upstream from ``ServerPool``.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.layers.context import LayerContext
from gateway.layers.http.flow_hooks import is_killed, set_error, trigger
from gateway.layers.http.http1_parse import Fields
from gateway.layers.http.upstream import ServerGone, ServerPool

log = logging.getLogger("gateway.http")


class ClientGone(Exception):
    """The client closed, reset or sent broken HTTP in the middle of an exchange."""


class ResponseWriter(Protocol):
    async def data(self, data: bytes) -> None: ...
    async def end(self, trailers: Fields | None = None) -> None: ...


class ClientSide(Protocol):
    request_trailers: Fields | None

    def request_body(self) -> AsyncIterator[bytes]: ...
    async def send_continue(self) -> None: ...
    async def send_response(self, response: Any) -> None: ...
    async def start_response(self, response: Any) -> ResponseWriter: ...
    async def send_error_response(self, status_code: int, message: str) -> None: ...


@dataclass
class Outcome:
    keep_alive: bool = True
    upgrade: Any = None
    """The upstream whose raw streams take over (101 Switching Protocols)."""


def parse_size(value: Any) -> int | None:
    """mitmproxy's size strings: "1m", "512k", "2g", "100b" or a plain number (bytes)."""
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    s = str(value).strip().lower()
    mult = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
    if s and s[-1] in mult:
        return int(float(s[:-1]) * mult[s[-1]])
    return int(s)


def _option(ctx: LayerContext, name: str, default: Any = None) -> Any:
    try:
        return getattr(ctx.options, name)
    except (AttributeError, KeyError):
        return default


def _content_length(message: Any) -> int | None:
    try:
        value = message.headers.get("content-length")
        return int(value) if value is not None else None
    except (ValueError, TypeError):
        return None


def _apply_stream(stream: Any, chunk: bytes) -> bytes:
    if callable(stream):
        out = stream(chunk)
        if isinstance(out, bytes | bytearray):
            return bytes(out)
        return b"".join(out)
    return chunk


class BodyTooLarge(Exception):
    """A buffered body exceeds ``body_size_limit``."""


async def _buffer(
    chunks: AsyncIterator[bytes], limit: int | None, refuse: int | None = None
) -> tuple[bytes | None, list[bytes]]:
    """Read a whole body unless it grows past ``limit``: then (None, what was read so far)
    and the caller streams the prefix and the rest of ``chunks``.  Past ``refuse``
    (``body_size_limit``, when smaller) it raises BodyTooLarge."""
    parts: list[bytes] = []
    size = 0
    it = chunks.__aiter__()
    while True:
        try:
            chunk = await it.__anext__()
        except StopAsyncIteration:
            return b"".join(parts), []
        parts.append(chunk)
        size += len(chunk)
        if refuse is not None and size > refuse and (limit is None or refuse <= limit):
            raise BodyTooLarge(f"body larger than body_size_limit ({refuse} bytes)")
        if limit is not None and size > limit:
            return None, parts


async def _prefixed(prefix: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for p in prefix:
        yield p
    async for chunk in rest:
        yield chunk


def make_response(head: Any, *, http_version: str | None = None) -> Any:
    from gateway.http import Headers, Response

    return Response(
        http_version or head.http_version.decode(),
        head.status_code,
        head.reason,
        Headers(head.fields),
        None,
        None,
        time.time(),
        None,
    )


async def run_exchange(
    ctx: LayerContext,
    pool: ServerPool,
    flow: Any,
    client: ClientSide,
    *,
    alpn: list[bytes],
) -> Outcome:
    cut: list[bool] = []
    outcome = await _exchange(ctx, pool, flow, client, alpn, cut)
    if cut:
        # The server answered before the request body was complete: the client is told
        # to stop sending it (HTTP/2: RST_STREAM NO_ERROR after the response; HTTP/1: the
        # connection closes, since the rest of the body is still on the wire).
        outcome.keep_alive = False
        stop = getattr(client, "stop_request_body", None)
        if stop is not None:
            try:
                await stop()
            except (ClientGone, ConnectionError, OSError):
                pass
    return outcome


async def _early_response_head(up: Any) -> Any:
    early = getattr(up, "early_response_head", None)
    if early is None:
        return None
    try:
        return await early()
    except (ServerGone, OSError, ssl.SSLError):
        return None


async def _exchange(
    ctx: LayerContext, pool: ServerPool, flow: Any, client: ClientSide, alpn: list[bytes], cut: list[bool]
) -> Outcome:
    request = flow.request
    limit = parse_size(_option(ctx, "stream_large_bodies"))
    refuse = parse_size(_option(ctx, "body_size_limit"))

    await trigger(ctx, "requestheaders", flow)
    if is_killed(flow):
        return await _killed(ctx, flow)

    request_stream: Any = False
    request_body: AsyncIterator[bytes] | None = None
    if flow.response is None:
        if request.headers.get("expect", "").lower() == "100-continue":
            del request.headers["expect"]
            try:
                await client.send_continue()
            except (ConnectionError, OSError) as e:
                return await _client_gone(ctx, flow, e)
        request_stream = request.stream
        cl = _content_length(request)
        if not request_stream and limit is not None and cl is not None and cl > limit:
            request_stream = True
        if not request_stream and refuse is not None and cl is not None and cl > refuse:
            return await _refuse(ctx, flow, client, 413, f"request body larger than body_size_limit ({refuse} bytes)")
        if not request_stream:
            try:
                body, prefix = await _buffer(client.request_body(), limit, refuse)
            except ClientGone as e:
                return await _client_gone(ctx, flow, e)
            except BodyTooLarge as e:
                return await _refuse(ctx, flow, client, 413, f"request {e}")
            if body is None:
                request_stream = True
                request_body = _prefixed(prefix, client.request_body())
            else:
                request.raw_content = body
                if client.request_trailers:
                    from gateway.http import Headers

                    request.trailers = Headers(client.request_trailers)
                request.timestamp_end = time.time()
                await trigger(ctx, "request", flow)
                if is_killed(flow):
                    return await _killed(ctx, flow)
        if request_stream:
            request.raw_content = None  # type: ignore[assignment]
            request_body = request_body or client.request_body()

    if flow.response is not None:
        # Answered by an addon without contacting the server.
        return await _send_buffered_response(ctx, flow, client)

    # A kept-alive server connection may have been closed by the server while idle; a
    # buffered request that fails on one before any response byte is sent again once on a
    # fresh connection (as browsers do).
    early: Any = None
    for attempt in range(2):
        try:
            up = await pool.acquire(request, alpn=alpn)
        except (OSError, ssl.SSLError, ServerGone, ValueError) as e:
            return await _server_failed(
                ctx, flow, client, f"server connection to {request.host}:{request.port} failed: {e}"
            )
        flow.server_conn = up.server
        try:
            try:
                if request_stream:
                    assert request_body is not None
                    body_iter = request_body.__aiter__()
                    try:
                        first: bytes | None = await body_iter.__anext__()
                    except StopAsyncIteration:
                        first = None
                    if first is None:
                        # Nothing to stream (e.g. a GET): send it as the empty message it is,
                        # rather than inventing a chunked body.
                        await up.send_request(request, streamed=False)
                    else:
                        writer = await up.send_request(request, streamed=True)
                        await writer.data(_apply_stream(request_stream, first))
                        async for chunk in body_iter:
                            await writer.data(_apply_stream(request_stream, chunk))
                        await writer.end(client.request_trailers)
                else:
                    await up.send_request(request, streamed=False)
            except (ServerGone, OSError, ssl.SSLError):
                # A server may answer before the whole body arrived and then stop reading
                # (RFC 9113 8.1: nginx's 413 then RST_STREAM NO_ERROR): that answer is the
                # response, not a failure.
                early = await _early_response_head(up)
                if early is None:
                    raise
                log.debug("server answered before the request body was complete")
                cut.append(True)
            if request_stream:
                request.timestamp_end = time.time()
                await trigger(ctx, "request", flow)
                if is_killed(flow):
                    pool.release_broken(up)
                    return await _killed(ctx, flow)
            head = early if cut else await up.read_response_head()
            break
        except ClientGone as e:
            pool.release_broken(up)
            return await _client_gone(ctx, flow, e)
        except (ServerGone, OSError, ssl.SSLError) as e:
            pool.release_broken(up)
            if attempt == 0 and not request_stream and getattr(up, "reused", False):
                log.debug("reused server connection failed (%s); retrying on a new one", e)
                continue
            return await _server_failed(ctx, flow, client, str(e))

    flow.response = make_response(head)
    await trigger(ctx, "responseheaders", flow)
    if is_killed(flow):
        pool.release_broken(up)
        return await _killed(ctx, flow)

    if head.status_code == 101:
        return await _switch_protocols(ctx, flow, client, up)

    response = flow.response
    response_stream: Any = response.stream
    cl = _content_length(response)
    if not response_stream and limit is not None and cl is not None and cl > limit:
        response_stream = True
    chunks: AsyncIterator[bytes] = up.response_body()
    if not response_stream:
        try:
            body, prefix = await _buffer(chunks, limit, refuse)
        except (ServerGone, OSError) as e:
            pool.release_broken(up)
            return await _server_failed(ctx, flow, client, str(e))
        except BodyTooLarge as e:
            pool.release_broken(up)
            return await _server_failed(ctx, flow, client, f"response {e}")
        if body is None:
            response_stream = True
            chunks = _prefixed(prefix, chunks)
        else:
            response.raw_content = body
            if up.response_trailers:
                from gateway.http import Headers

                response.trailers = Headers(up.response_trailers)
            pool.release(up)
            return await _send_buffered_response(ctx, flow, client)

    # Streamed response.
    response.raw_content = None  # type: ignore[assignment]
    try:
        writer = await client.start_response(response)
    except (ConnectionError, OSError) as e:
        pool.release_broken(up)
        return await _client_gone(ctx, flow, e)
    try:
        async for chunk in chunks:
            await writer.data(_apply_stream(response_stream, chunk))
        await writer.end(up.response_trailers)
    except (ServerGone, ssl.SSLError) as e:
        pool.release_broken(up)
        set_error(flow, str(e))
        await trigger(ctx, "error", flow)
        return Outcome(keep_alive=False)
    except (ClientGone, ConnectionError, OSError) as e:
        pool.release_broken(up)
        return await _client_gone(ctx, flow, e)
    pool.release(up)
    response.timestamp_end = time.time()
    await trigger(ctx, "response", flow)
    return Outcome()


async def _send_buffered_response(ctx: LayerContext, flow: Any, client: ClientSide) -> Outcome:
    response = flow.response
    if response.timestamp_end is None:
        response.timestamp_end = time.time()
    await trigger(ctx, "response", flow)
    if is_killed(flow):
        return await _killed(ctx, flow)
    try:
        await client.send_response(flow.response)
    except (ClientGone, ConnectionError, OSError) as e:
        return await _client_gone(ctx, flow, e)
    return Outcome()


def is_websocket_upgrade(ctx: LayerContext, flow: Any) -> bool:
    """A 101 to ``Upgrade: websocket`` that we relay as WebSocket (option ``websocket``)."""
    return (
        flow.response.status_code == 101
        and flow.response.headers.get("upgrade", "").lower() == "websocket"
        and flow.request.headers.get("sec-websocket-version", "") == "13"
        and bool(_option(ctx, "websocket", True))
    )


async def _switch_protocols(ctx: LayerContext, flow: Any, client: ClientSide, up: Any) -> Outcome:
    flow.response.raw_content = b""
    flow.response.timestamp_end = time.time()
    if is_websocket_upgrade(ctx, flow):
        # As in mitmproxy, the response hook already sees flow.websocket.
        from gateway.websocket import WebSocketData

        flow.websocket = WebSocketData()
    await trigger(ctx, "response", flow)
    if is_killed(flow):
        return await _killed(ctx, flow)
    try:
        await client.send_response(flow.response)
    except (ClientGone, ConnectionError, OSError) as e:
        return await _client_gone(ctx, flow, e)
    return Outcome(keep_alive=False, upgrade=up)


async def _server_failed(ctx: LayerContext, flow: Any, client: ClientSide, msg: str) -> Outcome:
    # The error hook's flow line already says this; at info it was printed twice.
    log.debug("%s", msg)
    set_error(flow, msg)
    await trigger(ctx, "error", flow)
    try:
        await client.send_error_response(502, msg)
    except (ClientGone, ConnectionError, OSError):
        pass
    return Outcome(keep_alive=False)


async def _refuse(ctx: LayerContext, flow: Any, client: ClientSide, status_code: int, msg: str) -> Outcome:
    """Answer the client ourselves (e.g. 413) and record why; the connection closes since
    the unread body is still on the wire."""
    log.debug("%s", msg)
    set_error(flow, msg)
    await trigger(ctx, "error", flow)
    try:
        await client.send_error_response(status_code, msg)
    except (ClientGone, ConnectionError, OSError):
        pass
    return Outcome(keep_alive=False)


async def _killed(ctx: LayerContext, flow: Any) -> Outcome:
    """A flow killed by an addon ends as mitmproxy's does: the ``error`` hook sees it
    (flow.error is "Connection killed."), so it gets its terminal line and is saved."""
    await ctx.addons.trigger("error", flow)
    return Outcome(keep_alive=False)


async def _client_gone(ctx: LayerContext, flow: Any, e: BaseException) -> Outcome:
    set_error(flow, f"client disconnected: {e}" if str(e) else "client disconnected")
    await trigger(ctx, "error", flow)
    return Outcome(keep_alive=False)
