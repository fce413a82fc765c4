"""WebSocket through the layer: the `websockets` client and aiohttp's client against an
aiohttp echo server; messages recorded, hooks called, a hook changes and drops messages."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
import websockets

pytestmark = pytest.mark.timeout(60)


class Rewrite:
    def websocket_message(self, flow: Any) -> None:
        msg = flow.websocket.messages[-1]
        if msg.from_client and msg.is_text and msg.text == "drop me":
            msg.drop()
        elif msg.from_client and msg.is_text and msg.text.startswith("change"):
            msg.text = "changed by addon"


async def test_websocket_relay_records_and_rewrites(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(mode=f"reverse:http://127.0.0.1:{origin.port}@0", addons=[Rewrite()])
    async with websockets.connect(f"ws://127.0.0.1:{proxy.port}/ws") as ws:
        await ws.send("hello")
        assert await ws.recv() == "echo:hello"
        await ws.send(b"\x00\x01binary")
        assert await ws.recv() == b"echo:\x00\x01binary"
        await ws.send("drop me")
        await ws.send("change this")
        assert await ws.recv() == "echo:changed by addon"
        big = "x" * 200_000
        await ws.send(big)
        assert await ws.recv() == "echo:" + big
    for _ in range(250):
        if proxy.recorder.flows("websocket_end"):
            break
        await asyncio.sleep(0.02)
    (flow,) = proxy.recorder.flows("websocket_end")
    names = proxy.recorder.names(flow)
    assert names[:4] == ["requestheaders", "request", "responseheaders", "response"]
    assert names[4] == "websocket_start" and names[-1] == "websocket_end"
    assert flow.response.status_code == 101
    contents = [(m.from_client, m.content) for m in flow.websocket.messages]
    assert contents[:6] == [
        (True, b"hello"), (False, b"echo:hello"),
        (True, b"\x00\x01binary"), (False, b"echo:\x00\x01binary"),
        (True, b"drop me"), (True, b"changed by addon"),
    ]
    assert flow.websocket.messages[4].dropped
    assert flow.websocket.closed_by_client is True and flow.websocket.close_code == 1000
    assert "permessage-deflate" in flow.response.headers.get("sec-websocket-extensions", "")


async def test_websocket_through_regular_mode(proxy: Any, origin: Any) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{origin.url}/ws", proxy=proxy.url) as ws:
            await ws.send_str("via proxy")
            assert (await ws.receive_str()) == "echo:via proxy"
    for _ in range(250):
        if proxy.recorder.flows("websocket_end"):
            break
        await asyncio.sleep(0.02)
    (flow,) = proxy.recorder.flows("websocket_end")
    assert [m.content for m in flow.websocket.messages] == [b"via proxy", b"echo:via proxy"]


async def test_server_vanishing_ends_the_websocket(proxy_factory: Any, raw_server_factory: Any) -> None:
    srv = await raw_server_factory(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        close=True,
    )
    proxy = await proxy_factory(mode=f"reverse:http://127.0.0.1:{srv.port}@0")
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101")
    assert await asyncio.wait_for(reader.read(), 10) == b""
    for _ in range(250):
        if proxy.recorder.flows("websocket_end"):
            break
        await asyncio.sleep(0.02)
    (flow,) = proxy.recorder.flows("websocket_end")
    assert flow.websocket.close_code == 1006 and flow.websocket.closed_by_client is False
    writer.close()


async def test_response_hook_sees_websocket_and_option_off_relays_raw(proxy_factory: Any, origin: Any) -> None:
    seen: list[Any] = []

    class Look:
        def response(self, flow: Any) -> None:
            seen.append(flow.websocket)

    proxy = await proxy_factory(mode=f"reverse:http://127.0.0.1:{origin.port}@0", addons=[Look()])
    async with websockets.connect(f"ws://127.0.0.1:{proxy.port}/ws") as ws:
        await ws.send("a")
        assert await ws.recv() == "echo:a"
    assert seen and seen[0] is not None

    raw = await proxy_factory(mode=f"reverse:http://127.0.0.1:{origin.port}@0", options={"websocket": False})
    async with websockets.connect(f"ws://127.0.0.1:{raw.port}/ws") as ws:
        await ws.send("b")
        assert await ws.recv() == "echo:b"
    (flow,) = raw.recorder.flows("response")
    assert flow.websocket is None
    assert raw.recorder.flows("websocket_message") == []
