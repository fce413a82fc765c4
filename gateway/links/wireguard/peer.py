"""One WireGuard peer: its keys, its handshake and sessions, its timers and its endpoint.

The peer holds state; the device holds the logic that moves between states, because
most transitions touch device-wide things too (the index table, the allowed-IPs table,
the outgoing queue).
"""

from __future__ import annotations

import ipaddress
import random
from collections import deque
from typing import Any

from gateway.links.wireguard.allowed_ips import Network
from gateway.links.wireguard.constants import MAX_STAGED_PACKETS
from gateway.links.wireguard.cookie import CookieGenerator
from gateway.links.wireguard.handshake import Handshake, StaticIdentity
from gateway.links.wireguard.keys import to_base64
from gateway.links.wireguard.session import Keypairs
from gateway.links.wireguard.timers import TimerConfig, Timers

Address = tuple[Any, ...]
"""A socket address as the socket module gives it: (host, port) or (host, port, flow, scope)."""


class Peer:
    __slots__ = ("name", "public_key", "preshared_key", "handshake", "keypairs", "timers", "cookies",
                 "endpoint", "staged", "allowed_ips", "rx_bytes", "tx_bytes", "rx_packets", "tx_packets",
                 "last_handshake", "link_info", "__weakref__")

    def __init__(self, identity: StaticIdentity, public_key: bytes, *, name: str | None,
                 preshared_key: bytes | None, config: TimerConfig, rng: random.Random,
                 index_table: dict[int, Any], endpoint: Address | None = None,
                 persistent_keepalive: float = 0.0) -> None:
        self.public_key = public_key
        self.name = name or to_base64(public_key)
        self.preshared_key = preshared_key
        self.handshake = Handshake(identity, public_key, preshared_key)
        self.keypairs = Keypairs(index_table)
        self.timers = Timers(config, rng, persistent_keepalive)
        self.cookies = CookieGenerator(public_key, config.cookie_refresh_time)
        self.endpoint: Address | None = endpoint
        self.staged: deque[bytes] = deque(maxlen=MAX_STAGED_PACKETS)
        self.allowed_ips: list[Network] = []
        self.rx_bytes = 0
        self.tx_bytes = 0
        self.rx_packets = 0
        self.tx_packets = 0
        self.last_handshake: float | None = None
        """Wall-clock time of the last completed handshake, as `wg show` reports it."""
        self.link_info = {"wireguard_peer": self.name, "wireguard_key": to_base64(public_key)}
        """What a packet mode puts in ``Arrival.link`` for connections of this peer."""

    @property
    def persistent_keepalive(self) -> float:
        return self.timers.persistent_keepalive

    @property
    def public_key_base64(self) -> str:
        return to_base64(self.public_key)

    def __repr__(self) -> str:
        return f"<Peer {self.name} endpoint={self.endpoint!r}>"


def address_bytes(addr: Address) -> bytes:
    """IP and port of a socket address as bytes: what a cookie is bound to."""
    host = str(addr[0]).split("%", 1)[0]
    return ipaddress.ip_address(host).packed + int(addr[1]).to_bytes(2, "big")
