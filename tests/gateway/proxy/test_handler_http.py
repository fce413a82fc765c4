"""The handler in front of the HTTP layer: ALPN agreement for HTTP/2 through TLS
interception, DNS on port 53, and broken input after CONNECT."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from gateway_fixtures import run


@pytest.fixture
async def h2_server(upstream_ca):
    import socket

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = f"proto={scope['http_version']} path={scope['path']}".encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, chain = upstream_ca.get_cert("localhost", ["127.0.0.1"])
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile = str(chain)
    config.keyfile = str(upstream_ca._leaf_key_path)
    config.alpn_protocols = ["h2", "http/1.1"]
    config.accesslog = None
    config.errorlog = None
    shutdown = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=shutdown.wait))
    for _ in range(200):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            break
        except OSError:
            await asyncio.sleep(0.02)
    try:
        yield port
    finally:
        shutdown.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


async def test_http2_negotiated_on_both_sides(gateway, h2_server):
    proxy = await gateway.start("regular@127.0.0.1:0")
    code, out, err = await run(
        "curl", "-sS", "--max-time", "20", "--http2", "--proxy", f"http://127.0.0.1:{proxy.address[1]}",
        "--cacert", gateway.ca_pem, f"https://localhost:{h2_server}/x",
    )
    assert code == 0, err
    assert out.decode() == "proto=2 path=/x"
    (flow,) = await gateway.hooks.wait_for("response")
    assert flow.client_conn.alpn == b"h2"
    assert flow.server_conn.alpn == b"h2"
    assert flow.request.http_version == "HTTP/2.0"


async def test_http1_client_gets_http1_even_if_server_speaks_h2(gateway, h2_server):
    proxy = await gateway.start("regular@127.0.0.1:0")
    code, out, err = await run(
        "curl", "-sS", "--max-time", "20", "--http1.1", "--proxy", f"http://127.0.0.1:{proxy.address[1]}",
        "--cacert", gateway.ca_pem, f"https://localhost:{h2_server}/y",
    )
    assert code == 0, err
    assert out.decode() == "proto=1.1 path=/y"  # we offered the server only what the client offered
    (flow,) = await gateway.hooks.wait_for("response")
    assert flow.client_conn.alpn == b"http/1.1"


async def test_garbage_after_connect(gateway, servers):
    echo = await servers.echo()
    proxy = await gateway.start("regular@127.0.0.1:0")
    bystander_r, bystander_w = await asyncio.open_connection("127.0.0.1", proxy.address[1])
    bystander_w.write(f"CONNECT 127.0.0.1:{echo} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await bystander_w.drain()
    assert (await bystander_r.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")

    # Garbage claiming to be TLS after CONNECT: a clean close.
    r, w = await asyncio.open_connection("127.0.0.1", proxy.address[1])
    w.write(f"CONNECT 127.0.0.1:{echo} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await w.drain()
    assert (await r.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    w.write(b"\x16\x03\x01\xff\xff" + b"\x00" * 40)
    await w.drain()
    w.write_eof()
    assert await asyncio.wait_for(r.read(), 10) == b""
    w.close()

    # Binary garbage (neither TLS nor HTTP) after CONNECT: relayed raw to the server.
    r, w = await asyncio.open_connection("127.0.0.1", proxy.address[1])
    w.write(f"CONNECT 127.0.0.1:{echo} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await w.drain()
    await r.readuntil(b"\r\n\r\n")
    w.write(b"\x00\xffgarbage")
    await w.drain()
    assert await r.readexactly(9) == b"\x00\xffgarbage"
    w.close()

    # The bystander's tunnel still works.
    bystander_w.write(b"\x01ok")
    await bystander_w.drain()
    assert await bystander_r.readexactly(3) == b"\x01ok"
    bystander_w.close()


async def test_dns_over_tcp_port_53_through_socks(gateway, servers, socks5):
    import dns.message

    upstream = await servers.dns({"example.test": "10.1.2.3"})
    gateway.options.update(dns_server=[f"127.0.0.1:{upstream}"])
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "127.0.0.53", 53)  # port 53: the DNS layer, not TCP
    q = dns.message.make_query("example.test", "A").to_wire()
    w.write(len(q).to_bytes(2, "big") + q)
    await w.drain()
    n = int.from_bytes(await r.readexactly(2), "big")
    resp = dns.message.from_wire(await r.readexactly(n))
    assert resp.answer[0][0].address == "10.1.2.3"
    w.close()
    (flow,) = await gateway.hooks.wait_for("dns_response")
    assert flow.request.question.name == "example.test"
    assert servers.dns_queries == ["example.test"]
