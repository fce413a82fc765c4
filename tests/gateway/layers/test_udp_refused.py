"""UDP to a closed port: the server's ICMP port unreachable reaches the client.

The phone timed out instead: the upstream socket's ECONNREFUSED was only logged.  Now the
flow ends with ``udp_error`` and a stream that can (netstack's, through ``refuse``) sends
the client ICMP port unreachable, quoting its datagram.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from scapy.layers.inet import ICMP, IP, UDP, UDPerror

from gateway.connection import Client
from gateway.layers.udp import handle_udp
from gateway.links.packets import PacketBridge
from gateway.proxy.arrival import Arrival
from netstack.config import StackConfig


class Addons:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    async def trigger(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))


class Stream:
    def __init__(self, *datagrams: bytes) -> None:
        self.incoming = list(datagrams)
        self.sent: list[bytes] = []
        self.refused: list[bytes] = []

    async def recv(self) -> bytes | None:
        if self.incoming:
            return self.incoming.pop(0)
        await asyncio.sleep(30)  # a quiet client; the test's timeout bounds it
        return None

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def refuse(self, data: bytes = b"") -> None:
        self.refused.append(data)

    def close(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def context(addons: Addons) -> Any:
    from types import SimpleNamespace

    client = Client.from_arrival(Arrival("wireguard", "udp", ("10.0.0.2", 40000), ("127.0.0.1", 9)))
    return SimpleNamespace(client=client, addons=addons, extra={}, options=None)


async def test_closed_port_ends_the_flow_and_refuses_the_client() -> None:
    addons, stream = Addons(), Stream(b"ping")
    port = closed_udp_port()
    async with asyncio.timeout(10):
        await handle_udp(context(addons), stream, ("127.0.0.1", port))
    assert stream.refused == [b"ping"]
    names = [name for name, _ in addons.calls]
    assert names[-1] == "udp_error" and "udp_end" not in names
    flow = addons.calls[-1][1]
    assert "refused" in flow.error.msg and f"127.0.0.1:{port}" in flow.error.msg


async def test_refuse_sends_icmp_port_unreachable_through_netstack() -> None:
    """The bridge's stream quotes the client's datagram in an ICMP error from the address
    the client wrote to (scapy reads it as the oracle)."""
    sent: list[bytes] = []
    streams: list[Any] = []

    class Handler:
        async def handle_udp(self, stream: Any, arrival: Arrival) -> None:
            streams.append(stream)
            stream.refuse(await stream.recv())

    bridge = PacketBridge(Handler(), "wireguard", sent.extend, link_info=lambda _: {}, trusted=True,
                          stack_config=StackConfig(addresses=("10.0.0.1",)))
    try:
        bridge.feed_many([bytes(IP(src="10.0.0.2", dst="192.0.2.9") / UDP(sport=40000, dport=9999) / b"hello")])
        async with asyncio.timeout(5):
            while not sent:
                await asyncio.sleep(0.01)
    finally:
        bridge.close()
    icmp = IP(sent[0])
    assert icmp.src == "192.0.2.9" and icmp.dst == "10.0.0.2"
    assert icmp[ICMP].type == 3 and icmp[ICMP].code == 3
    assert icmp[UDPerror].dport == 9999 and bytes(icmp[UDPerror].payload) == b"hello"
