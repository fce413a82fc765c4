"""DNS that LAN hosts send to the gateway itself.

A LAN's router is usually also its resolver (DHCP hands out one address for both), so the
queries of intercepted LAN hosts go to one of the gateway's own LAN addresses.  The kernel
delivers those locally: the ``local`` table is consulted (rule 0) before our ``iif LAN``
rule, so policy routing cannot steer them into the TUN without moving the host's ``local``
rule.  Instead TUN mode answers them where the kernel delivers them, as a router's DNS
forwarder does: a UDP and a TCP listener on port 53 of each LAN address.  Their
connections enter the same handler as the TUN's, tagged with the TUN's interface name, and
the DNS layer answers with the gateway's resolver (the ``dns_server`` option, else the
host's ``/etc/resolv.conf``), recording a ``DNSFlow`` per query.

This changes nothing in the kernel's routes or rules, so there is nothing to clean up after
a crash: the sockets die with the process.  A port that is taken (a dnsmasq on the same
host) is reported in one line and left to its owner; the rest of TUN mode runs on.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from gateway.modes.listeners import ModeServer, TcpListener, UdpListener
from gateway.proxy.arrival import Address, Arrival

log = logging.getLogger("gateway.links.tun")

DNS_PORT = 53


def lan_addresses(interfaces: list[str]) -> list[str]:
    """The IPv4 and global IPv6 addresses of the LAN interfaces (link-local ones are skipped:
    binding them needs a scope, and DHCP/RA do not hand them out as resolvers)."""
    from pyroute2 import IPRoute

    found: list[str] = []
    with IPRoute() as ipr:
        for name in interfaces:
            idx = ipr.link_lookup(ifname=name)
            if not idx:
                continue
            for msg in ipr.get_addr(index=idx[0]):
                addr = msg.get_attr("IFA_ADDRESS")
                if addr is None:
                    continue
                ip = ipaddress.ip_address(addr)
                if ip.is_link_local or ip.is_loopback:
                    continue
                if str(ip) not in found:
                    found.append(str(ip))
    return found


def pick_resolver(own: list[str], nameservers: list[str]) -> Address | None:
    """The first nameserver that is not one of our own LAN addresses (that would be a loop:
    the gateway asking itself)."""
    mine = {ipaddress.ip_address(a) for a in own}
    for ns in nameservers:
        try:
            if ipaddress.ip_address(ns) in mine:
                continue
        except ValueError:
            continue
        return (ns, DNS_PORT)
    return None


def system_nameservers() -> list[str]:
    try:
        import dns.resolver

        return [str(ns) for ns in dns.resolver.Resolver().nameservers]
    except Exception:  # noqa: BLE001 - no or unreadable resolv.conf
        return []


class LanDns:
    """The listeners on the LAN addresses' port 53; ``stop()`` closes them."""

    def __init__(self) -> None:
        self.servers: list[ModeServer] = []
        self.addresses: list[Address] = []

    async def start(
        self,
        handler: Any,
        spec: str,
        tun_interface: str,
        addresses: list[str],
        resolver: Address,
        port: int = DNS_PORT,
    ) -> None:
        link = {"tun_interface": tun_interface}

        def udp_arrival(peer: Address, sockname: Address) -> Arrival:
            return Arrival(mode=spec, transport="udp", peername=peer, sockname=sockname,
                           destination=resolver, link=dict(link))

        async def tcp_arrival(reader: Any, writer: Any) -> Arrival:
            peer = writer.get_extra_info("peername") or ("", 0)
            sock = writer.get_extra_info("sockname") or ("", 0)
            return Arrival(mode=spec, transport="tcp", peername=(str(peer[0]), int(peer[1])),
                           sockname=(str(sock[0]), int(sock[1])), destination=resolver, link=dict(link))

        for addr in addresses:
            for kind in ("udp", "tcp"):
                server: ModeServer = (UdpListener(spec, handler, udp_arrival) if kind == "udp"
                                      else TcpListener(spec, handler, tcp_arrival))
                try:
                    await server.start(addr, port)  # type: ignore[attr-defined]
                except OSError as e:
                    where = f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
                    log.warning("tun: DNS sent to %s over %s is not intercepted: cannot listen there "
                                "(%s)", where, kind.upper(), e.strerror or e)
                    continue
                self.servers.append(server)
                self.addresses.extend(server.addresses)

    async def stop(self) -> None:
        for server in self.servers:
            try:
                await server.stop()
            except Exception:  # noqa: BLE001 - stopping the rest matters more
                log.exception("tun: stopping a LAN DNS listener failed")
        self.servers.clear()
