"""TUN mode: a Linux TUN device as a packet link, and transparent LAN interception.

``start(mode, handler)`` (found by ``gateway.modes.start_mode`` for ``tun[:NAME]``):

1. refuses at once, in one line, without root or CAP_NET_ADMIN (``privileges``);
2. removes what a crashed earlier run left in this namespace (``cleanup``, from the
   records in ``<state dir>/tun/``);
3. opens ``/dev/net/tun`` (``netstack.tun.open_tun``: IFF_TUN|IFF_NO_PI, non-blocking,
   not persistent, so the device dies with the process even on kill -9);
4. sets MTU, addresses, and for each ``tun_lan`` interface a policy rule that steers its
   forwarded traffic into the device (``routing``, which explains why ``iif`` rules keep
   the gateway's own upstream connections out of the TUN without any socket mark);
5. reads the device in batches (``netstack.tun.TunLink``) into a ``PacketBridge``, whose
   connections reach the handler tagged ``{"tun_interface": NAME}``;
6. with ``tun_lan`` and ``tun_lan_dns``, listens on port 53 of the LAN interfaces' own
   addresses, for the DNS that LAN hosts send to their router (``lan_dns``), tagged alike.

``stop()`` (Ctrl-C, SIGTERM through the master) undoes all of it.  Options come from
``addon.TunOptions`` (``tun_lan``, ``tun_lan_dns``, ``tun_mtu``, ``tun_addresses``,
``tun_table``); the
defaults apply while that addon is not loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from typing import Any

from gateway.links.tun.addon import DEFAULT_ADDRESSES, DEFAULT_MTU, DEFAULT_NAME, DEFAULT_TABLE
from gateway.links.tun.privileges import MISSING, has_net_admin

log = logging.getLogger("gateway.links.tun")

__all__ = ["TunServer", "start"]


def _option(options: Any, name: str, default: Any) -> Any:
    try:
        value = getattr(options, name)
    except (AttributeError, KeyError):
        return default
    return default if value is None else value


class TunServer:
    """A running TUN mode (the ``ModeServer`` shape: ``addresses``, ``await stop()``)."""

    def __init__(self, spec: str, interface: str, link: Any, bridge: Any, record: Any, path: Any,
                 lan_dns: Any = None) -> None:
        self.spec = spec
        self.lan_dns = lan_dns
        self.interface = interface
        self.addresses: list[tuple[str, int]] = [(interface, 0)]
        self.link = link
        self.bridge = bridge
        self.record = record
        self.path = path
        self._stopped = False

    @property
    def address(self) -> tuple[str, int]:
        return self.addresses[0]

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        from gateway.links.tun import routing
        from gateway.links.tun.record import remove

        if self.lan_dns is not None:
            await self.lan_dns.stop()
        self.bridge.close()
        self.link.close()  # the device is not persistent: closing its last fd removes it
        failed = await asyncio.to_thread(routing.undo, self.record)
        if failed == 0:
            remove(self.path)
            log.info("tun: %s removed with its addresses, routes and rules", self.interface)
        else:
            log.warning("tun: %d change(s) on %s could not be undone; `gateway down` retries",
                        failed, self.interface)


async def start(mode: Any, handler: Any) -> TunServer:
    """Start TUN mode; ``ValueError`` with a one-line reason when it cannot."""
    if not has_net_admin():  # before importing pyroute2, which an unprivileged user may lack
        raise ValueError(f"tun mode {MISSING}")
    from gateway.links.packets import PacketBridge
    from gateway.links.tun import routing
    from gateway.links.tun.cleanup import clean_stale
    from gateway.links.tun.record import TunRecord, remove
    from netstack.config import StackConfig
    from netstack.tun import TunLink, open_tun

    options = getattr(handler, "options", None)
    state_dir = _option(options, "state_dir", "~/.gateway")
    lan = [str(x) for x in _option(options, "tun_lan", [])]
    lan_dns_on = bool(_option(options, "tun_lan_dns", True))
    mtu = int(_option(options, "tun_mtu", DEFAULT_MTU))
    addresses = [str(x) for x in _option(options, "tun_addresses", list(DEFAULT_ADDRESSES))]
    table = int(_option(options, "tun_table", DEFAULT_TABLE))

    report = await asyncio.to_thread(clean_stale, state_dir)
    for name in report.cleaned:
        log.info("tun: removed what an earlier run left on %s", name)
    for message in report.failed:
        log.warning("%s", message)

    try:
        fd, ifname = open_tun(mode.data or DEFAULT_NAME)
    except OSError as e:
        if e.errno == errno.EBUSY:
            raise ValueError(f"interface {mode.data!r} exists and is in use") from None
        if e.errno in (errno.EPERM, errno.EACCES):
            raise ValueError(f"tun mode {MISSING}") from None
        raise ValueError(f"cannot open /dev/net/tun: {e.strerror or e}") from None

    record = TunRecord(interface=ifname)
    path = TunRecord.path_for(state_dir, ifname)
    changes = routing.Changes(record, path)
    try:
        await asyncio.to_thread(
            routing.setup, changes, ifname=ifname, mtu=mtu, addresses=addresses,
            lan_interfaces=lan, table=table,
        )
    except BaseException as e:
        import os

        os.close(fd)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(routing.undo, record)
            remove(path)
        if isinstance(e, OSError | ValueError):
            from pyroute2.netlink.exceptions import NetlinkError

            if isinstance(e, NetlinkError) and e.code == errno.EPERM:
                raise ValueError(f"tun mode {MISSING}") from None
            raise ValueError(f"cannot set up {ifname}: {e}") from None
        raise

    link = TunLink(fd)
    bridge = PacketBridge(
        handler,
        mode.full_spec,
        link.send_packets,
        link_info=lambda _peer: {"tun_interface": ifname},
        trusted=True,
        stack_config=StackConfig(mtu=mtu),
    )
    link.start(bridge.feed_many)
    steer = f", steering traffic forwarded from {', '.join(lan)}" if lan else ""
    log.info("tun: %s up (mtu %d, %s)%s", ifname, mtu, ", ".join(addresses), steer)
    server = TunServer(mode.full_spec, ifname, link, bridge, record, path)
    if lan and lan_dns_on:
        try:
            server.lan_dns = await _start_lan_dns(handler, mode.full_spec, ifname, lan)
        except BaseException:
            await server.stop()
            raise
    return server


async def _start_lan_dns(handler: Any, spec: str, ifname: str, lan: list[str]) -> Any:
    from gateway.links.tun.lan_dns import LanDns, lan_addresses, pick_resolver, system_nameservers

    own = await asyncio.to_thread(lan_addresses, lan)
    servers = [str(s) for s in _option(getattr(handler, "options", None), "dns_server", [])]
    resolver = pick_resolver(own, system_nameservers())
    if resolver is None and not servers:
        log.warning("tun: DNS sent to this host's LAN addresses is not intercepted: no resolver "
                    "other than this host in /etc/resolv.conf (set dns_server)")
        return None
    if resolver is None:
        from gateway.layers.dns import _parse_server

        resolver = _parse_server(servers[0])  # the DNS layer asks dns_server anyway
    lan_dns = LanDns()
    await lan_dns.start(handler, spec, ifname, own, resolver)
    if lan_dns.addresses:
        log.info("tun: answering DNS sent to %s", ", ".join(
            f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in dict.fromkeys(lan_dns.addresses)))
    return lan_dns
