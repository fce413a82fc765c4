"""What a protocol layer is given: the seam between connection handling and protocol logic.

The connection handler (TLS detection, modes) builds one ``LayerContext`` per client
connection and hands it, with the client's reader/writer (plain or TLS-unwrapped), to the
layer that speaks the protocol found.  Layers never open sockets themselves: they ask
``connect_server``, which knows about upstream proxies, TLS to the server and packet
modes, so the same layer code serves every mode (DESIGN.md, seam 4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.proxy.arrival import Address, Arrival

if TYPE_CHECKING:
    from gateway.connection import Client, Server


@dataclass
class ServerStream:
    """An open connection to the server: streams plus its ``gateway.connection.Server``."""

    reader: asyncio.StreamReader
    writer: Any  # asyncio.StreamWriter or the TLS stream writer; same interface
    server: Server


ConnectServer = Callable[..., Awaitable[ServerStream]]
"""``await connect_server(address, *, tls: bool, sni: str | None = None,
alpn: list[bytes] | None = None) -> ServerStream``.  Raises ``OSError`` (or
``ssl.SSLError``) when the server cannot be reached; the layer turns that into an error
flow / 502 answer."""

NextLayer = Callable[[asyncio.StreamReader, Any, Address], Awaitable[None]]
"""``await next_layer(reader, writer, destination)``: after a CONNECT (HTTP or SOCKS5)
the tunnelled bytes go back through protocol detection (TLS? HTTP? raw?) toward
``destination``."""


@dataclass
class LayerContext:
    options: Any
    """Attribute access to option values (``ctx.options.ssl_insecure``)."""
    addons: Any
    """``gateway.addonmanager.AddonManager``: ``await addons.trigger("request", flow)``."""
    client: Client
    arrival: Arrival
    connect_server: ConnectServer
    next_layer: NextLayer
    server: ServerStream | None = None
    """Set when the handler already connected upstream (e.g. to learn the server's
    certificate and ALPN before completing the client's TLS handshake)."""
    certs: Any = None
    """``gateway.certs.CertStore``."""
    extra: dict[str, Any] = field(default_factory=dict)
