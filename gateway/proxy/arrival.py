"""The one call every mode ends in (DESIGN.md, seam 3).

Socket modes (regular, SOCKS5, upstream, reverse, transparent) and packet modes
(WireGuard, TUN through netstack) all hand the connection handler the same thing: a
client connection as asyncio streams (or a datagram stream for UDP), an ``Arrival``
describing where it came from and where it wanted to go.  Nothing above this call knows
which mode produced a connection except through the ``Arrival``.

A netstack TCP connection is exposed as a real ``asyncio.StreamReader`` /
``asyncio.StreamWriter`` pair over a netstack transport, so layers cannot tell it from a
kernel socket; TLS is done above with ``ssl.MemoryBIO`` + ``SSLObject`` for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Address = tuple[str, int]


@dataclass
class Arrival:
    """Metadata of a client connection as the mode saw it."""

    mode: str
    """The full mode spec string that produced it, e.g. ``"regular@8080"``, ``"wireguard"``."""
    transport: Literal["tcp", "udp"]
    peername: Address
    sockname: Address
    destination: Address | None = None
    """Where the client wanted to go, when the mode knows it before any byte is read
    (transparent, reverse, WireGuard, TUN, SOCKS5).  None for a regular HTTP proxy, which
    learns it from the request."""
    link: dict[str, Any] = field(default_factory=dict)
    """Packet modes tag their connections here: ``{"wireguard_peer": name,
    "wireguard_key": base64 public key}`` or ``{"tun_interface": name}``."""


class DatagramStream(Protocol):
    """A UDP 'connection': the datagrams of one client 4-tuple, both ways."""

    async def recv(self) -> bytes | None:
        """The next datagram from the client; None once the stream is closed or idle."""

    def send(self, data: bytes) -> None:
        """Send one datagram to the client, from the address it wrote to."""

    def close(self) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...
