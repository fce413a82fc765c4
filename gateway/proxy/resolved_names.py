"""Names a client resolved through us, to label its later connections to those addresses.

In packet modes a phone asks our in-tunnel resolver for ``www.example.com`` and then opens
a connection to the address it got back.  That connection carries only the IP; when the
client gives no name of its own (raw TCP, UDP, TLS without SNI, HTTP without Host) the
flow would show nothing but the IP.  Remembering, per client, which name each answered
address was the answer to lets the connection handler label such a flow with the name the
client asked for -- the question's name, not a CNAME target, since that is what the user
typed or the app requested.

The map is keyed per client (a WireGuard peer's key, else the client's IP) because two
phones may resolve the same address under different names, and a label must never leak
from one device to another.  It is bounded three ways: entries expire with the answer's
TTL (floored, so an answer with TTL 0 still labels the connection opened right after it,
and capped), each client keeps at most ``max_names`` addresses and at most ``max_clients``
clients are remembered (least recently used first out).  Sans-IO: time is passed in.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

from gateway.net.dns import types

MIN_TTL = 30.0
"""An answer with a shorter TTL still labels connections for this long (clients connect
right after resolving, and some resolvers answer with TTL 0)."""
MAX_TTL = 24 * 3600.0
MAX_NAMES = 1024
MAX_CLIENTS = 256


def normalize_ip(host: str) -> str | None:
    """The canonical text of an IP address (IPv4-mapped IPv6 as IPv4); None if not an IP."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def client_key(client: Any) -> Hashable | None:
    """Whose map a connection uses: its WireGuard peer, else its client IP."""
    key = getattr(client, "wireguard_key", None)
    if key:
        return ("wireguard", key)
    peername = getattr(client, "peername", None)
    if peername:
        ip = normalize_ip(str(peername[0]))
        if ip is not None:
            return ("ip", ip)
    return None


class ResolvedNames:
    def __init__(self, *, max_names: int = MAX_NAMES, max_clients: int = MAX_CLIENTS,
                 min_ttl: float = MIN_TTL, max_ttl: float = MAX_TTL) -> None:
        self.max_names = max_names
        self.max_clients = max_clients
        self.min_ttl = min_ttl
        self.max_ttl = max_ttl
        self._clients: OrderedDict[Hashable, OrderedDict[str, tuple[str, float]]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(names) for names in self._clients.values())

    def learn(self, client: Hashable | None, question: str, answers: list[tuple[str, float]], now: float) -> None:
        """``answers``: (address, ttl) pairs of one response to a query for ``question``."""
        if client is None or not question or not answers:
            return
        names = self._clients.get(client)
        if names is None:
            names = self._clients[client] = OrderedDict()
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(client)
        name = question.rstrip(".").lower()
        for address, ttl in answers:
            ip = normalize_ip(address)
            if ip is None:
                continue
            expires = now + min(max(float(ttl), self.min_ttl), self.max_ttl)
            names[ip] = (name, expires)
            names.move_to_end(ip)  # the latest answer wins: it is the one the client just got
        while len(names) > self.max_names:
            names.popitem(last=False)

    def learn_message(self, client: Hashable | None, response: Any, now: float) -> None:
        """Learn from a ``gateway.dns.DNSMessage`` response (A and AAAA answers)."""
        if response is None or getattr(response, "query", True) or not response.questions:
            return
        answers: list[tuple[str, float]] = []
        for record in response.answers:
            try:
                if record.type == types.A:
                    answers.append((str(record.ipv4_address), record.ttl))
                elif record.type == types.AAAA:
                    answers.append((str(record.ipv6_address), record.ttl))
            except ValueError:
                continue  # a malformed record labels nothing
        self.learn(client, response.questions[0].name, answers, now)

    def lookup(self, client: Hashable | None, address: str, now: float) -> str | None:
        """The name ``client`` last resolved to ``address``, if that answer is still fresh."""
        if client is None:
            return None
        names = self._clients.get(client)
        if not names:
            return None
        ip = normalize_ip(address)
        if ip is None:
            return None
        entry = names.get(ip)
        if entry is None:
            return None
        name, expires = entry
        if now >= expires:
            del names[ip]
            return None
        return name
