"""IP output shared by every part of the stack: wrapping, fragmentation to the path MTU,
the path MTU cache that ICMP errors teach, and address conversion with a small cache.

The parts of ``Stack`` (TCP table, UDP, ICMP) are mixins over this one base so the hot
path stays plain method calls on one object; the state they share is declared here.
"""

from __future__ import annotations

import os
import socket
from collections import OrderedDict, deque

from netstack.config import StackConfig
from netstack.counters import Counters
from netstack.events import Address, Event
from netstack.fragments import fragment_ipv4, fragment_ipv6
from netstack.ipv4 import build_ipv4
from netstack.ipv6 import build_ipv6


def pack_ip(ip: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)


class IpOutput:
    """Packets to put on the link, and the per-destination state output needs."""

    config: StackConfig
    counters: Counters
    _out: list[bytes]
    _events: deque[Event]
    _now: float
    _ip_ident: int
    _ntop: dict[bytes, str]
    _pmtu: OrderedDict[bytes, tuple[int, float]]

    def _init_output(self) -> None:
        self._out = []
        self._events = deque()
        self._now = 0.0
        self._ip_ident = int.from_bytes(os.urandom(2), "big")
        self._ntop = {}
        self._pmtu = OrderedDict()

    def _learn_pmtu(self, client: bytes, mtu: int, floor: int) -> None:
        """Remember a smaller path MTU towards a client (RFC 1191 / RFC 8201) for the
        datagrams we fragment.  Bounded in size and time (10 minutes, RFC 1191), and never
        below the protocol minimum, so a forged error can do little."""
        if mtu >= self.config.mtu:
            return
        mtu = max(mtu, floor)
        pmtu = self._pmtu
        pmtu[client] = (mtu, self._now + 600.0)
        pmtu.move_to_end(client)
        while len(pmtu) > 4096:
            pmtu.popitem(last=False)
        self.counters["rx.icmp.pmtu_learned"] += 1

    def path_mtu(self, client: str) -> int:
        """The MTU used towards ``client``: the link MTU unless ICMP taught us a smaller one."""
        entry = self._pmtu.get(pack_ip(client))
        return entry[0] if entry is not None and entry[1] > self._now else self.config.mtu

    def _send_ip(self, src: bytes, dst: bytes, proto: int, payload: bytes, df: bool = True) -> None:
        """Wrap an upper-layer message in IP, fragmenting it when it exceeds the path MTU."""
        mtu = self.config.mtu
        if self._pmtu:
            entry = self._pmtu.get(dst)
            if entry is not None and entry[1] > self._now:
                mtu = entry[0]
        ttl = self.config.ttl
        if len(src) == 4:
            self._ip_ident = ident = (self._ip_ident + 1) & 0xFFFF
            if len(payload) + 20 <= mtu:
                self._out.append(build_ipv4(src, dst, proto, payload, ttl=ttl, ident=ident, df=df))
            else:
                self._out.extend(fragment_ipv4(src, dst, proto, payload, mtu, ident=ident, ttl=ttl))
                self.counters["tx.ipv4.fragmented"] += 1
        elif len(payload) + 40 <= mtu:
            self._out.append(build_ipv6(src, dst, proto, payload, hop_limit=ttl))
        else:
            ident = int.from_bytes(os.urandom(4), "big")
            self._out.extend(
                fragment_ipv6(src, dst, proto, payload, max(mtu, 1280), ident=ident, hop_limit=ttl)
            )
            self.counters["tx.ipv6.fragmented"] += 1

    def _ntop_ip(self, ip: bytes) -> str:
        s = self._ntop.get(ip)
        if s is None:
            if len(self._ntop) > 4096:
                self._ntop.clear()
            s = self._ntop[ip] = socket.inet_ntop(socket.AF_INET6 if len(ip) == 16 else socket.AF_INET, ip)
        return s

    def _addr(self, ip: bytes, port: int) -> Address:
        return (self._ntop_ip(ip), port)
