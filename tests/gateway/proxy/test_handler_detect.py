"""Next-layer choice on real connections: HTTP only for a well-formed request line, which
may arrive in pieces; raw TCP that merely begins like a request stays raw."""

from __future__ import annotations

import asyncio


async def test_raw_protocol_starting_with_get_is_relayed_raw(gateway, servers, socks5):
    echo = await servers.echo(close_after_line=True)
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "127.0.0.1", echo)
    w.write(b"GET 1000\n")  # the lab bulk server's protocol: not HTTP
    await w.drain()
    assert await asyncio.wait_for(r.read(), 10) == b"GET 1000\n"
    w.close()
    (flow,) = await gateway.hooks.wait_for("tcp_end")
    assert flow.messages[0].content == b"GET 1000\n"
    assert not gateway.hooks.args("request")


async def test_request_line_in_pieces_is_still_http(gateway, servers, socks5):
    port = await servers.http()
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "127.0.0.1", port)
    for piece in (b"GET /hel", b"lo HTTP/1", b".1\r", b"\nHost: piece.test\r\nConnection: close\r\n\r\n"):
        w.write(piece)
        await w.drain()
        await asyncio.sleep(0.05)
    body = await asyncio.wait_for(r.read(), 10)
    w.close()
    assert body.startswith(b"HTTP/1.1 200") and b"host=piece.test" in body
    (flow,) = await gateway.hooks.wait_for("response")
    assert flow.request.path == "/hello"
    assert not gateway.hooks.args("tcp_start")


async def test_a_first_line_that_never_ends_becomes_raw_after_the_timeout(gateway, servers, socks5):
    echo = await servers.echo(close_after_line=True)
    proxy = await gateway.start("socks5@127.0.0.1:0")  # client_first_timeout is 0.5 s here
    r, w = await socks5(proxy.address[1], "127.0.0.1", echo)
    w.write(b"GET /")
    await w.drain()
    (flow,) = await gateway.hooks.wait_for("tcp_start")  # decided without the line end
    w.write(b"waited\n")
    await w.drain()
    assert await asyncio.wait_for(r.read(), 10) == b"GET /waited\n"
    w.close()
    await gateway.hooks.wait_for("tcp_end")
    assert b"".join(m.content for m in flow.messages if m.from_client) == b"GET /waited\n"
