"""An upstream certificate the gateway does not trust: one TLS handshake and one warning per
client connection, however many requests it carries; each request gets a 502 whose flow
carries the error (QA saw two handshakes and four log lines per request)."""

from __future__ import annotations

import asyncio
import logging

import pytest

pytestmark = pytest.mark.timeout(60)


async def test_untrusted_server_one_handshake_one_warning_per_connection(gateway, servers, socks5, tmp_path, caplog):
    from gateway.certs import CertStore

    caplog.set_level(logging.DEBUG)
    rogue = CertStore(tmp_path / "rogue")  # a CA the gateway does not trust
    ctx, _ = rogue.server_context("localhost")
    port = await servers.http(tls=ctx)
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "localhost", port)
    await w.start_tls(gateway.client_context(["http/1.1"]), server_hostname="localhost")
    statuses = []
    for _ in range(3):
        w.write(b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
        await w.drain()
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 10)
        statuses.append(head.split(b" ", 2)[1])
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
        await r.readexactly(length)
        if b"connection: close" in head.lower():
            break
    w.close()
    rogue.close()
    assert statuses and set(statuses) == {b"502"}
    errors = await gateway.hooks.wait_for("error", count=len(statuses))
    assert all("certificate verify failed" in f.error.msg for f in errors)
    assert len(gateway.hooks.args("tls_start_server")) == 1
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("gateway") and r.levelno >= logging.INFO]
    assert len([m for m in lines if "certificate verify failed" in m]) == 1, lines


async def test_untrusted_server_over_http2_is_one_handshake_for_all_streams(gateway, servers, socks5, tmp_path, caplog):
    import h2.config
    import h2.connection
    import h2.events

    from gateway.certs import CertStore

    caplog.set_level(logging.DEBUG)
    rogue = CertStore(tmp_path / "rogue")
    ctx, _ = rogue.server_context("localhost", alpn=[b"h2", b"http/1.1"])
    port = await servers.http(tls=ctx)
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "localhost", port)
    await w.start_tls(gateway.client_context(["h2"]), server_hostname="localhost")
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    sids = [conn.get_next_available_stream_id() + 2 * i for i in range(10)]
    for sid in sids:
        conn.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"localhost"),
                                (b":path", b"/hello")], end_stream=True)
    w.write(conn.data_to_send())
    statuses: dict[int, bytes] = {}
    ended: set[int] = set()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(ended) < len(sids) and loop.time() < deadline:
        data = await asyncio.wait_for(r.read(65536), 10)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                statuses[ev.stream_id] = dict(ev.headers)[b":status"]
            elif isinstance(ev, h2.events.StreamEnded):
                ended.add(ev.stream_id)
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        w.write(conn.data_to_send())
    w.close()
    rogue.close()
    assert set(statuses) == set(sids) and set(statuses.values()) == {b"502"}
    errors = await gateway.hooks.wait_for("error", count=len(sids))
    assert all("certificate verify failed" in f.error.msg for f in errors)
    assert len(gateway.hooks.args("tls_start_server")) == 1
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("gateway") and r.levelno >= logging.INFO]
    assert len([m for m in lines if "certificate verify failed" in m]) == 1, lines
