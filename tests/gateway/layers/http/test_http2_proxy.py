"""HTTP/2 through the layer: curl and httpx speaking h2 to us, hypercorn speaking h2 over
TLS behind us, and translation to and from an HTTP/1-only server (aiohttp)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

pytestmark = pytest.mark.timeout(60)


async def test_h2_prior_knowledge_client_to_http1_server_is_translated(
    proxy_factory: Any, origin: Any, curl: Any
) -> None:
    proxy = await proxy_factory(mode=f"reverse:http://127.0.0.1:{origin.port}@0")
    rc, out, err = await curl("--http2-prior-knowledge", f"http://127.0.0.1:{proxy.port}/echo?x=1",
                              "--data-binary", "hello h2")
    assert rc == 0, err
    echoed = json.loads(out)
    assert echoed["body"] == "hello h2" and echoed["path"] == "/echo?x=1"
    (flow,) = proxy.recorder.flows("response")
    assert flow.request.http_version == "HTTP/2.0"
    assert flow.response.http_version == "HTTP/1.1"
    assert proxy.recorder.names(flow) == ["requestheaders", "request", "responseheaders", "response"]


async def test_many_concurrent_h2_streams_are_separate_flows(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(mode=f"reverse:http://127.0.0.1:{origin.port}@0")
    async with httpx.AsyncClient(http1=False, http2=True) as client:
        rs = await asyncio.gather(*(client.get(f"http://127.0.0.1:{proxy.port}/echo/{i}") for i in range(20)))
    assert sorted(r.json()["path"] for r in rs) == sorted(f"/echo/{i}" for i in range(20))
    assert all(r.http_version == "HTTP/2" for r in rs)
    flows = proxy.recorder.flows("response")
    assert len(flows) == 20 and len({id(f) for f in flows}) == 20
    assert len({id(f.client_conn) for f in flows}) == 1


async def test_h2_both_sides_over_tls_upstream(proxy_factory: Any, h2_origin: Any, curl: Any) -> None:
    proxy = await proxy_factory(mode=f"reverse:https://127.0.0.1:{h2_origin.port}@0")
    body = bytes(range(256)) * 8000  # 2 MB: more than the default flow-control windows
    rc, out, err = await curl("--http2-prior-knowledge", f"http://127.0.0.1:{proxy.port}/upload",
                              "--data-binary", "@-", input=body)
    assert rc == 0, err
    info = json.loads(out)
    assert info["http_version"] == "2"
    assert info["body_sha256"] == hashlib.sha256(body).hexdigest()
    (flow,) = proxy.recorder.flows("response")
    assert flow.server_conn.alpn == b"h2"
    assert flow.request.content == body


async def test_h2_download_through_h2_upstream(proxy_factory: Any, h2_origin: Any) -> None:
    proxy = await proxy_factory(mode=f"reverse:https://127.0.0.1:{h2_origin.port}@0")
    async with httpx.AsyncClient(http1=False, http2=True) as client:
        rs = await asyncio.gather(*(client.get(f"http://127.0.0.1:{proxy.port}/bytes/3000000") for _ in range(3)))
    assert all(len(r.content) == 3_000_000 for r in rs)
    assert len(proxy.connects) == 1  # one multiplexed server connection


async def test_http1_client_to_tls_server_offers_only_http1(proxy_factory: Any, h2_origin: Any) -> None:
    """As mitmproxy does, the upstream ALPN offer mirrors the client: an HTTP/1 client
    keeps HTTP/1 end to end (so Upgrade and 100-continue keep their meaning)."""
    proxy = await proxy_factory(mode=f"reverse:https://127.0.0.1:{h2_origin.port}@0")
    async with httpx.AsyncClient() as client:
        r = await client.post(f"http://127.0.0.1:{proxy.port}/x", content=b"abc", headers={"Connection": "keep-alive"})
    info = r.json()
    assert info["http_version"] == "1.1" and info["body_len"] == 3
    assert r.http_version == "HTTP/1.1"
    assert r.headers["content-length"] == str(len(r.content))


async def test_h2_stream_reset_by_client_is_an_error_flow_and_others_go_on(
    proxy_factory: Any, raw_server_factory: Any, origin: Any
) -> None:
    slow = await raw_server_factory(b"", close=False)  # accepts the request, never answers
    proxy = await proxy_factory(mode=f"reverse:http://127.0.0.1:{slow.port}@0")
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    conn.send_headers(1, [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", b"/slow")],
                      end_stream=True)
    writer.write(conn.data_to_send())
    for _ in range(100):
        if slow.received:
            break
        await asyncio.sleep(0.02)
    assert slow.received
    conn.reset_stream(1)
    writer.write(conn.data_to_send())
    for _ in range(250):
        if proxy.recorder.flows("error"):
            break
        await asyncio.sleep(0.02)
    (flow,) = proxy.recorder.flows("error")
    assert "reset" in flow.error.msg
    conn.close_connection()
    writer.write(conn.data_to_send())
    writer.close()


async def test_h2_garbage_after_preface_closes_cleanly(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(mode=f"reverse:http://127.0.0.1:{origin.port}@0")
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    # A DATA frame on stream 0: a connection error.
    writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x00\x00\x00\x00\x00\x00abcd")
    data = await asyncio.wait_for(reader.read(), 10)
    assert b"\x07\x00\x00\x00\x00\x00" in data  # a GOAWAY frame, then EOF
    assert reader.at_eof()
    async with httpx.AsyncClient(http1=False, http2=True) as client:
        r = await client.get(f"http://127.0.0.1:{proxy.port}/hello")
    assert r.text == "hello world"


async def test_h2_upload_to_a_stalled_server_is_held_back_by_flow_control(proxy_factory: Any) -> None:
    """A streamed HTTP/2 upload toward a server that stops reading: we acknowledge data only
    as it is forwarded, so the client's windows close and the proxy holds a bounded amount."""

    class Stream:
        def requestheaders(self, flow: Any) -> None:
            flow.request.stream = True

    heads: list[bytes] = []
    release = asyncio.Event()

    async def stall(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        heads.append(await r.readuntil(b"\r\n\r\n"))
        await release.wait()  # reads nothing more
        w.close()

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = await proxy_factory(mode=f"reverse:http://127.0.0.1:{port}@0", addons=[Stream()])
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    conn.send_headers(1, [(b":method", b"POST"), (b":scheme", b"http"), (b":authority", b"x"), (b":path", b"/up")])
    writer.write(conn.data_to_send())
    total = 64 * 1024 * 1024
    sent = 0
    chunk = b"u" * 16384
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3
    while sent < total and loop.time() < deadline:
        window = min(conn.local_flow_control_window(1), conn.max_outbound_frame_size)
        if window > 0:
            conn.send_data(1, chunk[:window])
            sent += min(window, len(chunk))
            writer.write(conn.data_to_send())
            await writer.drain()
            continue
        try:
            data = await asyncio.wait_for(reader.read(65536), 0.3)
        except TimeoutError:
            continue
        if not data:
            break
        conn.receive_data(data)
        writer.write(conn.data_to_send())
    release.set()
    server.close()
    writer.close()
    assert heads  # the request head reached the server
    assert sent < 32 * 1024 * 1024, f"client could push {sent} bytes into a stalled upload"


async def test_h2_streaming_both_directions_through_h2_upstream(
    proxy_factory: Any, h2_origin: Any, curl: Any
) -> None:
    class StreamBoth:
        def requestheaders(self, flow: Any) -> None:
            flow.request.stream = True

        def responseheaders(self, flow: Any) -> None:
            flow.response.stream = True

    proxy = await proxy_factory(mode=f"reverse:https://127.0.0.1:{h2_origin.port}@0", addons=[StreamBoth()])
    body = bytes(range(256)) * 20000  # 5 MB
    rc, out, err = await curl("--http2-prior-knowledge", f"http://127.0.0.1:{proxy.port}/upload",
                              "--data-binary", "@-", input=body)
    assert rc == 0, err
    assert json.loads(out)["body_sha256"] == hashlib.sha256(body).hexdigest()
    async with httpx.AsyncClient(http1=False, http2=True) as client:
        r = await client.get(f"http://127.0.0.1:{proxy.port}/bytes/4000000")
    assert len(r.content) == 4_000_000
    flows = proxy.recorder.flows("response")
    assert all(f.request.raw_content is None and f.response.raw_content is None for f in flows)
    assert all(f.server_conn.alpn == b"h2" for f in flows)


async def test_h2_split_cookies_are_joined_for_http1(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(mode=f"reverse:http://127.0.0.1:{origin.port}@0")
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    conn.send_headers(1, [(b":method", b"GET"), (b":scheme", b"http"), (b":authority", b"x"),
                          (b":path", b"/echo"), (b"cookie", b"a=1"), (b"cookie", b"b=2")], end_stream=True)
    writer.write(conn.data_to_send())
    body = b""
    done = False
    while not done:
        data = await asyncio.wait_for(reader.read(65536), 10)
        assert data
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                body += ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, 1)
            elif isinstance(ev, h2.events.StreamEnded):
                done = True
        writer.write(conn.data_to_send())
    writer.close()
    cookies = [v for k, v in json.loads(body)["headers"] if k.lower() == "cookie"]
    assert cookies == ["a=1; b=2"]
