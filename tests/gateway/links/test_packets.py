"""PacketBridge: connections to the gateway's own tunnel addresses.

http://10.0.0.1/ got a 502 "Network is unreachable": the bridge impersonated the address
and the handler tried to connect to it upstream.  Port 80 there now goes to the onboarding
page's address, 53 to the resolver, every other port is refused with a RST.
"""

from __future__ import annotations

import asyncio

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6

from gateway.links.packets import PacketBridge
from gateway.proxy.arrival import Arrival
from netstack.config import StackConfig

OWN4, OWN6 = "10.0.0.1", "fd00:1:2::1"
PHONE4, PHONE6 = "10.0.0.2", "fd00:1:2::2"


class Handler:
    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []

    async def handle_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, arrival: Arrival) -> None:
        self.arrivals.append(arrival)
        writer.close()

    async def handle_udp(self, stream: object, arrival: Arrival) -> None:
        self.arrivals.append(arrival)


def syn(src: str, dst: str, dport: int) -> bytes:
    ip = IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)
    return bytes(ip / TCP(sport=40000 + dport % 1000, dport=dport, flags="S", seq=1000))


def answers(sent: list[bytes], dst: str, dport: int) -> str:
    """The TCP flags the bridge answered the SYN to ``dst``:``dport`` with."""
    for raw in sent:
        pkt = IPv6(raw) if raw[0] >> 4 == 6 else IP(raw)
        if TCP in pkt and pkt.src == dst and pkt[TCP].sport == dport:
            return str(pkt[TCP].flags)
    return ""


async def test_own_addresses_serve_onboarding_and_dns_and_refuse_the_rest() -> None:
    sent: list[bytes] = []
    handler = Handler()
    bridge = PacketBridge(handler, "wireguard", sent.extend, link_info=lambda _: {}, trusted=True,
                          stack_config=StackConfig(addresses=(OWN4, OWN6)), resolver_addresses=(OWN4, OWN6),
                          own_addresses=(OWN4, OWN6), onboarding=("198.18.0.1", 80))
    try:
        bridge.feed_many([syn(PHONE4, OWN4, 80), syn(PHONE4, OWN4, 8080), syn(PHONE6, OWN6, 443),
                          syn(PHONE4, OWN4, 53), syn(PHONE4, "192.0.2.80", 8080)])
        await asyncio.sleep(0)
        assert answers(sent, OWN4, 80) == "SA"
        assert answers(sent, OWN4, 53) == "SA"
        assert answers(sent, "192.0.2.80", 8080) == "SA"  # another host: impersonated as before
        assert "R" in answers(sent, OWN4, 8080)
        assert "R" in answers(sent, OWN6, 443)
        assert bridge._destination((OWN4, 80)) == ("198.18.0.1", 80)
        assert bridge._destination((OWN6, 80)) == ("198.18.0.1", 80)
        assert bridge._destination(("192.0.2.80", 80)) == ("192.0.2.80", 80)
    finally:
        bridge.close()


async def test_without_onboarding_port_80_is_refused_too() -> None:
    sent: list[bytes] = []
    bridge = PacketBridge(Handler(), "wireguard", sent.extend, link_info=lambda _: {}, trusted=True,
                          stack_config=StackConfig(addresses=(OWN4, OWN6)), own_addresses=(OWN4, OWN6))
    try:
        bridge.feed_many([syn(PHONE4, OWN4, 80)])
        await asyncio.sleep(0)
        assert "R" in answers(sent, OWN4, 80)
        assert bridge._destination((OWN4, 80)) == (OWN4, 80)
    finally:
        bridge.close()
