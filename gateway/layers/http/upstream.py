"""Server side of HTTP exchanges: which server a request goes to, and the per-client-connection
pool of open server connections (HTTP/1 keep-alive; one multiplexed HTTP/2 connection per
server).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from gateway.layers.context import LayerContext, ServerStream
from gateway.layers.http import http1_assemble
from gateway.layers.http.framing import (
    HOP_BY_HOP_TO_SERVER,
    Framing,
    buffered_framing,
    get,
    streamed_framing,
    wants_keepalive,
    without,
)
from gateway.layers.http.http1_io import BodyWriter, Http1Peer
from gateway.layers.http.http1_parse import (
    Closed,
    Data,
    EndOfMessage,
    Fields,
    ProtocolError,
    ResponseHead,
    expected_body_size,
)
from gateway.layers.http.mode_target import ModeTarget, parse_mode

EARLY_RESPONSE_WAIT = 5.0
"""Seconds to wait for a response from an HTTP/1 server that stopped taking the request."""


class ServerGone(Exception):
    """The server closed, reset or spoke broken HTTP; the flow gets an error."""


def request_fields_for_h1(request: Any) -> Fields:
    """Header fields to send to an HTTP/1 server, translating an HTTP/2 request if needed."""
    fields: Fields = list(request.headers.fields)
    fields = without(fields, HOP_BY_HOP_TO_SERVER)
    if request.http_version.startswith("HTTP/2") or request.http_version.startswith("HTTP/3"):
        fields = [(k, v) for k, v in fields if not k.startswith(b":")]
        cookies = [v for k, v in fields if k.lower() == b"cookie"]
        if len(cookies) > 1:
            # HTTP/2 may split cookies into several fields; HTTP/1 wants one (RFC 9113 8.2.3).
            first = next(i for i, (k, _) in enumerate(fields) if k.lower() == b"cookie")
            fields = [(k, v) for k, v in fields if k.lower() != b"cookie"]
            fields.insert(first, (b"cookie", b"; ".join(cookies)))
        if get(fields, b"host") is None:
            authority = request.authority or _host_port(request)
            fields.insert(0, (b"Host", authority.encode("idna") if not authority.isascii() else authority.encode()))
    return fields


def _host_port(request: Any) -> str:
    default = {"http": 80, "https": 443}.get(request.scheme)
    host = request.host if ":" not in request.host else f"[{request.host}]"
    return host if request.port == default else f"{host}:{request.port}"


class Http1Upstream:
    """One HTTP/1 server connection carrying one request at a time."""

    protocol = "http/1.1"

    def __init__(self, stream: ServerStream, key: tuple, *, via_proxy: bool) -> None:
        self.stream = stream
        self.server = stream.server
        self.key = key
        self.via_proxy = via_proxy
        self.peer = Http1Peer(stream.reader, stream.writer, is_request=False)
        self.reusable = True
        self.reused = False
        """Taken from the idle pool: a failure before the response may be a stale connection."""
        self._method = b"GET"
        self.response_trailers: Fields | None = None
        self.response_framing_close = False

    def _target(self, request: Any) -> bytes:
        if request.method.upper() == "CONNECT":
            return request.authority.encode() or f"{request.host}:{request.port}".encode()
        if self.via_proxy:
            return f"{request.scheme}://{_host_port(request)}".encode() + (request.path.encode() or b"/")
        return request.path.encode() or b"/"

    def _version(self, request: Any) -> bytes:
        v = request.http_version
        return v.encode() if v in ("HTTP/1.0", "HTTP/1.1") else b"HTTP/1.1"

    async def send_request(self, request: Any, *, streamed: bool) -> BodyWriter:
        """Write the head (and the whole body unless streamed); returns the body writer."""
        self._method = request.method.encode()
        fields = request_fields_for_h1(request)
        version = self._version(request)
        if not wants_keepalive(version, fields):
            self.reusable = False
        if streamed:
            fields, framing = streamed_framing(fields, no_body=False, peer_http11=True, is_request=True)
        else:
            body = request.raw_content or b""
            fields, framing = buffered_framing(
                fields, body, request.trailers and list(request.trailers.fields), no_body=False,
                peer_http11=True, is_request=True,
            )
        head = http1_assemble.request_head(self._method, self._target(request), version, fields)
        writer = BodyWriter(self.peer, framing)
        try:
            if streamed:
                await self.peer.write(head)
            else:
                body = request.raw_content or b""
                if framing is Framing.CHUNKED:
                    trailers = request.trailers and list(request.trailers.fields)
                    await self.peer.write(
                        head + http1_assemble.chunk(body) + http1_assemble.last_chunk(trailers)
                    )
                else:
                    await self.peer.write(head + body)
        except (ConnectionError, OSError) as e:
            self.reusable = False
            raise ServerGone(f"server connection lost while sending the request: {e}") from e
        return writer

    async def read_response_head(self) -> ResponseHead:
        """The final response head (1xx other than 101 skipped)."""
        for _ in range(100):
            try:
                ev = await self.peer.next_event()
            except ProtocolError as e:
                self.reusable = False
                raise ServerGone(f"invalid HTTP response from server: {e}") from e
            if isinstance(ev, Closed):
                self.reusable = False
                raise ServerGone("server closed the connection without a response")
            assert isinstance(ev, ResponseHead)
            if 100 <= ev.status_code < 200 and ev.status_code != 101:
                self.peer.parser.set_body(0)
                await self.peer.next_event()  # EndOfMessage
                continue
            if not wants_keepalive(ev.http_version, ev.fields):
                self.reusable = False
            try:
                size = expected_body_size(
                    ev.fields, is_request=False, method=self._method, status_code=ev.status_code
                )
            except ProtocolError as e:
                self.reusable = False
                raise ServerGone(f"invalid HTTP response from server: {e}") from e
            if ev.status_code == 101 or (self._method == b"CONNECT" and 200 <= ev.status_code < 300):
                self.reusable = False
                return ev
            if size < 0 and size != -2:  # until close
                self.reusable = False
                self.response_framing_close = True
            self.peer.parser.set_body(size)
            return ev
        raise ServerGone("too many informational responses")

    async def early_response_head(self) -> ResponseHead | None:
        """After sending failed: the response the server sent before it stopped reading
        (its write side may still be open, hence the bound)."""
        self.reusable = False
        try:
            async with asyncio.timeout(EARLY_RESPONSE_WAIT):
                return await self.read_response_head()
        except (ServerGone, ConnectionError, OSError, TimeoutError):
            return None

    async def response_body(self) -> AsyncIterator[bytes]:
        while True:
            try:
                ev = await self.peer.next_event()
            except ProtocolError as e:
                self.reusable = False
                raise ServerGone(f"server connection broke during the response body: {e}") from e
            if isinstance(ev, Data):
                yield ev.data
            elif isinstance(ev, EndOfMessage):
                self.response_trailers = ev.trailers
                return
            else:
                self.reusable = False
                raise ServerGone("server closed during the response body")

    def detach(self) -> tuple[asyncio.StreamReader, Any, bytes]:
        """Hand the raw streams over (after 101 or a CONNECT) with bytes already read."""
        self.reusable = False
        return self.stream.reader, self.stream.writer, self.peer.parser.pause()


class ServerPool:
    """Open server connections of one client connection, reused across its requests."""

    def __init__(self, ctx: LayerContext) -> None:
        self.ctx = ctx
        self.mode: ModeTarget = parse_mode(ctx.arrival.mode)
        self._idle: dict[tuple, list[Http1Upstream]] = {}
        self._h2: dict[tuple, Any] = {}
        self._prepared: ServerStream | None = ctx.server
        self._all: list[ServerStream] = []
        self._connecting: dict[tuple, asyncio.Future[None]] = {}

    def route(self, request: Any) -> tuple[tuple[str, int], bool, str | None, bool]:
        """(address, tls, sni, via_proxy) for a request."""
        mode = self.mode
        if mode.name == "upstream" and mode.address and request.scheme in ("http", "ws"):
            return mode.address, mode.scheme == "https", mode.address[0], True
        tls = request.scheme in ("https", "wss")
        sni = self._sni(request) if tls else None
        return (request.host, request.port), tls, sni, False

    def _sni(self, request: Any) -> str | None:
        client_sni = getattr(self.ctx.client, "sni", None)
        dest = self.ctx.arrival.destination
        if client_sni and dest and request.host == dest[0]:
            return client_sni
        return request.host or client_sni

    async def acquire(self, request: Any, *, alpn: list[bytes]) -> Any:
        """An upstream for this request: an idle HTTP/1 connection, the server's HTTP/2
        connection, or a new connection (whose ALPN decides which)."""
        address, tls, sni, via_proxy = self.route(request)
        key = (address, tls, sni, via_proxy)
        pending = self._connecting.get(key)
        if pending is not None:
            # Another exchange is connecting to the same server: if that turns out to be
            # HTTP/2, share it instead of opening a second connection.
            await asyncio.wait([pending])
        h2conn = self._h2.get(key)
        if h2conn is not None and h2conn.usable:
            return h2conn.open_stream()
        idle = self._idle.get(key)
        while idle:
            up = idle.pop()
            if not up.stream.reader.at_eof():
                up.reused = True
                return up
            up.peer.close()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._connecting[key] = done
        try:
            return await self._connect(key, address, tls, sni, via_proxy, alpn)
        finally:
            done.set_result(None)
            if self._connecting.get(key) is done:
                del self._connecting[key]

    async def _connect(
        self, key: tuple, address: tuple[str, int], tls: bool, sni: str | None, via_proxy: bool, alpn: list[bytes]
    ) -> Any:
        stream = self._take_prepared(address, tls)
        failed = self.ctx.extra.get("server_error")
        if stream is None and tls and failed is not None and self.ctx.extra.get("server_error_address") == tuple(address):
            # The TLS layer's handshake with this server failed moments ago (e.g. an
            # untrusted certificate): a second one would fail the same way and log it again.
            raise ServerGone(str(failed))
        if stream is None:
            stream = await self.ctx.connect_server(address, tls=tls, sni=sni, alpn=alpn if tls else None)
            self._all.append(stream)
        server = stream.server
        if getattr(server, "timestamp_start", None) is None:
            try:
                server.timestamp_start = time.time()
            except AttributeError:
                pass
        if tls and getattr(server, "alpn", None) == b"h2":
            from gateway.layers.http.http2_upstream import H2Upstream

            h2conn = H2Upstream(stream, key)
            await h2conn.start()
            self._h2[key] = h2conn
            return h2conn.open_stream()
        return Http1Upstream(stream, key, via_proxy=via_proxy)

    def _take_prepared(self, address: tuple[str, int], tls: bool) -> ServerStream | None:
        s = self._prepared
        if s is None:
            return None
        srv_addr = getattr(s.server, "address", None)
        if srv_addr is not None and tuple(srv_addr[:2]) != tuple(address):
            return None
        self._prepared = None
        self._all.append(s)
        return s

    def release(self, up: Any) -> None:
        if isinstance(up, Http1Upstream):
            if up.reusable:
                self._idle.setdefault(up.key, []).append(up)
            else:
                up.peer.close()

    def release_broken(self, up: Any) -> None:
        """An exchange failed half-way: this upstream cannot carry another request."""
        if isinstance(up, Http1Upstream):
            up.reusable = False
            up.peer.close()
        elif hasattr(up, "reset"):
            up.reset()

    async def close(self) -> None:
        for h2conn in self._h2.values():
            await h2conn.close()
        for stream in self._all:
            try:
                stream.writer.close()
            except Exception:  # noqa: BLE001
                pass
        self._idle.clear()
        self._h2.clear()
