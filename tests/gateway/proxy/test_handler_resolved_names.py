"""Packet-mode connections to an address the client resolved through our DNS layer are
labelled with the name it asked for, and still go to the IP it chose.

The arrivals are built as the WireGuard link builds them (mode ``wireguard``, the peer in
``link``); the client side is a real loopback TCP connection handed to the handler, the
servers are real (dnspython-built DNS, echo, aiohttp, TLS echo with a name-only cert).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest

from gateway.proxy.arrival import Arrival

RESOLVER = ("10.0.0.1", 53)  # the in-tunnel resolver address; dns_server points upstream
PHONE = {"wireguard_peer": "phone", "wireguard_key": "cGhvbmU="}
OTHER = {"wireguard_peer": "phone2", "wireguard_key": "b3RoZXI="}


class Datagrams:
    """A DatagramStream fed from a list, recording what is sent back."""

    def __init__(self, datagrams: list[bytes], *, end: bool = True) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        for d in datagrams:
            self.queue.put_nowait(d)
        if end:
            self.queue.put_nowait(None)
        self.sent: list[bytes] = []

    async def recv(self) -> bytes | None:
        return await self.queue.get()

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def resolve(gateway: Any, name: str, link: dict[str, str] = PHONE, peer: str = "10.0.0.2",
                  mode: str = "wireguard") -> str:
    import dns.message

    query = dns.message.make_query(name, "A")
    stream = Datagrams([query.to_wire()])
    arrival = Arrival(mode, "udp", (peer, 5353), RESOLVER, RESOLVER, dict(link))
    await gateway.handler.handle_udp(stream, arrival)
    (wire,) = stream.sent
    return dns.message.from_wire(wire).answer[0][0].address


async def packet_connection(gateway: Any, dest: tuple[str, int], link: dict[str, str] = PHONE,
                            peer: str = "10.0.0.2", mode: str = "wireguard",
                            ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client connection arriving as the WireGuard (or TUN) link hands it over."""

    async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        arrival = Arrival(mode, "tcp", (peer, 40000), dest, dest, dict(link))
        await gateway.handler.handle_tcp(r, w, arrival)

    listener = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    gateway.servers.append(_Closer(listener))
    return await asyncio.open_connection("127.0.0.1", listener.sockets[0].getsockname()[1])


class _Closer:
    def __init__(self, server: asyncio.base_events.Server) -> None:
        self.server = server

    async def stop(self) -> None:
        self.server.close()


@pytest.fixture
async def lab_dns(gateway, servers):
    port = await servers.dns({"echo.lab.test": "127.0.0.1"})
    gateway.options.update(dns_server=[f"127.0.0.1:{port}"])
    return port


async def test_raw_tcp_flow_shows_the_resolved_name_and_goes_to_the_ip(gateway, servers, lab_dns):
    echo = await servers.echo()
    assert await resolve(gateway, "echo.lab.test") == "127.0.0.1"
    r, w = await packet_connection(gateway, ("127.0.0.1", echo))
    w.write(b"\x00raw bytes")
    await w.drain()
    assert await r.readexactly(10) == b"\x00raw bytes"
    w.close()
    (flow,) = await gateway.hooks.wait_for("tcp_end")
    assert flow.server_conn.address == ("echo.lab.test", echo)
    assert flow.server_conn.peername[:2] == ("127.0.0.1", echo)
    assert flow.client_conn.wireguard_peer == "phone"
    assert servers.dns_queries == ["echo.lab.test"]  # asked once, by the phone; never again


async def test_http_without_host_has_the_name_as_pretty_host(gateway, servers, lab_dns):
    port = await servers.http()
    await resolve(gateway, "echo.lab.test")
    r, w = await packet_connection(gateway, ("127.0.0.1", port))
    w.write(b"GET /hello HTTP/1.0\r\n\r\n")
    await w.drain()
    body = await asyncio.wait_for(r.read(), 10)
    w.close()
    assert b"hello from server" in body
    (flow,) = await gateway.hooks.wait_for("response")
    assert flow.request.host_header is None or flow.request.host_header.startswith("echo.lab.test")
    assert flow.request.pretty_host == "echo.lab.test"
    assert flow.server_conn.address[0] == "echo.lab.test"
    assert flow.server_conn.peername[0] == "127.0.0.1"


async def test_tls_without_sni_is_verified_against_the_name_and_keeps_the_ip_in_our_cert(
    gateway, servers, lab_dns
):
    # The server's certificate names only echo.lab.test: verifying it against the IP the
    # phone connected to would fail; against the name the phone resolved it succeeds.
    tls_port = await servers.echo(tls=servers.tls_context(["echo.lab.test"]))
    await resolve(gateway, "echo.lab.test")
    r, w = await packet_connection(gateway, ("127.0.0.1", tls_port))
    ctx = ssl.create_default_context(cafile=gateway.ca_pem)
    ctx.check_hostname = False  # no SNI, as a client connecting to a bare IP may do
    await w.start_tls(ctx, server_hostname=None)
    cert = w.get_extra_info("ssl_object").getpeercert()
    assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]
    w.write(b"\x00over tls")
    await w.drain()
    assert await r.readexactly(9) == b"\x00over tls"
    w.close()
    (flow,) = await gateway.hooks.wait_for("tcp_end")
    assert flow.client_conn.sni is None
    assert flow.server_conn.address == ("echo.lab.test", tls_port)
    assert flow.server_conn.sni == "echo.lab.test" and flow.server_conn.tls_established


async def test_udp_flow_shows_the_name(gateway, servers, lab_dns):
    port = await servers.udp_echo()
    await resolve(gateway, "echo.lab.test")
    stream = Datagrams([b"ping"], end=False)
    arrival = Arrival("wireguard", "udp", ("10.0.0.2", 7000), ("127.0.0.1", port), ("127.0.0.1", port), dict(PHONE))
    task = asyncio.create_task(gateway.handler.handle_udp(stream, arrival))
    (flow,) = await gateway.hooks.wait_for("udp_start")
    async with asyncio.timeout(10):
        while not stream.sent:
            await asyncio.sleep(0.01)
    stream.queue.put_nowait(None)
    await task
    assert stream.sent == [b"echo:ping"]
    assert flow.server_conn.address == ("echo.lab.test", port)


async def test_another_peer_and_an_unresolved_address_keep_the_ip(gateway, servers, lab_dns):
    echo = await servers.echo()
    await resolve(gateway, "echo.lab.test")  # resolved by "phone" only
    r, w = await packet_connection(gateway, ("127.0.0.1", echo), link=OTHER, peer="10.0.0.3")
    w.write(b"\x00x")
    await w.drain()
    assert await r.readexactly(2) == b"\x00x"
    w.close()
    (flow,) = await gateway.hooks.wait_for("tcp_end")
    assert flow.server_conn.address == ("127.0.0.1", echo)


async def test_socket_modes_are_not_relabelled(gateway, servers, lab_dns, socks5):
    echo = await servers.echo()
    await resolve(gateway, "echo.lab.test", link={}, peer="127.0.0.1")  # keyed by client IP
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await socks5(proxy.address[1], "127.0.0.1", echo)
    w.write(b"\x00y")
    await w.drain()
    assert await r.readexactly(2) == b"\x00y"
    w.close()
    (flow,) = await gateway.hooks.wait_for("tcp_end")
    assert flow.server_conn.address == ("127.0.0.1", echo)


async def test_an_ip_pattern_in_tcp_hosts_still_matches_a_labelled_destination(gateway, servers, lab_dns):
    port = await servers.echo()
    gateway.options.update(tcp_hosts=[rf"^127\.0\.0\.1:{port}$"])
    await resolve(gateway, "echo.lab.test")
    r, w = await packet_connection(gateway, ("127.0.0.1", port))
    w.write(b"GET / HTTP/1.1\r\n\r\n")  # HTTP, but tcp_hosts says raw
    await w.drain()
    assert await r.readexactly(18) == b"GET / HTTP/1.1\r\n\r\n"
    w.close()
    (flow,) = await gateway.hooks.wait_for("tcp_end")
    assert flow.server_conn.address == ("echo.lab.test", port)


async def test_tun_mode_labels_per_client_address(gateway, servers, lab_dns):
    """TUN clients have no WireGuard key: their map is keyed by the client's IP."""
    echo = await servers.echo()
    lan = {"tun_interface": "tun0"}
    await resolve(gateway, "echo.lab.test", link=lan, peer="192.168.5.20", mode="tun")
    for count, (peer, expected) in enumerate((("192.168.5.20", "echo.lab.test"), ("192.168.5.21", "127.0.0.1")), 1):
        r, w = await packet_connection(gateway, ("127.0.0.1", echo), link=lan, peer=peer, mode="tun")
        w.write(b"\x00t")
        await w.drain()
        assert await r.readexactly(2) == b"\x00t"
        w.close()
        flow = (await gateway.hooks.wait_for("tcp_end", count))[-1]
        assert flow.client_conn.peername[0] == peer
        assert flow.server_conn.address == (expected, echo)
