"""The HTTP/1 client connection: reads requests, runs each exchange, keeps the connection
alive, answers broken requests with 400, and hands over to the next layer after CONNECT
or to the WebSocket relay after a 101.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from http import HTTPStatus
from typing import Any

from gateway.layers.context import LayerContext
from gateway.layers.http import http1_assemble
from gateway.layers.http.exchange import ClientGone, Outcome, run_exchange
from gateway.layers.http.flow_hooks import is_killed, set_error, trigger
from gateway.layers.http.framing import (
    Framing,
    buffered_framing,
    streamed_framing,
    wants_keepalive,
    without,
)
from gateway.layers.http.http1_io import BodyWriter, Http1Peer, prefixed_reader
from gateway.layers.http.http1_parse import (
    Closed,
    Data,
    EndOfMessage,
    Fields,
    ProtocolError,
    RequestHead,
    expected_body_size,
)
from gateway.layers.http.request_target import RequestTargetError, build_request
from gateway.layers.http.upstream import ServerPool
from gateway.net.address_text import format_address

log = logging.getLogger("gateway.http")

H2_PREFACE_REST = b"SM\r\n\r\n"
MAX_REQUESTS_PER_CONNECTION = 1_000_000


def reason_for(status_code: int, reason: str | bytes | None) -> bytes:
    if isinstance(reason, str):
        reason = reason.encode("latin-1", "replace")
    if reason:
        return reason
    try:
        return HTTPStatus(status_code).phrase.encode()
    except ValueError:
        return b""


def simple_response(status_code: int, message: str, extra: Fields | None = None, *, close: bool = True) -> bytes:
    body = message.encode("utf-8", "replace")
    fields: Fields = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
    ]
    fields += extra or []
    if close:
        fields.append((b"connection", b"close"))
    return http1_assemble.response_head(b"HTTP/1.1", status_code, reason_for(status_code, None), fields) + body


class Http1ClientSide:
    """The client half of one exchange on an HTTP/1 connection (see exchange.ClientSide)."""

    def __init__(self, peer: Http1Peer, head: RequestHead) -> None:
        self.peer = peer
        self.head = head
        self.http11 = head.http_version == b"HTTP/1.1"
        self.keep_alive = wants_keepalive(head.http_version, head.fields)
        self.request_trailers: Fields | None = None
        self.body_done = False
        self.no_body_response = head.method.upper() == b"HEAD"

    async def request_body(self) -> AsyncIterator[bytes]:
        while not self.body_done:
            try:
                ev = await self.peer.next_event()
            except ProtocolError as e:
                self.keep_alive = False
                raise ClientGone(str(e)) from e
            if isinstance(ev, Data):
                yield ev.data
            elif isinstance(ev, EndOfMessage):
                self.request_trailers = ev.trailers
                self.body_done = True
            else:
                self.keep_alive = False
                raise ClientGone("client closed the connection during the request body")

    async def send_continue(self) -> None:
        await self.peer.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _head(self, response: Any, fields: Fields) -> bytes:
        version = response.http_version if response.http_version in ("HTTP/1.0", "HTTP/1.1") else "HTTP/1.1"
        if not wants_keepalive(version.encode(), fields):
            self.keep_alive = False
        return http1_assemble.response_head(
            version.encode(), response.status_code, reason_for(response.status_code, response.reason), fields
        )

    def _fields(self, response: Any) -> Fields:
        fields = [(k, v) for k, v in response.headers.fields if not k.startswith(b":")]
        if not response.http_version.startswith("HTTP/1"):
            # From an HTTP/2 server or made by an addon for an HTTP/2 flow: nothing to strip,
            # HTTP/2 has no connection-specific fields.
            fields = without(fields, {b"connection", b"keep-alive"})
        return fields

    def _no_body(self, response: Any) -> bool:
        s = response.status_code
        return self.no_body_response or 100 <= s < 200 or s in (204, 304)

    async def send_response(self, response: Any) -> None:
        body = response.raw_content or b""
        trailers = list(response.trailers.fields) if response.trailers else None
        fields, framing = buffered_framing(
            self._fields(response), body, trailers,
            no_body=self._no_body(response), peer_http11=self.http11, is_request=False,
        )
        data = self._head(response, fields)
        if framing is Framing.CHUNKED:
            data += http1_assemble.chunk(body) + http1_assemble.last_chunk(trailers)
        elif framing is Framing.LENGTH:
            data += body
        await self.peer.write(data)

    async def start_response(self, response: Any) -> BodyWriter:
        fields, framing = streamed_framing(
            self._fields(response), no_body=self._no_body(response), peer_http11=self.http11, is_request=False
        )
        if framing is Framing.CLOSE:
            self.keep_alive = False
        await self.peer.write(self._head(response, fields))
        return BodyWriter(self.peer, framing)

    async def send_error_response(self, status_code: int, message: str) -> None:
        self.keep_alive = False
        await self.peer.write(simple_response(status_code, message))


async def serve_http1(ctx: LayerContext, reader: Any, writer: Any, pool: ServerPool) -> None:
    peer = Http1Peer(reader, writer, is_request=True)
    mode = pool.mode
    tunnelled = ctx.arrival.destination is not None or ctx.server is not None
    for _ in range(MAX_REQUESTS_PER_CONNECTION):
        try:
            ev = await peer.next_event()
        except ProtocolError as e:
            await _bad_request(ctx, peer, f"malformed HTTP request: {e}")
            return
        if isinstance(ev, Closed):
            return
        assert isinstance(ev, RequestHead)
        head = ev
        if head.method == b"PRI" and head.target == b"*" and head.http_version == b"HTTP/2.0":
            rest = peer.parser.pause()
            if not rest.startswith(H2_PREFACE_REST[: len(rest)]):
                await _bad_request(ctx, peer, "invalid HTTP/2 connection preface")
                return
            from gateway.layers.http.http2 import serve_http2

            preface = b"PRI * HTTP/2.0\r\n\r\n" + rest
            await serve_http2(ctx, reader, writer, pool, initial=preface)
            return

        # proxyauth is the Proxyserver addon's (http_connect / requestheaders), as in mitmproxy.
        proxy_form = mode.proxy_form and not tunnelled
        try:
            request = build_request(ctx, head, mode, proxy_form=proxy_form, client_tls=_client_tls(ctx, writer))
            size = expected_body_size(head.fields, is_request=True)
        except (RequestTargetError, ProtocolError) as e:
            await _bad_request(ctx, peer, str(e), head=head)
            return
        _strip_h2c_upgrade(request)
        flow = _new_flow(ctx, request)

        if head.method.upper() == b"CONNECT":
            if not proxy_form:
                await _bad_request(ctx, peer, "CONNECT is only accepted in proxy modes", head=head)
                return
            await _connect(ctx, peer, flow)
            return

        peer.parser.set_body(size)
        client = Http1ClientSide(peer, head)
        outcome: Outcome = await run_exchange(ctx, pool, flow, client, alpn=[b"http/1.1"])
        flow.live = False
        if outcome.upgrade is not None:
            await _upgraded(ctx, flow, peer, outcome.upgrade)
            return
        if not outcome.keep_alive or not client.keep_alive or not client.body_done:
            # An answer given before the body was read leaves the body on the wire.
            return


def _strip_h2c_upgrade(request: Any) -> None:
    """Drop an ``Upgrade: h2c`` offer (as mitmproxy does): the server then answers in
    HTTP/1.1, which we can intercept, instead of switching to cleartext HTTP/2 mid-stream."""
    if request.headers.get("upgrade", "").strip().lower() != "h2c":
        return
    del request.headers["upgrade"]
    request.headers.pop("http2-settings", None)
    conn = request.headers.get("connection")
    if conn is not None:
        tokens = [t.strip() for t in conn.split(",") if t.strip().lower() not in ("upgrade", "http2-settings")]
        if tokens:
            request.headers["connection"] = ", ".join(tokens)
        else:
            del request.headers["connection"]


def _client_tls(ctx: LayerContext, writer: Any) -> bool:
    if ctx.extra.get("client_tls") or getattr(ctx.client, "tls_established", False):
        return True
    try:
        return writer.get_extra_info("ssl_object") is not None
    except Exception:  # noqa: BLE001
        return False


def _new_flow(ctx: LayerContext, request: Any) -> Any:
    from gateway.connection import Server
    from gateway.http import HTTPFlow

    server = ctx.server.server if ctx.server is not None else Server(address=(request.host, request.port))
    flow = HTTPFlow(ctx.client, server, live=True)
    flow.request = request
    return flow


async def _bad_request(ctx: LayerContext, peer: Http1Peer, msg: str, *, head: RequestHead | None = None) -> None:
    """Answer 400, record an error flow, close."""
    # The error hook's flow line reports it (with the client); this is only for debugging.
    log.debug("%s from %s", msg, format_address(getattr(ctx.arrival, "peername", None)))
    try:
        from gateway.http import Headers, HTTPFlow, Request

        request = Request(
            "", 0,
            head.method if head else b"",
            b"", b"",
            head.target if head else b"",
            head.http_version if head else b"HTTP/1.1",
            Headers(head.fields if head else []),
            None, None, time.time(), time.time(),
        )
        from gateway.connection import Server

        flow = HTTPFlow(ctx.client, Server(address=None), live=False)
        flow.request = request
        set_error(flow, msg)
        await ctx.addons.trigger("error", flow)
    except Exception:  # noqa: BLE001 - the 400 answer matters more than the record
        log.exception("could not record the error flow")
    try:
        await peer.write(simple_response(400, msg))
    except (ConnectionError, OSError):
        pass


async def _connect(ctx: LayerContext, peer: Http1Peer, flow: Any) -> None:
    """CONNECT in a proxy mode: http_connect hook, 200, then the tunnel's next layer."""
    from gateway.http import Response

    await trigger(ctx, "http_connect", flow)
    if is_killed(flow):
        return
    if flow.response is None:
        flow.response = Response.make(200)
    response = flow.response
    client = Http1ClientSide(peer, RequestHead(b"CONNECT", b"", b"HTTP/1.1", []))
    if not 200 <= response.status_code < 300:
        client.keep_alive = False
        await client.send_response(response)
        return
    await peer.write(
        http1_assemble.response_head(b"HTTP/1.1", response.status_code, reason_for(response.status_code, "Connection established"), [])
    )
    flow.live = False
    rest = peer.parser.pause()
    request = flow.request
    await ctx.next_layer(prefixed_reader(peer.reader, rest), peer.writer, (request.host, request.port))


async def _upgraded(ctx: LayerContext, flow: Any, peer: Http1Peer, up: Any) -> None:
    client_rest = peer.parser.pause()
    server_reader, server_writer, server_rest = up.detach()
    creader = prefixed_reader(peer.reader, client_rest)
    sreader = prefixed_reader(server_reader, server_rest)
    if flow.websocket is not None:
        from gateway.layers.http.websocket import relay_websocket

        await relay_websocket(ctx, flow, creader, peer.writer, sreader, server_writer)
    else:
        from gateway.layers.http.raw_relay import relay_bytes

        await relay_bytes(creader, peer.writer, sreader, server_writer)
