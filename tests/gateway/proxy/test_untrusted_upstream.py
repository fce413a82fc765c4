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
