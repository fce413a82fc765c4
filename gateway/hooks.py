"""Every hook the gateway calls, with the argument it passes: the addon API's table of contents.

Each hook is a small dataclass whose fields are the hook's arguments, so that
``AddonManager.trigger(RequestHook(flow))`` and ``trigger("request", flow)`` are the
same call, and so that the names below are the single place where hook names are
spelt (the addon manager warns about addon methods that look like a misspelling of
one of them).  Names and arguments are mitmproxy's.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from gateway import connection, dns, flow, http, tcp, tls, udp
    from gateway.addonmanager import Loader
    from gateway.proxy import server_hooks

all_hooks: dict[str, type[Hook]] = {}
"""Hook name -> Hook class, for every hook defined anywhere."""


@dataclass
class Hook:
    name: ClassVar[str]

    def args(self) -> list[Any]:
        return [getattr(self, f.name) for f in dataclasses.fields(self)]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if not name:
            return
        other = all_hooks.get(name)
        if other is not None and _arg_names(other) != _arg_names(cls):
            # Another module may define the same hook for its own layer (as mitmproxy does
            # in its proxy layers); the arguments must then agree.
            warnings.warn(f"two definitions of hook {name!r} disagree: {other} and {cls}", RuntimeWarning, stacklevel=2)
        all_hooks[name] = cls


def _arg_names(cls: type) -> list[str]:
    return [k for k in cls.__dict__.get("__annotations__", {}) if k != "name"]


# -- lifecycle ---------------------------------------------------------------------------


@dataclass
class LoadHook(Hook):
    """The addon was added: declare options (``loader.add_option``)."""

    name = "load"
    loader: Loader


@dataclass
class ConfigureHook(Hook):
    """Options changed (all of them once at start-up); raise OptionsError to refuse a value."""

    name = "configure"
    updated: set[str]


@dataclass
class RunningHook(Hook):
    """The gateway is up: listeners are open."""

    name = "running"


@dataclass
class DoneHook(Hook):
    """The addon is removed or the gateway shuts down."""

    name = "done"


@dataclass
class UpdateHook(Hook):
    """Flows were changed by something other than the proxy (e.g. a user's command)."""

    name = "update"
    flows: Sequence[flow.Flow]


# -- connections -------------------------------------------------------------------------


@dataclass
class ClientConnectedHook(Hook):
    """A client connected; setting ``client.error`` closes it."""

    name = "client_connected"
    client: connection.Client


@dataclass
class ClientDisconnectedHook(Hook):
    name = "client_disconnected"
    client: connection.Client


@dataclass
class ServerConnectHook(Hook):
    """About to connect upstream; setting ``data.server.error`` prevents it."""

    name = "server_connect"
    data: server_hooks.ServerConnectionHookData


@dataclass
class ServerConnectedHook(Hook):
    name = "server_connected"
    data: server_hooks.ServerConnectionHookData


@dataclass
class ServerDisconnectedHook(Hook):
    name = "server_disconnected"
    data: server_hooks.ServerConnectionHookData


@dataclass
class ServerConnectErrorHook(Hook):
    name = "server_connect_error"
    data: server_hooks.ServerConnectionHookData


# -- HTTP --------------------------------------------------------------------------------


@dataclass
class HttpConnectHook(Hook):
    """A CONNECT request; setting a non-2xx ``flow.response`` refuses the tunnel."""

    name = "http_connect"
    flow: http.HTTPFlow


@dataclass
class HttpConnectUpstreamHook(Hook):
    """A CONNECT about to be sent to the upstream proxy (add auth headers here)."""

    name = "http_connect_upstream"
    flow: http.HTTPFlow


@dataclass
class HttpConnectedHook(Hook):
    name = "http_connected"
    flow: http.HTTPFlow


@dataclass
class HttpConnectErrorHook(Hook):
    name = "http_connect_error"
    flow: http.HTTPFlow


@dataclass
class RequestHeadersHook(Hook):
    """Request headers read, body not yet (set ``flow.request.stream`` here)."""

    name = "requestheaders"
    flow: http.HTTPFlow


@dataclass
class RequestHook(Hook):
    """Full request read; setting ``flow.response`` answers without contacting the server."""

    name = "request"
    flow: http.HTTPFlow


@dataclass
class ResponseHeadersHook(Hook):
    name = "responseheaders"
    flow: http.HTTPFlow


@dataclass
class ResponseHook(Hook):
    name = "response"
    flow: http.HTTPFlow


@dataclass
class ErrorHook(Hook):
    """An HTTP flow failed (``flow.error`` says why)."""

    name = "error"
    flow: http.HTTPFlow


# -- TCP / UDP ---------------------------------------------------------------------------


@dataclass
class TcpStartHook(Hook):
    name = "tcp_start"
    flow: tcp.TCPFlow


@dataclass
class TcpMessageHook(Hook):
    """``flow.messages[-1]`` arrived; it may be changed or dropped before it is sent on."""

    name = "tcp_message"
    flow: tcp.TCPFlow


@dataclass
class TcpEndHook(Hook):
    name = "tcp_end"
    flow: tcp.TCPFlow


@dataclass
class TcpErrorHook(Hook):
    name = "tcp_error"
    flow: tcp.TCPFlow


@dataclass
class UdpStartHook(Hook):
    name = "udp_start"
    flow: udp.UDPFlow


@dataclass
class UdpMessageHook(Hook):
    name = "udp_message"
    flow: udp.UDPFlow


@dataclass
class UdpEndHook(Hook):
    name = "udp_end"
    flow: udp.UDPFlow


@dataclass
class UdpErrorHook(Hook):
    name = "udp_error"
    flow: udp.UDPFlow


# -- DNS ---------------------------------------------------------------------------------


@dataclass
class DnsRequestHook(Hook):
    """A DNS query; setting ``flow.response`` answers it locally."""

    name = "dns_request"
    flow: dns.DNSFlow


@dataclass
class DnsResponseHook(Hook):
    name = "dns_response"
    flow: dns.DNSFlow


@dataclass
class DnsErrorHook(Hook):
    name = "dns_error"
    flow: dns.DNSFlow


# -- WebSocket ---------------------------------------------------------------------------


@dataclass
class WebsocketStartHook(Hook):
    name = "websocket_start"
    flow: http.HTTPFlow


@dataclass
class WebsocketMessageHook(Hook):
    """``flow.websocket.messages[-1]`` arrived; ``message.drop()`` or edit it."""

    name = "websocket_message"
    flow: http.HTTPFlow


@dataclass
class WebsocketEndHook(Hook):
    name = "websocket_end"
    flow: http.HTTPFlow


# -- TLS ---------------------------------------------------------------------------------


@dataclass
class TlsClienthelloHook(Hook):
    """ClientHello parsed; ``data.ignore_connection = True`` passes the connection through."""

    name = "tls_clienthello"
    data: tls.ClientHelloData


@dataclass
class TlsStartClientHook(Hook):
    name = "tls_start_client"
    data: tls.TlsData


@dataclass
class TlsStartServerHook(Hook):
    name = "tls_start_server"
    data: tls.TlsData


@dataclass
class TlsEstablishedClientHook(Hook):
    name = "tls_established_client"
    data: tls.TlsData


@dataclass
class TlsEstablishedServerHook(Hook):
    name = "tls_established_server"
    data: tls.TlsData


@dataclass
class TlsFailedClientHook(Hook):
    """The client refused our certificate (pinning) or the handshake broke."""

    name = "tls_failed_client"
    data: tls.TlsData


@dataclass
class TlsFailedServerHook(Hook):
    name = "tls_failed_server"
    data: tls.TlsData


def hook_names() -> list[str]:
    return list(all_hooks)


def event_sequence(f: Any) -> Iterator[Hook]:
    """The hooks a finished flow would have seen, in order (for tests and replays).

    Messages (TCP, UDP, WebSocket) are re-added one by one, so that a ``*_message`` hook
    sees the message it is about as ``messages[-1]``, as it does live.
    """
    kind = getattr(f, "type", None)
    if kind == "http":
        if f.request is not None:
            yield RequestHeadersHook(f)
            yield RequestHook(f)
        if f.response is not None:
            yield ResponseHeadersHook(f)
            yield ResponseHook(f)
        if getattr(f, "websocket", None) is not None:
            queue = list(f.websocket.messages)
            f.websocket.messages = []
            yield WebsocketStartHook(f)
            for m in queue:
                f.websocket.messages.append(m)
                yield WebsocketMessageHook(f)
            yield WebsocketEndHook(f)
        elif f.error is not None:
            yield ErrorHook(f)
    elif kind in ("tcp", "udp"):
        start, message, error, end = (
            (TcpStartHook, TcpMessageHook, TcpErrorHook, TcpEndHook)
            if kind == "tcp"
            else (UdpStartHook, UdpMessageHook, UdpErrorHook, UdpEndHook)
        )
        queue = list(f.messages)
        f.messages = []
        yield start(f)
        for m in queue:
            f.messages.append(m)
            yield message(f)
        if f.error is not None:
            yield error(f)
        yield end(f)
    elif kind == "dns":
        yield DnsRequestHook(f)
        if f.response is not None:
            yield DnsResponseHook(f)
        elif f.error is not None:
            yield DnsErrorHook(f)
    else:
        raise TypeError(f"unknown flow type: {f!r}")
