"""A proxy on loopback made of the HTTP layer alone, and real servers for it to reach.

The connection handler (TLS, next-layer detection) is another part; these fixtures build
the ``LayerContext`` the handler would build: a plain asyncio listener whose connection
callback calls ``handle_http``, with a ``connect_server`` that opens real asyncio
connections (TLS without verification, for the test's own self-signed servers).  After
CONNECT the tunnel is served again as plain HTTP toward the CONNECT target, which is
what the handler does for a tunnel that carries HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.layers.context import LayerContext, ServerStream
from gateway.proxy.arrival import Arrival

HOOKS = (
    "http_connect", "requestheaders", "request", "responseheaders", "response", "error",
    "websocket_start", "websocket_message", "websocket_end",
)


class Recorder:
    """Records every HTTP hook call in order: (hook name, flow)."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        for hook in HOOKS:
            setattr(self, hook, self._make(hook))

    def _make(self, hook: str) -> Any:
        def record(flow: Any) -> None:
            self.calls.append((hook, flow))

        return record

    def names(self, flow: Any = None) -> list[str]:
        return [n for n, f in self.calls if flow is None or f is flow]

    def flows(self, hook: str = "response") -> list[Any]:
        return [f for n, f in self.calls if n == hook]


@dataclass
class Proxy:
    port: int
    master: Any
    recorder: Recorder
    server: asyncio.base_events.Server
    connects: list[tuple[tuple[str, int], bool]] = field(default_factory=list)
    tasks: set[asyncio.Task] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def client_ssl_context(alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


async def make_proxy(
    mode: str = "regular", addons: list[Any] | None = None, options: dict[str, Any] | None = None,
    destination: tuple[str, int] | None = None,
) -> Proxy:
    from gateway.connection import Client, Server
    from gateway.layers.http import handle_http
    from gateway.master import Master
    from gateway.options import Options

    master = Master(Options())
    recorder = Recorder()
    master.addons.add(recorder, *(addons or []))
    if options:
        master.options.update(**options)
    proxy: Proxy

    async def connect_server(address: tuple[str, int], *, tls: bool, sni: str | None = None,
                             alpn: list[bytes] | None = None) -> ServerStream:
        proxy.connects.append((tuple(address), tls))
        sslctx = None
        if tls:
            sslctx = client_ssl_context([a.decode() for a in alpn] if alpn else None)
        reader, writer = await asyncio.open_connection(
            address[0], address[1], ssl=sslctx, server_hostname=(sni or address[0]) if tls else None,
            limit=2**20,
        )
        server = Server(address=tuple(address))
        server.peername = writer.get_extra_info("peername")[:2]
        server.sockname = writer.get_extra_info("sockname")[:2]
        if tls:
            obj = writer.get_extra_info("ssl_object")
            server.sni = sni
            proto = obj.selected_alpn_protocol()
            server.alpn = proto.encode() if proto else None
        return ServerStream(reader, writer, server)

    def context_for(arrival: Arrival) -> LayerContext:
        return LayerContext(
            options=master.options, addons=master.addons, client=Client.from_arrival(arrival),
            arrival=arrival, connect_server=connect_server, next_layer=None,  # type: ignore[arg-type]
        )

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, arrival: Arrival) -> None:
        ctx = context_for(arrival)

        async def next_layer(r: Any, w: Any, dest: tuple[str, int]) -> None:
            inner = Arrival(arrival.mode, "tcp", arrival.peername, arrival.sockname, destination=dest)
            await serve(r, w, inner)

        ctx.next_layer = next_layer
        await handle_http(ctx, reader, writer)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        arrival = Arrival(
            mode, "tcp", writer.get_extra_info("peername")[:2], writer.get_extra_info("sockname")[:2],
            destination=destination,
        )
        task = asyncio.current_task()
        assert task is not None
        proxy.tasks.add(task)
        try:
            await serve(reader, writer, arrival)
        finally:
            proxy.tasks.discard(task)

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = Proxy(port, master, recorder, server)
    return proxy


@pytest.fixture
async def proxy_factory() -> AsyncIterator[Any]:
    made: list[Proxy] = []

    async def factory(*args: Any, **kwargs: Any) -> Proxy:
        p = await make_proxy(*args, **kwargs)
        made.append(p)
        return p

    yield factory
    for p in made:
        p.server.close()
        for t in list(p.tasks):
            t.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(p.server.wait_closed(), 5)


@pytest.fixture
async def proxy(proxy_factory: Any) -> Proxy:
    return await proxy_factory()


# -- origin servers -------------------------------------------------------------------------

PATTERN = bytes(range(256)) * 256  # 64 KiB of a known pattern for large bodies


def pattern_bytes(n: int) -> bytes:
    reps, rest = divmod(n, len(PATTERN))
    return PATTERN * reps + PATTERN[:rest]


@dataclass
class Origin:
    port: int
    requests: list[Any]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _origin_app(requests: list[Any]) -> Any:
    from aiohttp import WSMsgType, web

    async def hello(request: web.Request) -> web.Response:
        requests.append(request)
        return web.Response(text="hello world", headers={"X-Origin": "1"})

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        requests.append(request)
        return web.json_response({
            "method": request.method,
            "path": request.path_qs,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body": body.decode("latin-1"),
        })

    async def many_bytes(request: web.Request) -> web.StreamResponse:
        requests.append(request)
        n = int(request.match_info["n"])
        resp = web.StreamResponse()
        if request.query.get("length"):
            resp.content_length = n
        await resp.prepare(request)
        sent = 0
        while sent < n:
            piece = PATTERN[: min(len(PATTERN), n - sent)]
            await resp.write(piece)
            sent += len(piece)
        await resp.write_eof()
        return resp

    async def status(request: web.Request) -> web.Response:
        requests.append(request)
        return web.Response(status=int(request.match_info["code"]), text="" if request.match_info["code"] in ("204", "304") else "status body")

    async def ws(request: web.Request) -> web.WebSocketResponse:
        requests.append(request)
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            if msg.type == WSMsgType.TEXT:
                await sock.send_str("echo:" + msg.data)
            elif msg.type == WSMsgType.BINARY:
                await sock.send_bytes(b"echo:" + msg.data)
        return sock

    app = web.Application(client_max_size=2**30)
    app.router.add_get("/hello", hello)
    app.router.add_route("*", "/echo", echo)
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    app.router.add_get("/bytes/{n}", many_bytes)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/ws", ws)
    return app


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    from aiohttp import web

    requests: list[Any] = []
    runner = web.AppRunner(_origin_app(requests), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Origin(port, requests)
    finally:
        await runner.cleanup()


@dataclass
class RawServer:
    """A TCP server answering each connection with a scripted byte string."""

    port: int
    received: list[bytes]


@pytest.fixture
async def raw_server_factory() -> AsyncIterator[Any]:
    servers: list[asyncio.base_events.Server] = []

    async def factory(answer: bytes, *, close: bool = True, read_until: bytes = b"\r\n\r\n") -> RawServer:
        received: list[bytes] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                data = await asyncio.wait_for(reader.readuntil(read_until), 10)
                received.append(data)
                writer.write(answer)
                await writer.drain()
                if close:
                    writer.close()
                else:
                    await reader.read()
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(srv)
        return RawServer(srv.sockets[0].getsockname()[1], received)

    yield factory
    for s in servers:
        s.close()


# -- HTTP/2 (and HTTP/1) ASGI server over TLS with hypercorn --------------------------------


async def _asgi_app(scope: dict, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            break
    path = scope["path"]
    if path.startswith("/bytes/"):
        n = int(path.rsplit("/", 1)[1])
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(n).encode())]})
        sent = 0
        while sent < n:
            piece = PATTERN[: min(len(PATTERN), n - sent)]
            sent += len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": sent < n})
        return
    import hashlib

    info = {
        "http_version": scope["http_version"],
        "method": scope["method"],
        "path": scope["path"],
        "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
        "body_len": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    out = json.dumps(info).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: Any) -> tuple[str, str]:
    import subprocess

    d = tmp_path_factory.mktemp("cert")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


@dataclass
class H2Origin:
    port: int

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture
async def h2_origin(tls_cert: tuple[str, str]) -> AsyncIterator[H2Origin]:
    """hypercorn over TLS offering h2 and http/1.1 by ALPN."""
    import socket

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.certfile, config.keyfile = tls_cert
    config.alpn_protocols = ["h2", "http/1.1"]
    config.accesslog = None
    config.errorlog = None
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(serve(_asgi_app, config, shutdown_trigger=stop.wait))
    for _ in range(100):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            break
        except OSError:
            await asyncio.sleep(0.05)
    try:
        yield H2Origin(port)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
        with contextlib.suppress(OSError):
            sock.close()


async def _curl(*args: str, input: bytes | None = None) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "30", *args,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(input)
    return proc.returncode or 0, out, err


@pytest.fixture
def curl() -> Any:
    """``await curl(*args, input=b"")`` -> (exit code, stdout, stderr)."""
    return _curl
