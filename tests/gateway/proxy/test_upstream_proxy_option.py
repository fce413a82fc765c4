"""``upstream_proxy``: `upstream:` chaining for the modes that connect servers directly
(packet modes above all).  The upstream is a small CONNECT proxy written here, so the test
sees exactly what reached it."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from test_handler_resolved_names import PHONE, packet_connection, resolve

from gateway.optmanager import OptionsError
from gateway.proxy.server_connect import parse_upstream_proxy


class ConnectProxy:
    """Answers CONNECT host:port with 200 and relays; records each request head."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _on_conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            head = await r.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            target = head.split(b" ")[1].decode()
            host, _, port = target.rpartition(":")
            ur, uw = await asyncio.open_connection(host.strip("[]"), int(port))
            w.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await w.drain()

            async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                with contextlib.suppress(ConnectionError):
                    while data := await src.read(65536):
                        dst.write(data)
                        await dst.drain()
                    if dst.can_write_eof():
                        dst.write_eof()

            await asyncio.gather(pump(r, uw), pump(ur, w))
            uw.close()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            w.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def upstream() -> Any:
    proxy = ConnectProxy()
    proxy.port = await proxy.start()  # type: ignore[attr-defined]
    yield proxy
    proxy.close()


def test_parse_upstream_proxy() -> None:
    assert parse_upstream_proxy("http://proxy.test:3128") == ("http", ("proxy.test", 3128))
    assert parse_upstream_proxy("upstream:https://[::1]:8443") == ("https", ("::1", 8443))
    assert parse_upstream_proxy("10.0.0.9") == ("http", ("10.0.0.9", 80))
    with pytest.raises(ValueError):
        parse_upstream_proxy("socks5://proxy:1080")
    with pytest.raises(ValueError):
        parse_upstream_proxy("http://proxy:port")


def test_a_bad_upstream_proxy_is_refused_when_set(gateway) -> None:
    with pytest.raises(OptionsError):
        gateway.options.update(upstream_proxy="tcp://proxy:3128")


async def test_packet_mode_connections_go_through_the_upstream_proxy(gateway, servers, upstream):
    echo = await servers.echo()
    gateway.options.update(upstream_proxy=f"http://127.0.0.1:{upstream.port}", upstream_auth="user:secret")
    r, w = await packet_connection(gateway, ("127.0.0.1", echo))
    w.write(b"\x00through the chain")
    await w.drain()
    assert await r.readexactly(18) == b"\x00through the chain"
    w.close()
    (flow,) = await gateway.hooks.wait_for("tcp_end")
    (head,) = upstream.heads
    assert head.startswith(f"CONNECT 127.0.0.1:{echo} HTTP/1.1\r\n".encode())
    assert b"Proxy-Authorization: Basic dXNlcjpzZWNyZXQ=" in head  # user:secret
    assert flow.server_conn.via == ("http", ("127.0.0.1", upstream.port))
    assert flow.server_conn.address == ("127.0.0.1", echo)


async def test_a_labelled_destination_is_tunnelled_to_its_ip(gateway, servers, upstream):
    echo = await servers.echo()
    port = await servers.dns({"echo.lab.test": "127.0.0.1"})
    gateway.options.update(dns_server=[f"127.0.0.1:{port}"], upstream_proxy=f"127.0.0.1:{upstream.port}")
    await resolve(gateway, "echo.lab.test")  # DNS itself goes direct, not through the proxy
    r, w = await packet_connection(gateway, ("127.0.0.1", echo), link=PHONE)
    w.write(b"\x00x")
    await w.drain()
    assert await r.readexactly(2) == b"\x00x"
    w.close()
    (flow,) = await gateway.hooks.wait_for("tcp_end")
    assert flow.server_conn.address == ("echo.lab.test", echo)
    # The name is a label only: the upstream proxy is asked for the IP the phone chose.
    assert [h.split(b"\r\n")[0] for h in upstream.heads] == [f"CONNECT 127.0.0.1:{echo} HTTP/1.1".encode()]


async def test_without_the_option_nothing_is_chained(gateway, servers, upstream, socks5):
    echo = await servers.echo()
    gateway.options.update(upstream_proxy=None)
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "127.0.0.1", echo)
    w.write(b"\x00direct")
    await w.drain()
    assert await r.readexactly(7) == b"\x00direct"
    w.close()
    await gateway.hooks.wait_for("tcp_end")
    assert upstream.heads == []  # without the option nothing is chained
