"""HTTP/1.1 through the layer in regular mode: real clients (curl, httpx, raw sockets)
against real servers (aiohttp, scripted TCP servers) on loopback."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)


async def curl(*args: str, input: bytes | None = None) -> tuple[int, bytes, bytes]:
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "20", *args,
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(input)
    return proc.returncode or 0, out, err


async def raw_exchange(port: int, data: bytes, *, read_until_close: bool = True, timeout: float = 10) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        if read_until_close:
            return await asyncio.wait_for(reader.read(), timeout)
        return await asyncio.wait_for(reader.read(65536), timeout)
    finally:
        writer.close()


async def test_get_through_regular_mode_records_hooks_in_order(proxy: Any, origin: Any) -> None:
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.get(f"{origin.url}/hello")
    assert r.status_code == 200 and r.text == "hello world"
    assert r.headers["x-origin"] == "1"
    (flow,) = proxy.recorder.flows("response")
    assert proxy.recorder.names(flow) == ["requestheaders", "request", "responseheaders", "response"]
    assert flow.request.method == "GET" and flow.request.host == "127.0.0.1"
    assert flow.request.port == origin.port and flow.request.path == "/hello"
    assert flow.response.content == b"hello world"
    assert flow.error is None


async def test_keepalive_reuses_client_and_server_connections(proxy: Any, origin: Any) -> None:
    rc, out, err = await curl("--proxy", proxy.url, f"{origin.url}/hello", f"{origin.url}/hello", f"{origin.url}/echo")
    assert rc == 0, err
    assert out.startswith(b"hello worldhello world{")
    assert len(proxy.recorder.flows("response")) == 3
    assert len({id(f.client_conn) for f in proxy.recorder.flows("response")}) == 1
    assert len(proxy.connects) == 1  # one server connection for all three


async def test_chunked_upload_and_content_length_post(proxy: Any, origin: Any) -> None:
    body = b"x" * 100_000
    rc, out, err = await curl(
        "--proxy", proxy.url, "-H", "Transfer-Encoding: chunked", "--data-binary", "@-", f"{origin.url}/echo",
        input=body,
    )
    assert rc == 0, err
    echoed = json.loads(out)
    assert echoed["body"] == body.decode() and echoed["method"] == "POST"
    (flow,) = proxy.recorder.flows("request")
    assert flow.request.content == body
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.put(f"{origin.url}/echo", content=b"abc")
    assert r.json()["body"] == "abc"


async def test_expect_100_continue(proxy: Any, origin: Any) -> None:
    body = b"y" * 5000
    rc, out, err = await curl(
        "--proxy", proxy.url, "-H", "Expect: 100-continue", "--expect100-timeout", "15",
        "--data-binary", "@-", f"{origin.url}/echo", "-w", "%{time_total}", input=body,
    )
    assert rc == 0, err
    assert json.loads(out[: out.rindex(b"}") + 1])["body"] == body.decode()
    (flow,) = proxy.recorder.flows("request")
    assert "expect" not in flow.request.headers


async def test_head_204_304_have_no_body(proxy: Any, origin: Any) -> None:
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.head(f"{origin.url}/hello")
        assert r.status_code == 200 and r.content == b""
        for code in (204, 304):
            r = await client.get(f"{origin.url}/status/{code}")
            assert r.status_code == code and r.content == b""
        r = await client.get(f"{origin.url}/hello")  # the connection is still in step
        assert r.text == "hello world"


async def test_close_delimited_response_is_buffered_and_framed(proxy: Any, raw_server_factory: Any) -> None:
    srv = await raw_server_factory(b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil the end")
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.get(f"http://127.0.0.1:{srv.port}/x")
    assert r.text == "until the end"
    assert r.headers["content-length"] == str(len("until the end"))


async def test_trailers_pass_through(proxy: Any, raw_server_factory: Any) -> None:
    srv = await raw_server_factory(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
        b"5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n"
    )
    data = await raw_exchange(
        proxy.port, f"GET http://127.0.0.1:{srv.port}/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    assert data.endswith(b"5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n")
    (flow,) = proxy.recorder.flows("response")
    assert flow.response.trailers["x-sum"] == "42"


@pytest.mark.parametrize(
    "bad",
    [
        b"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost : x\r\n\r\n",
        b"garbage garbage\r\n\r\n",
        b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST http://127.0.0.1:1/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
async def test_malformed_request_gets_400_and_an_error_flow(proxy: Any, origin: Any, bad: bytes) -> None:
    data = await raw_exchange(proxy.port, bad)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert len(proxy.recorder.flows("error")) == 1
    async with httpx.AsyncClient(proxy=proxy.url) as client:  # the proxy still serves others
        assert (await client.get(f"{origin.url}/hello")).status_code == 200


async def test_broken_chunking_from_client_is_an_error_flow(proxy: Any, origin: Any) -> None:
    data = await raw_exchange(
        proxy.port,
        f"POST {origin.url}/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n".encode(),
    )
    assert data == b""
    (flow,) = proxy.recorder.flows("error")
    assert "chunk" in flow.error.msg
    assert origin.requests == []


async def test_client_disconnecting_mid_body(proxy: Any, origin: Any) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(f"POST {origin.url}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial".encode())
    await writer.drain()
    for _ in range(100):
        if proxy.recorder.flows("requestheaders"):
            break
        await asyncio.sleep(0.02)
    writer.close()
    for _ in range(250):
        if proxy.recorder.flows("error"):
            break
        await asyncio.sleep(0.02)
    (flow,) = proxy.recorder.flows("error")
    assert "client disconnected" in flow.error.msg
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        assert (await client.get(f"{origin.url}/hello")).status_code == 200


async def test_unreachable_server_gives_502_and_error_hook(proxy: Any) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on (bound, never listening)
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
        async with httpx.AsyncClient(proxy=proxy.url) as client:
            r = await client.get(f"http://127.0.0.1:{closed_port}/")
    assert r.status_code == 502
    (flow,) = proxy.recorder.flows("error")
    assert flow.error is not None and flow.response is None


async def test_invalid_response_from_server_gives_502(proxy: Any, raw_server_factory: Any) -> None:
    srv = await raw_server_factory(b"NOT HTTP AT ALL\r\n\r\n")
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.get(f"http://127.0.0.1:{srv.port}/")
    assert r.status_code == 502
    assert "invalid HTTP response" in proxy.recorder.flows("error")[0].error.msg


async def test_connect_tunnel_carries_http(proxy: Any, origin: Any) -> None:
    rc, out, err = await curl("--proxy", proxy.url, "--proxytunnel", f"{origin.url}/hello")
    assert rc == 0, err
    assert out == b"hello world"
    names = proxy.recorder.names()
    assert names[0] == "http_connect"
    (flow,) = proxy.recorder.flows("response")
    assert flow.request.host == "127.0.0.1" and flow.request.port == origin.port


async def test_proxyauth(proxy_factory: Any, origin: Any) -> None:
    from gateway.addons.proxyserver import Proxyserver

    proxy = await proxy_factory(addons=[Proxyserver()], options={"proxyauth": "alice:secret"})
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.get(f"{origin.url}/hello")
        assert r.status_code == 407 and "proxy-authenticate" in r.headers
    async with httpx.AsyncClient(proxy=f"http://alice:secret@127.0.0.1:{proxy.port}") as client:
        r = await client.get(f"{origin.url}/echo")
        assert r.status_code == 200
        assert "proxy-authorization" not in {k.lower() for k, _ in r.json()["headers"]}


async def test_reverse_mode_rewrites_host_unless_keep_host_header(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(mode=f"reverse:http://127.0.0.1:{origin.port}@0")
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{proxy.port}/echo?a=1", headers={"Host": "example.org"})
    assert r.json()["path"] == "/echo?a=1"
    assert ["Host", f"127.0.0.1:{origin.port}"] in r.json()["headers"]
    proxy = await proxy_factory(
        mode=f"reverse:http://127.0.0.1:{origin.port}@0", options={"keep_host_header": True}
    )
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{proxy.port}/echo?a=1", headers={"Host": "example.org"})
    assert ["Host", "example.org"] in r.json()["headers"]


async def test_transparent_mode_goes_to_the_destination(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(mode="transparent", destination=("127.0.0.1", origin.port))
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{proxy.port}/hello", headers={"Host": "example.org"})
    assert r.text == "hello world"
    (flow,) = proxy.recorder.flows("response")
    assert flow.request.pretty_host == "example.org"


async def test_stale_kept_alive_server_connection_is_retried_once(proxy: Any) -> None:
    """The server answers one request per connection and drops a second one unanswered
    (like a server whose keep-alive timeout just expired): the proxy resends on a fresh
    connection instead of failing the client's request."""
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")  # a second request: dropped
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(proxy=proxy.url) as client:
            for _ in range(3):
                r = await client.get(f"http://127.0.0.1:{port}/")
                assert r.text == "ok"
        assert connections == 3
        assert proxy.recorder.flows("error") == []
    finally:
        server.close()


async def test_client_leaving_during_a_streamed_response(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(options={"stream_large_bodies": "64k"})
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(f"GET {origin.url}/bytes/200000000 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    got = 0
    while got < 1_000_000:
        got += len(await asyncio.wait_for(reader.read(65536), 10))
    writer.transport.abort()
    for _ in range(250):
        if proxy.recorder.flows("error"):
            break
        await asyncio.sleep(0.02)
    (flow,) = proxy.recorder.flows("error")
    assert "client disconnected" in flow.error.msg
    assert flow.response is not None and flow.response.status_code == 200
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        assert (await client.get(f"{origin.url}/hello")).text == "hello world"


async def test_h2c_upgrade_offer_is_removed(proxy: Any, origin: Any, curl: Any) -> None:
    rc, out, err = await curl("--proxy", proxy.url, "--http2", f"{origin.url}/echo")
    assert rc == 0, err
    names = {k.lower() for k, _ in json.loads(out)["headers"]}
    assert "upgrade" not in names and "http2-settings" not in names
    (flow,) = proxy.recorder.flows("response")
    assert flow.response.status_code == 200
