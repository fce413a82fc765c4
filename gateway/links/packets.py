"""Joins a packet link to netstack, and netstack's connections to the connection handler.

WireGuard and TUN differ only in how IP packets arrive and leave (DESIGN.md, seam 2);
everything after that is this one bridge: packets go into a ``NetstackDriver``, each TCP
connection it accepts and each UDP flow becomes an ``Arrival`` for the handler, exactly as
a socket mode would produce (seam 3).  The link supplies a function that tags a client
address with where it came from (WireGuard peer, TUN interface).

DNS sent to the link's own resolver address (the ``DNS =`` line of a WireGuard client
config) is steered to the real resolver: ``--dns-server`` when given, else the host's
system resolver, so the DNS layer resolves upstream instead of forwarding to an address
that exists only inside the tunnel.

The link's own addresses (the gateway inside the tunnel, 10.0.0.1 and its IPv6 twin)
are not impersonated like every other destination: nothing exists behind them to connect
to.  TCP port 80 there is the onboarding page (``onboarding``: the address its addon
answers for), port 53 the resolver; every other port is refused with a RST, as a host
with nothing listening would, instead of a 502 "Network is unreachable".
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Iterable
from typing import Any

from gateway.proxy.arrival import Address, Arrival
from netstack.aio import NetstackDriver
from netstack.config import StackConfig
from netstack.datagrams import NetstackDatagramStream

log = logging.getLogger("gateway.links")

LinkInfo = Callable[[Address], dict[str, Any]]


def system_resolver() -> Address | None:
    try:
        import dns.resolver

        servers = dns.resolver.Resolver().nameservers
    except Exception:  # noqa: BLE001 - no resolv.conf is a configuration state, not an error here
        return None
    return (str(servers[0]), 53) if servers else None


class PacketBridge:
    def __init__(
        self,
        handler: Any,
        mode: str,
        send_packets: Callable[[list[bytes]], None],
        *,
        link_info: LinkInfo,
        trusted: bool,
        stack_config: StackConfig | None = None,
        resolver_addresses: Iterable[str] = (),
        dns_server: Address | None = None,
        own_addresses: Iterable[str] = (),
        onboarding: Address | None = None,
    ) -> None:
        """``trusted``: the link authenticated every packet (WireGuard's AEAD), so netstack
        skips inner checksum verification; TUN packets come from the kernel and are also
        trusted.  ``resolver_addresses``: the in-tunnel DNS addresses to steer."""
        self.handler = handler
        self.mode = mode
        self.link_info = link_info
        self.resolvers = {a for a in resolver_addresses}
        self._dns_server = dns_server
        self.own = {_normal(a) for a in own_addresses}
        self._own_resolvers = {_normal(a) for a in self.resolvers} & self.own
        self.onboarding = onboarding
        self.driver = NetstackDriver(
            stack_config or StackConfig(),
            send_packets=send_packets,
            on_tcp_request=self._tcp_request if self.own else None,
            on_tcp_connection=self._tcp,
            on_udp_flow=self._udp,
            trusted=trusted,
        )

    def feed_many(self, packets: Iterable[bytes]) -> None:
        self.driver.feed_many(packets)

    @property
    def counters(self) -> dict[str, int]:
        return self.driver.counters

    def close(self) -> None:
        self.driver.close()

    def _tcp_request(self, src: Address, dst: Address) -> str:
        """Connections to the gateway's own addresses: onboarding (80) and DNS (53) only."""
        if _normal(dst[0]) not in self.own:
            return "accept"
        if (dst[1] == 53 and _normal(dst[0]) in self._own_resolvers) or (dst[1] == 80 and self.onboarding is not None):
            return "accept"
        return "refuse"

    def _destination(self, sockname: Address) -> Address:
        if sockname[1] == 80 and self.onboarding is not None and _normal(sockname[0]) in self.own:
            return self.onboarding
        if sockname[1] == 53 and sockname[0] in self.resolvers:
            upstream = self._dns_server or system_resolver()
            if upstream is not None:
                return upstream
        return sockname

    def _arrival(self, transport: str, peername: Address, sockname: Address) -> Arrival:
        return Arrival(
            mode=self.mode,
            transport=transport,  # type: ignore[arg-type]
            peername=peername,
            sockname=sockname,
            destination=self._destination(sockname),
            link=self.link_info(peername),
        )

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        sock = writer.get_extra_info("sockname")
        await self.handler.handle_tcp(reader, writer, self._arrival("tcp", peer, sock))

    async def _udp(self, flow: NetstackDatagramStream) -> None:
        peer = flow.get_extra_info("peername")
        sock = flow.get_extra_info("sockname")
        await self.handler.handle_udp(RefusableDatagramStream(flow, self.driver), self._arrival("udp", peer, sock))


class RefusableDatagramStream:
    """A netstack UDP flow that can also answer its client with ICMP port unreachable
    (``refuse``), so the UDP layer can pass on what a closed server port said instead of
    leaving the client to time out.  Socket modes' streams have no ``refuse``."""

    __slots__ = ("_flow", "_driver", "recv", "send", "close", "get_extra_info")

    def __init__(self, flow: NetstackDatagramStream, driver: NetstackDriver) -> None:
        self._flow = flow
        self._driver = driver
        self.recv = flow.recv
        self.send = flow.send
        self.close = flow.close
        self.get_extra_info = flow.get_extra_info

    def refuse(self, data: bytes = b"") -> None:
        """ICMP port unreachable to the client, quoting its datagram ``data``."""
        flow = self._flow
        self._driver.refuse_udp(flow.get_extra_info("peername"), flow.get_extra_info("sockname"), data)


def _normal(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return address
