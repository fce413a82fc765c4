"""Modes: servers that produce client connections for the connection handler.

``await start_mode(spec, handler)`` starts one mode and returns a running
``ModeServer`` (``.addresses``, ``.address``, ``await .stop()``).  Socket modes live here:

- ``regular`` / ``upstream:URL``: an HTTP proxy; the HTTP layer reads absolute-form
  requests and CONNECT (upstream mode tunnels through the upstream proxy);
- ``socks5``: SOCKS5 with RFC 1929 authentication when ``proxyauth`` is set;
- ``reverse:SCHEME://host:port``: every connection goes to one server (``udp``/``dns``
  also listen on UDP);
- ``transparent``: the original destination from ``SO_ORIGINAL_DST``.

Packet modes (``wireguard``, ``tun``) are started by their link package, found by
convention: ``gateway.links.<name>`` must offer ``async start(mode, handler)`` returning
an object with ``addresses`` and ``async stop()``.

Listening host: the spec's, else ``listen_host``, else 127.0.0.1 (proxy modes listen on
localhost unless told otherwise).  Listening port: the spec's, else ``listen_port``, else
the mode's default (8080, 1080, 53 for ``reverse:dns``).
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from gateway.modes.listeners import DEFAULT_LISTEN_HOST, ModeServer, TcpListener, UdpListener
from gateway.proxy.arrival import Address, Arrival

log = logging.getLogger("gateway.modes")

__all__ = ["ModeServer", "start_mode"]


def _addr(a: Any) -> Address:
    return (str(a[0]), int(a[1])) if a else ("", 0)


async def start_mode(
    spec: str,
    handler: Any,
    *,
    listen_host: str | None = None,
    listen_port: int | None = None,
) -> ModeServer:
    """Start the mode ``spec``; ``OSError`` if its port is busy, ``ValueError`` if the spec is bad."""
    from gateway.proxy.handler import option
    from gateway.proxy.mode_specs import ProxyMode

    mode = ProxyMode.parse(spec)
    kind = mode.type_name
    if kind in ("wireguard", "tun"):
        try:
            link = importlib.import_module(f"gateway.links.{kind}")
            start = link.start
        except (ImportError, AttributeError) as e:
            raise ValueError(f"{kind} mode is not available: gateway.links.{kind}.start is missing") from e
        return await start(mode, handler)

    host = mode.listen_host(listen_host or DEFAULT_LISTEN_HOST)
    port = mode.listen_port(listen_port)
    if port is None:
        raise ValueError(f"mode {spec!r} has no port to listen on")
    options = getattr(handler, "options", None)

    def arrival(writer: Any, destination: Address | None) -> Arrival:
        return Arrival(
            mode=spec,
            transport="tcp",
            peername=_addr(writer.get_extra_info("peername")),
            sockname=_addr(writer.get_extra_info("sockname")),
            destination=destination,
        )

    if kind in ("regular", "upstream"):

        async def accept_proxy(reader: Any, writer: Any) -> Arrival | None:
            return arrival(writer, None)

        server: ModeServer = TcpListener(spec, handler, accept_proxy)
        await server.start(host, port)  # type: ignore[attr-defined]
    elif kind == "socks5":
        from gateway.modes import socks5

        async def accept_socks(reader: Any, writer: Any) -> Arrival | None:
            try:
                dest = await socks5.handshake(reader, writer, option(options, "proxyauth"))
            except (socks5.Socks5Error, TimeoutError, OSError) as e:
                log.info("SOCKS5 client %s: %s", _addr(writer.get_extra_info("peername")), e)
                return None
            return arrival(writer, dest)

        server = TcpListener(spec, handler, accept_socks)
        await server.start(host, port)  # type: ignore[attr-defined]
    elif kind == "transparent":
        from gateway.modes.transparent import original_destination

        async def accept_transparent(reader: Any, writer: Any) -> Arrival | None:
            sock = writer.get_extra_info("socket")
            try:
                dest = original_destination(sock)
            except (OSError, ValueError) as e:
                # Not redirected: its destination is ourselves; the handler refuses loops.
                log.info("transparent: no original destination for %s (%s); using the local address",
                         _addr(writer.get_extra_info("peername")), e)
                dest = _addr(writer.get_extra_info("sockname"))
            return arrival(writer, dest)

        server = TcpListener(spec, handler, accept_transparent)
        await server.start(host, port)  # type: ignore[attr-defined]
    elif kind == "reverse":
        target = tuple(mode.address)  # type: ignore[attr-defined]
        proto = mode.transport_protocol

        def udp_arrival(peer: Address, sockname: Address) -> Arrival:
            return Arrival(mode=spec, transport="udp", peername=peer, sockname=sockname, destination=target)

        async def accept_reverse(reader: Any, writer: Any) -> Arrival | None:
            return arrival(writer, target)

        if proto == "udp":
            udp = UdpListener(spec, handler, udp_arrival)
            await udp.start(host, port)
            return udp
        if proto == "tcp":
            tcp = TcpListener(spec, handler, accept_reverse)
            await tcp.start(host, port)
            return tcp
        # Both (reverse:dns): the same port number on UDP and TCP.  With port 0 the UDP
        # port the kernel picks may be taken on TCP: try a few.
        for attempt in range(10):
            udp = UdpListener(spec, handler, udp_arrival)
            await udp.start(host, port)
            tcp = TcpListener(spec, handler, accept_reverse)
            try:
                await tcp.start(host, udp.address[1])
            except OSError:
                await udp.stop()
                if port != 0 or attempt == 9:
                    raise
                continue
            return _Combined(spec, handler, [tcp, udp])
    else:
        raise ValueError(f"mode {kind!r} cannot be started here")
    return server


class _Combined(ModeServer):
    """TCP and UDP listeners of one mode (``reverse:dns``)."""

    def __init__(self, spec: str, handler: Any, parts: list[ModeServer]) -> None:
        super().__init__(spec, handler)
        self.parts = parts
        for p in parts:
            self.addresses.extend(p.addresses)

    async def stop(self) -> None:
        for p in self.parts:
            await p.stop()
