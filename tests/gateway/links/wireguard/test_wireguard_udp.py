"""The asyncio edge on loopback: two endpoints, each a Device on a real UDP socket."""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest
from scapy.layers.inet import IP, UDP
from wg_lab import udp4

from gateway.links.wireguard import keys
from gateway.links.wireguard.device import Device
from gateway.links.wireguard.udp import WireGuardEndpoint, open_socket


async def _until(predicate, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


@pytest.mark.parametrize("family_host", ["127.0.0.1", "::1"])
async def test_two_endpoints_exchange_packets_over_loopback(family_host: str) -> None:
    server_dev = Device(keys.generate_private_key())
    client_dev = Device(keys.generate_private_key())
    got_server: list = []
    got_client: list = []
    server = WireGuardEndpoint(server_dev, got_server.extend, host="::", port=0)
    server.start()
    port = server.sockname[1]
    client = WireGuardEndpoint(client_dev, got_client.extend, sock=open_socket(family_host, 0))
    client.start()
    try:
        server_dev.add_peer(client_dev.public_key, name="client", allowed_ips=["10.0.0.2/32"])
        client_dev.add_peer(server_dev.public_key, name="server", allowed_ips=["0.0.0.0/0"],
                            endpoint=(family_host, port))
        for i in range(50):
            assert client.send_packet(udp4("10.0.0.2", "192.0.2.9", f"n{i}".encode()))
        await _until(lambda: len(got_server) == 50)
        assert [bytes(IP(p)[UDP].payload) for _, p in got_server] == [f"n{i}".encode() for i in range(50)]
        peer = got_server[0][0]
        assert peer.name == "client"
        server.send_packets(peer, [udp4("192.0.2.9", "10.0.0.2", b"back")])
        await _until(lambda: len(got_client) == 1)
        assert bytes(IP(got_client[0][1])[UDP].payload) == b"back"
    finally:
        client.close()
        server.close()


async def test_a_busy_port_is_an_oserror() -> None:
    first = open_socket("127.0.0.1", 0)
    try:
        with pytest.raises(OSError) as info:
            open_socket("127.0.0.1", first.getsockname()[1])
        assert info.value.errno == errno.EADDRINUSE
    finally:
        first.close()


async def test_dual_stack_socket_accepts_ipv4() -> None:
    sock = open_socket("::", 0)
    try:
        assert sock.family == socket.AF_INET6
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
    finally:
        sock.close()


async def test_timers_fire_through_the_loop() -> None:
    """A handshake towards a silent address is retried by the endpoint's own timer."""
    from gateway.links.wireguard.timers import TimerConfig

    silent = open_socket("127.0.0.1", 0)
    dev = Device(keys.generate_private_key(), timers=TimerConfig(rekey_timeout=0.05, jitter_max=0.0))
    endpoint = WireGuardEndpoint(dev, lambda packets: None, sock=open_socket("127.0.0.1", 0))
    endpoint.start()
    try:
        dev.add_peer(keys.public_key(keys.generate_private_key()), allowed_ips=["0.0.0.0/0"],
                     endpoint=silent.getsockname())
        endpoint.send_packet(udp4("10.0.0.2", "192.0.2.9"))
        await _until(lambda: dev.counters["handshake_retries"] >= 2)
    finally:
        endpoint.close()
        silent.close()
