"""Addresses, MTU, routes and policy rules of the TUN device, through pyroute2.

Why policy routing by *incoming interface* (and no SO_MARK): the traffic we intercept is
forwarded traffic that arrives on a LAN interface, so one rule per LAN interface,
``iif LAN lookup TABLE``, with ``default dev TUN`` in TABLE, steers exactly that into the
device.  Locally originated packets (the gateway's own upstream connections, and anything
else the host runs) are never matched by an ``iif`` rule other than ``iif lo``, so they keep
using the main table *by construction*: no mark on upstream sockets is needed, the socket
code (gateway/proxy/server_connect.py) stays untouched, and a default route in TABLE that
points into the TUN cannot loop our own connections back into it.  Other interfaces are
untouched too.  Packets that netstack writes back into the device arrive with ``iif TUN``
and are routed by the main table to the LAN host.

Every change goes through ``Changes.apply`` which records it (``record.TunRecord``) before
making it, so ``undo`` (clean stop) and ``gateway down`` (after a crash) remove exactly what
a run added, in reverse order.  pyroute2's synchronous ``IPRoute`` runs its own event
loop, so callers inside asyncio run these functions in a worker thread.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from gateway.links.tun.record import TunRecord

log = logging.getLogger("gateway.links.tun")

# Errors meaning "already gone": undoing twice, or undoing what died with the device.
_GONE = {errno.ENOENT, errno.ESRCH, errno.ENODEV, errno.EADDRNOTAVAIL}


def _family(version: int) -> int:
    return socket.AF_INET if version == 4 else socket.AF_INET6


class Changes:
    """Applies kernel changes for one TUN run, recording each before making it."""

    def __init__(self, record: TunRecord, path: Path) -> None:
        self.record = record
        self.path = path

    def apply(self, ipr: IPRoute, change: dict[str, Any]) -> None:
        self.record.changes.append(change)
        self.record.save(self.path)
        _do(ipr, change, "add")


def _index(ipr: IPRoute, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def _do(ipr: IPRoute, change: dict[str, Any], action: str) -> None:
    kind = change["kind"]
    if kind == "link":
        if action == "del":
            idx = _index(ipr, change["ifname"])
            if idx is not None:
                ipr.link("del", index=idx)
        return  # the device itself is created by opening /dev/net/tun
    if kind == "addr":
        idx = _index(ipr, change["ifname"])
        if idx is None:
            if action == "add":
                raise NetlinkError(errno.ENODEV, f"no interface {change['ifname']}")
            return
        iface = ipaddress.ip_interface(change["address"])
        kw: dict[str, Any] = {}
        if iface.version == 6 and action == "add":
            kw["flags"] = 0x02  # IFA_F_NODAD: a point-to-point device has no one to collide with
        ipr.addr(action, index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen,
                 family=_family(iface.version), **kw)
    elif kind == "route":
        idx = _index(ipr, change["ifname"])
        if idx is None:
            if action == "add":
                raise NetlinkError(errno.ENODEV, f"no interface {change['ifname']}")
            return  # routes through a device vanish with it
        net = ipaddress.ip_network(change["dst"])
        ipr.route(action, dst=str(net), oif=idx, table=change["table"], family=_family(net.version))
    elif kind == "rule":
        ipr.rule(action, table=change["table"], priority=change["priority"], iifname=change["iif"],
                 family=_family(change["family"]))
    else:
        raise ValueError(f"unknown change {kind!r}")


def setup(
    changes: Changes,
    *,
    ifname: str,
    mtu: int,
    addresses: list[str],
    lan_interfaces: list[str],
    table: int,
) -> None:
    """Bring the device up with its addresses, then steer each LAN interface into it."""
    with IPRoute() as ipr:
        idx = _index(ipr, ifname)
        if idx is None:
            raise OSError(errno.ENODEV, f"TUN device {ifname} disappeared")
        changes.apply(ipr, {"kind": "link", "ifname": ifname})
        ipr.link("set", index=idx, mtu=mtu, state="up")
        _loose_rp_filter(ifname)
        for a in addresses:
            _optional_v6(changes, ipr, {"kind": "addr", "ifname": ifname, "address": a})
        if not lan_interfaces:
            return
        for lan in lan_interfaces:
            if _index(ipr, lan) is None:
                raise OSError(errno.ENODEV, f"no LAN interface {lan!r}")
        for dst in ("0.0.0.0/0", "::/0"):
            _optional_v6(changes, ipr, {"kind": "route", "ifname": ifname, "dst": dst, "table": table})
        for lan in lan_interfaces:
            for version in (4, 6):
                _optional_v6(changes, ipr, {"kind": "rule", "family": version, "iif": lan,
                                            "table": table, "priority": table})
    if lan_interfaces and not _forwarding():
        log.warning("tun: IPv4 forwarding is off (net.ipv4.ip_forward=0): LAN traffic will not "
                    "reach the TUN device until it is turned on")


def _optional_v6(changes: Changes, ipr: IPRoute, change: dict[str, Any]) -> None:
    """IPv6 may be disabled on the host: then only IPv4 is steered, and we say so."""
    v6 = change.get("family") == 6 or ":" in str(change.get("dst", change.get("address", "")))
    try:
        changes.apply(ipr, change)
    except NetlinkError as e:
        if not v6 or e.code not in (errno.EAFNOSUPPORT, errno.EOPNOTSUPP, errno.EACCES):
            raise
        log.warning("tun: IPv6 is not available here (%s): steering IPv4 only", e)


def undo(record: TunRecord, on_error: Callable[[str], None] | None = None) -> int:
    """Remove every recorded change, newest first; returns how many failed."""
    failed = 0
    with IPRoute() as ipr:
        for change in reversed(record.changes):
            try:
                _do(ipr, change, "del")
            except NetlinkError as e:
                if e.code in _GONE:
                    continue
                failed += 1
                msg = f"tun: could not remove {change}: {e}"
                (on_error or log.warning)(msg)
    return failed


def _loose_rp_filter(ifname: str) -> None:
    """Replies that netstack writes come from the impersonated servers' addresses, which the
    main table routes elsewhere: strict reverse-path filtering would drop them."""
    try:
        with open("/proc/sys/net/ipv4/conf/all/rp_filter", encoding="ascii") as f:
            strict_all = f.read().strip() != "0"
        with open(f"/proc/sys/net/ipv4/conf/{ifname}/rp_filter", "w", encoding="ascii") as f:
            f.write("2" if strict_all else "0")
    except OSError as e:
        log.debug("tun: cannot set rp_filter on %s: %s", ifname, e)


def _forwarding() -> bool:
    try:
        with open("/proc/sys/net/ipv4/ip_forward", encoding="ascii") as f:
            return f.read().strip() == "1"
    except OSError:
        return True
