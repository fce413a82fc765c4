"""Connection hooks and their data, under the module name mitmproxy scripts import.

The hook classes themselves live with every other hook in ``gateway.hooks`` (one table of
hook names); this module adds the data class the server hooks carry and re-exports the
hooks so ``from gateway.proxy.server_hooks import ServerConnectHook`` works as in
mitmproxy.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.connection import Client, Server
from gateway.hooks import (
    ClientConnectedHook,
    ClientDisconnectedHook,
    ServerConnectedHook,
    ServerConnectErrorHook,
    ServerConnectHook,
    ServerDisconnectedHook,
)

__all__ = [
    "ServerConnectionHookData",
    "ClientConnectedHook",
    "ClientDisconnectedHook",
    "ServerConnectHook",
    "ServerConnectedHook",
    "ServerDisconnectedHook",
    "ServerConnectErrorHook",
]


@dataclass
class ServerConnectionHookData:
    """Argument of the ``server_connect*`` / ``server_disconnected`` hooks.

    In ``server_connect``, setting ``server.error`` stops the connection attempt and
    changing ``server.address`` / ``server.via`` redirects it.
    """

    server: Server
    """The server connection this hook is about."""
    client: Client
    """The client on whose behalf it is made."""
