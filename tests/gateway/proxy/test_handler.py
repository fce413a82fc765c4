"""The connection handler through SOCKS5 against real TCP and TLS servers on loopback:
raw TCP relaying with half-close, TLS interception, passthrough, pinned clients and
broken ClientHellos."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from gateway.proxy.clienthello import parse, reassemble


async def test_raw_tcp_relay_records_messages_and_half_close(gateway, servers, socks5):
    echo = await servers.echo()
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "127.0.0.1", echo)
    w.write(b"\x00\x01binary\xff")  # not TLS, not HTTP: raw
    await w.drain()
    assert await r.readexactly(9) == b"\x00\x01binary\xff"
    w.write_eof()  # our half-close must reach the server, which then answers "bye"
    assert await asyncio.wait_for(r.read(), 10) == b"bye"
    w.close()
    (flow,) = await gateway.hooks.wait_for("tcp_end")
    assert [(m.from_client, m.content) for m in flow.messages] == [
        (True, b"\x00\x01binary\xff"), (False, b"\x00\x01binary\xff"), (False, b"bye"),
    ]
    assert flow.server_conn.address == ("127.0.0.1", echo)
    await gateway.hooks.wait_for("client_disconnected")
    names = gateway.hooks.names()
    assert names.index("client_connected") < names.index("tcp_start") < names.index("tcp_end")
    assert names.index("server_connected") < names.index("tcp_start")


async def test_tcp_message_hook_modifies_and_drops(gateway, servers, socks5):
    class Rewrite:
        def tcp_message(self, flow):
            msg = flow.messages[-1]
            if msg.from_client and msg.content.startswith(b"drop"):
                msg.content = b""
            elif msg.from_client:
                msg.content = msg.content.upper()

    gateway.tctx.master.addons.add(Rewrite())
    echo = await servers.echo()
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "127.0.0.1", echo)
    w.write(b"\x01abc")
    await w.drain()
    assert await r.readexactly(4) == b"\x01ABC"
    w.write(b"drop me")
    await w.drain()
    await gateway.hooks.wait_for("tcp_message", 3)
    w.write(b"\x01x")
    await w.drain()
    assert await r.readexactly(2) == b"\x01X"
    w.close()
    assert b"drop me" not in b"".join(servers.received)


async def test_tls_interception_with_upstream_names_and_alpn(gateway, servers, socks5):
    tls_port = await servers.echo(
        tls=servers.tls_context(["localhost", "127.0.0.1", "alt.localhost"], alpn=["h2", "http/1.1", "x-echo"])
    )
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "localhost", tls_port)
    # ALPN "x-echo" is not HTTP: the connection becomes raw TCP inside TLS.
    await w.start_tls(gateway.client_context(["x-echo"]), server_hostname="localhost")
    sslobj = w.get_extra_info("ssl_object")
    assert sslobj.selected_alpn_protocol() == "x-echo"
    names = [v for k, v in sslobj.getpeercert()["subjectAltName"]]
    assert "alt.localhost" in names  # copied from the upstream certificate
    assert sslobj.getpeercert()["issuer"][0][0][1] == "gateway"
    w.write(b"\x00secret")
    await w.drain()
    assert await r.readexactly(7) == b"\x00secret"
    w.close()
    (flow,) = await gateway.hooks.wait_for("tcp_end")
    assert flow.messages[0].content == b"\x00secret"
    assert flow.server_conn.tls and flow.server_conn.alpn == b"x-echo"
    assert flow.client_conn.tls and flow.client_conn.sni == "localhost"
    assert flow.client_conn.alpn_offers == [b"x-echo"]
    (ch,) = gateway.hooks.args("tls_clienthello")
    assert ch.client_hello.sni == "localhost"
    order = [n for n in gateway.hooks.names() if n.startswith("tls_")]
    assert order == [
        "tls_clienthello", "tls_start_server", "tls_established_server",
        "tls_start_client", "tls_established_client",
    ]


async def test_upstream_certificate_verified_by_default(gateway, servers, socks5, tmp_path):
    from gateway.certs import CertStore

    rogue = CertStore(tmp_path / "rogue")  # a CA the gateway does not trust
    ctx, _ = rogue.server_context("localhost")
    port = await servers.echo(tls=ctx)
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "localhost", port)
    await w.start_tls(gateway.client_context(), server_hostname="localhost")
    w.write(b"\x00hello")
    await w.drain()
    # The gateway could not verify the server: it never connects the tunnel through.
    assert await asyncio.wait_for(r.read(), 10) == b""
    (data,) = await gateway.hooks.wait_for("tls_failed_server")
    assert "certificate verify failed" in data.conn.error
    w.close()
    rogue.close()
    # ssl_insecure turns verification off.
    gateway.options.update(ssl_insecure=True)
    r, w = await socks5(proxy.address[1], "localhost", port)
    await w.start_tls(gateway.client_context(), server_hostname="localhost")
    w.write(b"\x00hello")
    await w.drain()
    assert await asyncio.wait_for(r.readexactly(6), 10) == b"\x00hello"
    w.close()


async def test_passthrough_with_ignore_hosts(gateway, servers, socks5):
    gateway.options.update(ignore_hosts=[r"^localhost:\d+$"])
    port = await servers.echo(tls=servers.tls_context(["localhost"]))
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "localhost", port)
    upstream_trust = ssl.create_default_context(cafile=gateway.upstream_ca_pem)
    await w.start_tls(upstream_trust, server_hostname="localhost")  # the server's own cert
    w.write(b"\x00pass")
    await w.drain()
    assert await r.readexactly(5) == b"\x00pass"
    w.close()
    await gateway.hooks.wait_for("client_disconnected")
    assert not gateway.hooks.args("tls_clienthello")
    assert not gateway.hooks.args("tcp_start")  # passthrough makes no flow


async def test_tls_clienthello_hook_can_pass_through(gateway, servers, socks5):
    class Ignore:
        def tls_clienthello(self, data):
            if data.client_hello.sni == "localhost":
                data.ignore_connection = True

    gateway.tctx.master.addons.add(Ignore())
    port = await servers.echo(tls=servers.tls_context(["localhost"]))
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "localhost", port)
    await w.start_tls(ssl.create_default_context(cafile=gateway.upstream_ca_pem), server_hostname="localhost")
    w.write(b"\x00x")
    await w.drain()
    assert await r.readexactly(2) == b"\x00x"
    w.close()


async def test_pinned_client_fails_cleanly_and_nothing_is_remembered(gateway, servers, socks5, caplog):
    port = await servers.echo(tls=servers.tls_context(["localhost"]))
    proxy = await gateway.start("socks5@127.0.0.1:0")
    pinned = ssl.create_default_context(cafile=gateway.upstream_ca_pem)  # trusts only the real CA
    r, w = await socks5(proxy.address[1], "localhost", port)
    with pytest.raises(ssl.SSLCertVerificationError):
        await w.start_tls(pinned, server_hostname="localhost")
    w.close()
    (data,) = await gateway.hooks.wait_for("tls_failed_client")
    assert data.conn.sni == "localhost"
    await gateway.hooks.wait_for("client_disconnected")
    lines = [r.getMessage() for r in caplog.records if "refused our certificate" in r.getMessage()]
    assert len(lines) == 1 and "localhost" in lines[0]
    # The next client that trusts us is intercepted as before.
    r, w = await socks5(proxy.address[1], "localhost", port)
    await w.start_tls(gateway.client_context(), server_hostname="localhost")
    w.write(b"\x00again")
    await w.drain()
    assert await r.readexactly(6) == b"\x00again"
    w.close()
    assert len(await gateway.hooks.wait_for("tls_established_client")) == 1


def _client_hello() -> bytes:
    ctx = ssl.create_default_context()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


async def test_client_hello_cut_short_closes_cleanly_others_unaffected(gateway, servers, socks5):
    echo = await servers.echo()
    proxy = await gateway.start("socks5@127.0.0.1:0")
    hello = _client_hello()
    assert parse(reassemble(hello)).sni == "localhost"
    other_r, other_w = await socks5(proxy.address[1], "127.0.0.1", echo)  # a bystander
    r, w = await socks5(proxy.address[1], "127.0.0.1", echo)
    w.write(hello[:60])
    await w.drain()
    w.write_eof()
    assert await asyncio.wait_for(r.read(), 10) == b""
    w.close()
    (client,) = await gateway.hooks.wait_for("client_disconnected")
    assert "ClientHello" in client.error
    # Garbage that claims to be TLS: also a clean close.
    r, w = await socks5(proxy.address[1], "127.0.0.1", echo)
    w.write(b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00")
    await w.drain()
    assert await asyncio.wait_for(r.read(), 10) == b""
    w.close()
    other_w.write(b"\x00still here")
    await other_w.drain()
    assert await other_r.readexactly(11) == b"\x00still here"
    other_w.close()


async def test_server_speaks_first(gateway, servers, socks5):
    port = await servers.echo(banner=b"220 banner\r\n")
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "127.0.0.1", port)
    assert await asyncio.wait_for(r.readexactly(12), 10) == b"220 banner\r\n"
    w.write(b"QUIT\r\n")
    await w.drain()
    assert await r.readexactly(6) == b"QUIT\r\n"
    w.close()


async def test_unreachable_server_gives_tcp_error(gateway, socks5):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead_port = s.getsockname()[1]
    s.close()
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "127.0.0.1", dead_port)
    w.write(b"\x00hi")
    await w.drain()
    assert await asyncio.wait_for(r.read(), 10) == b""
    w.close()
    (flow,) = await gateway.hooks.wait_for("tcp_error")
    assert "unreachable" in flow.error.msg
    assert gateway.hooks.args("server_connect_error")


async def test_loop_to_own_listener_refused(gateway, socks5):
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "127.0.0.1", proxy.address[1])
    w.write(b"\x00loop")
    await w.drain()
    assert await asyncio.wait_for(r.read(), 10) == b""
    w.close()
    (client,) = await gateway.hooks.wait_for("client_disconnected")
    assert "own listening address" in (client.error or "")
    assert len(gateway.hooks.args("client_connected")) == 1  # no second, looped connection
