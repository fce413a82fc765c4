"""The HTTP layer behind the real connection handler and regular mode (start_mode):
HTTPS with TLS interception carrying HTTP/2 and WebSocket, with clients that trust only
the gateway's CA."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import ssl
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

_path = Path(__file__).resolve().parents[2] / "proxy" / "gateway_fixtures.py"
if "gateway_fixtures" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("gateway_fixtures", _path)
    assert _spec and _spec.loader
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["gateway_fixtures"] = _mod
    _spec.loader.exec_module(_mod)
_fixtures = sys.modules["gateway_fixtures"]
gateway = _fixtures.gateway
servers = _fixtures.servers
upstream_ca = _fixtures.upstream_ca

pytestmark = pytest.mark.timeout(60)


async def test_curl_http2_through_regular_mode_to_h2_server(gateway: Any, h2_origin: Any, curl: Any) -> None:
    gateway.options.update(ssl_insecure=True)  # hypercorn's certificate is self-signed
    proxy = await gateway.start("regular@127.0.0.1:0")
    rc, out, err = await curl(
        "--http2", "--proxy", f"http://127.0.0.1:{proxy.address[1]}", "--cacert", gateway.ca_pem,
        f"https://localhost:{h2_origin.port}/a", f"https://localhost:{h2_origin.port}/b",
    )
    assert rc == 0, err
    first, second = out.split(b"}{")
    assert json.loads(first + b"}")["http_version"] == "2"
    flows = await gateway.hooks.wait_for("response", 2)
    assert all(f.request.http_version == "HTTP/2.0" for f in flows)
    assert all(f.server_conn.alpn == b"h2" for f in flows)
    assert [f.request.path for f in flows] == ["/a", "/b"]


async def test_httpx_h2_concurrent_through_regular_mode(gateway: Any, h2_origin: Any) -> None:
    gateway.options.update(ssl_insecure=True)
    proxy = await gateway.start("regular@127.0.0.1:0")
    verify = ssl.create_default_context(cafile=gateway.ca_pem)
    async with httpx.AsyncClient(proxy=f"http://127.0.0.1:{proxy.address[1]}", verify=verify, http2=True) as c:
        rs = await asyncio.gather(*(c.get(f"https://localhost:{h2_origin.port}/n{i}") for i in range(10)))
    assert sorted(r.json()["path"] for r in rs) == sorted(f"/n{i}" for i in range(10))
    assert all(r.http_version == "HTTP/2" for r in rs)


async def test_wss_through_regular_mode(gateway: Any, servers: Any) -> None:
    from aiohttp import WSMsgType, web

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            if msg.type == WSMsgType.TEXT:
                await sock.send_str("echo:" + msg.data)
        return sock

    app = web.Application()
    app.router.add_get("/ws", ws)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=servers.tls_context(["localhost"]))
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        proxy = await gateway.start("regular@127.0.0.1:0")
        sslctx = ssl.create_default_context(cafile=gateway.ca_pem)
        async with websockets.connect(
            f"wss://localhost:{port}/ws", proxy=f"http://127.0.0.1:{proxy.address[1]}", ssl=sslctx
        ) as conn:
            await conn.send("secure hello")
            assert await conn.recv() == "echo:secure hello"
        (flow,) = await gateway.hooks.wait_for("websocket_end")
        assert [m.content for m in flow.websocket.messages] == [b"secure hello", b"echo:secure hello"]
        assert flow.request.scheme == "https"
    finally:
        await runner.cleanup()
