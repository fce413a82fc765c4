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
from gateway.links.wireguard.udp import DatagramSender, WireGuardEndpoint, open_socket


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


# -- batch sending (DatagramSender) ------------------------------------------------------


def _receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    return sock


def _drain(sock: socket.socket, count: int) -> list[bytes]:
    return [sock.recv(65535) for _ in range(count)]


@pytest.mark.parametrize("gso", [True, False])
def test_sender_delivers_runs_in_order_with_and_without_gso(gso: bool) -> None:
    a, b = _receiver(), _receiver()
    out = open_socket("127.0.0.1", 0)
    try:
        to_a = [(bytes([i]) * 1200, a.getsockname()) for i in range(10)] + [(b"short", a.getsockname())]
        to_b = [(bytes([100 + i]) * 800, b.getsockname()) for i in range(5)]
        mixed = to_a[:4] + to_b[:2] + to_a[4:] + to_b[2:]
        sender = DatagramSender(out, gso=gso)
        assert sender.send(mixed) == len(mixed)
        assert _drain(a, len(to_a)) == [d for d, _ in to_a]
        assert _drain(b, len(to_b)) == [d for d, _ in to_b]
        assert sender.errors == 0
        # Runs: a[0:4], b[0:2], a[4:11] (the short one ends it), b[2:5].
        assert sender.segmented_sends == (4 if gso else 0)
        assert sender.gso is gso  # this kernel's loopback takes UDP GSO
    finally:
        for s in (a, b, out):
            s.close()


def test_sender_run_bounds() -> None:
    addr, other = ("192.0.2.1", 9), ("192.0.2.2", 9)
    run_end = DatagramSender._run_end
    full = [(bytes(1400), addr)] * 100
    assert run_end(full, 0) == 46  # 46 * 1400 <= 65000 < 47 * 1400
    small = [(bytes(100), addr)] * 100
    assert run_end(small, 0) == 64  # segment count bound
    assert run_end(small, 90) == 100
    assert run_end([(bytes(100), addr), (bytes(100), other)], 0) == 1
    assert run_end([(bytes(100), addr), (bytes(200), addr)], 0) == 1  # a longer one cannot follow
    assert run_end([(bytes(100), addr), (bytes(50), addr), (bytes(50), addr)], 0) == 2


class _FakeSocket:
    """Records sends; ``sendmsg`` fails with ``gso_errno``, ``sendto`` blocks at ``block_at``."""

    def __init__(self, gso_errno: int | None = None, block_at: int | None = None) -> None:
        self.gso_errno = gso_errno
        self.block_at = block_at
        self.sent: list[tuple[str, bytes]] = []

    def sendmsg(self, buffers, ancdata, flags, addr):  # type: ignore[no-untyped-def]
        if self.gso_errno is not None:
            raise OSError(self.gso_errno, "no")
        self.sent.append(("gso", b"".join(buffers)))
        return sum(len(b) for b in buffers)

    def sendto(self, data, addr):  # type: ignore[no-untyped-def]
        if self.block_at is not None and len(self.sent) == self.block_at:
            raise BlockingIOError
        if addr[0] == "192.0.2.99":
            raise OSError(errno.ENETUNREACH, "unreachable")
        self.sent.append(("one", data))
        return len(data)


def test_sender_falls_back_for_good_when_the_kernel_refuses_gso() -> None:
    fake = _FakeSocket(gso_errno=errno.EIO)
    sender = DatagramSender(fake, gso=True)  # type: ignore[arg-type]
    datagrams = [(bytes([i]) * 10, ("192.0.2.1", 9)) for i in range(5)]
    assert sender.send(datagrams) == 5
    assert sender.gso is False
    assert fake.sent == [("one", d) for d, _ in datagrams]


def test_sender_stops_where_the_socket_would_block_and_counts_refusals() -> None:
    fake = _FakeSocket(block_at=2)
    sender = DatagramSender(fake, gso=False)  # type: ignore[arg-type]
    datagrams = [(b"a", ("192.0.2.1", 9)), (b"x", ("192.0.2.99", 9)), (b"b", ("192.0.2.1", 9)),
                 (b"c", ("192.0.2.1", 9)), (b"d", ("192.0.2.1", 9))]
    assert sender.send(datagrams) == 3  # "c" would block
    assert sender.errors == 1
    fake.block_at = None
    assert sender.send(datagrams, 3) == 5
    assert [d for _, d in fake.sent] == [b"a", b"b", b"c", b"d"]


async def test_send_routed_batches_netstack_output_to_the_right_peer() -> None:
    server_dev = Device(keys.generate_private_key())
    client_dev = Device(keys.generate_private_key())
    got_server: list = []
    got_client: list = []
    server = WireGuardEndpoint(server_dev, got_server.extend, sock=open_socket("127.0.0.1", 0))
    server.start()
    client = WireGuardEndpoint(client_dev, got_client.extend, sock=open_socket("127.0.0.1", 0))
    client.start()
    try:
        server_dev.add_peer(client_dev.public_key, name="client", allowed_ips=["10.0.0.2/32"])
        client_dev.add_peer(server_dev.public_key, name="server", allowed_ips=["0.0.0.0/0"],
                            endpoint=server.sockname)
        client.send_packet(udp4("10.0.0.2", "192.0.2.9", b"hello"))  # handshake, then data
        await _until(lambda: len(got_server) == 1)
        packets = [udp4("192.0.2.9", "10.0.0.2", b"%04d" % i + bytes(1000)) for i in range(200)]
        assert server.send_routed([*packets, udp4("192.0.2.9", "10.9.9.9", b"nobody")]) == 200
        await _until(lambda: len(got_client) == 200)
        assert [bytes(IP(p)[UDP].payload)[:4] for _, p in got_client] == [b"%04d" % i for i in range(200)]
        assert server.sender is not None and server.sender.segmented_sends >= 1
        assert server_dev.counters["no_route"] == 1
    finally:
        client.close()
        server.close()
