"""The connection handler: one call per client connection, whatever mode produced it.

Every mode -- regular, SOCKS5, upstream, reverse, transparent, and the packet modes
through netstack -- ends in ``await handler.handle_tcp(reader, writer, arrival)`` or
``await handler.handle_udp(stream, arrival)`` (``gateway.proxy.arrival``).  From there:

1. a ``gateway.connection.Client`` is built from the ``Arrival`` (link info included)
   and ``client_connected`` fires (an addon may set ``client.error`` to refuse it);
2. the next layer is chosen: the mode decides first (regular/upstream without a
   destination speak HTTP; ``reverse:tcp`` is raw...), then port 53 goes to DNS,
   ``tcp_hosts`` forces raw TCP, and otherwise the first bytes are peeked: a TLS
   ClientHello, an HTTP request, or anything else (raw TCP).  ``ignore_hosts`` /
   ``allow_hosts`` (on host:port and SNI) pass a connection through untouched;
3. TLS is intercepted in ``gateway.layers.tls`` (server first, to copy its certificate
   names and ALPN), and the decrypted streams go through the same choice again;
4. ``client_disconnected`` fires when the layer returns, whatever happened.

In packet modes (``LABELLED_MODES``) a destination IP that the same client just got
from our DNS layer is labelled with the name it asked for (``resolved_names``): the
layers see ``(name, port)`` as the destination, so ``server_conn.address`` and the
``request.host`` of a request without Host show the name, while ``connect_server``
still connects to the IP the client chose (``_Connection.pinned``), never resolving
the name again.  ``upstream_proxy`` chains the server connections of every mode but
``upstream`` and ``reverse`` through an HTTP(S) proxy with CONNECT.

Nothing raises out of ``handle_tcp``/``handle_udp``: bad input ends that one connection.

What layers find in the ``LayerContext`` they get (besides the fields of ``context.py``):
``ctx.arrival.destination`` is where this connection or tunnel goes (None only for a
regular/upstream proxy connection before its first request); ``ctx.server`` may hold
an already connected (and TLS-established) server stream for that destination;
``ctx.extra`` has ``"client_tls"`` (the client side is TLS we terminated),
``"server_tls"`` (talk TLS to the destination), ``"sni"`` and ``"reverse"`` (the
destination is a reverse-proxy target: rewrite Host accordingly).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
from typing import Any

from gateway.layers.context import LayerContext, ServerStream
from gateway.proxy import detect
from gateway.proxy.arrival import Address, Arrival, DatagramStream
from gateway.proxy.resolved_names import ResolvedNames, client_key
from gateway.proxy.server_connect import (
    TLS_TIMEOUT,
    ListenAddresses,
    ServerContexts,
    ServerTlsError,
    fill_tls_info,
    http_connect_tunnel,
    open_tcp,
    parse_upstream_proxy,
    peer_certificates,
)
from gateway.proxy.streams import BufferedReader, peekable
from gateway.proxy.tlsstream import wrap

log = logging.getLogger("gateway.proxy")

CLIENT_FIRST_TIMEOUT = 3.0
"""How long to wait for a client's first bytes before deciding the server speaks first
(SMTP, SSH, ...) and relaying raw TCP."""
CLIENT_HELLO_TIMEOUT = 30.0
MAX_PEEK = 64 * 1024
LABELLED_MODES = ("wireguard", "tun")
"""Modes whose connections carry only the IP the client resolved through our own DNS
layer: their flows are labelled with the name it asked for (``resolved_names``)."""


def option(options: Any, name: str, default: Any = None) -> Any:
    """An option's value, or ``default`` while no addon has declared it."""
    try:
        value = getattr(options, name)
    except (AttributeError, KeyError):
        return default
    return default if value is None else value


class _Connection:
    """What one client connection opened, so it can all be closed at its end."""

    def __init__(self) -> None:
        self.servers: list[ServerStream] = []
        self.pinned: dict[Address, Address] = {}
        """(name, port) -> (ip, port): a destination labelled with the name the client
        resolved is still connected at the IP the client chose, never looked up again."""


class ConnectionHandler:
    """Shared by all modes of one gateway; holds the CA, TLS contexts and listen addresses."""

    def __init__(self, options: Any, addons: Any, certs: Any = None) -> None:
        self.options = options
        self.addons = addons
        self._certs = certs
        self.listen_addresses = ListenAddresses()
        self.server_contexts = ServerContexts()
        self.client_first_timeout = CLIENT_FIRST_TIMEOUT
        self.client_hello_timeout = CLIENT_HELLO_TIMEOUT
        self.tls_timeout = TLS_TIMEOUT
        self.resolved_names = ResolvedNames()
        """Filled by the DNS layer from the answers it sent; labels later connections."""

    @property
    def certs(self) -> Any:
        if self._certs is None:
            from gateway.certs import CertStore

            self._certs = CertStore(option(self.options, "state_dir", "~/.gateway"))
        return self._certs

    # -- entry points ------------------------------------------------------------------------
    async def handle_tcp(self, reader: Any, writer: Any, arrival: Arrival) -> None:
        from gateway.connection import Client, ConnectionState

        try:
            client = Client.from_arrival(arrival)
        except ValueError as e:
            log.error("connection from %s with a bad mode spec: %s", arrival.peername, e)
            writer.close()
            return
        conn = _Connection()
        try:
            await self.addons.trigger("client_connected", client)
            if client.error:
                log.info("client %s refused by an addon: %s", _fmt(arrival.peername), client.error)
                return
            arrival = self._label(client, arrival, conn)
            ctx = self._context(client, arrival, conn)
            await self.dispatch(ctx, peekable(reader), writer)
        except asyncio.CancelledError:
            client.error = client.error or "cancelled"
            raise
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, EOFError) as e:
            client.error = client.error or (str(e) or type(e).__name__)
            log.debug("client %s: %s", _fmt(arrival.peername), client.error)
        except Exception as e:  # noqa: BLE001 - one connection must never take the process down
            client.error = client.error or repr(e)
            log.exception("client %s: connection handler failed", _fmt(arrival.peername))
        finally:
            await self._close_servers(client, conn)
            _close(writer)
            client.state = ConnectionState.CLOSED
            client.timestamp_end = time.time()
            await asyncio.shield(self.addons.trigger("client_disconnected", client))

    async def handle_udp(self, stream: DatagramStream, arrival: Arrival) -> None:
        from gateway.connection import Client, ConnectionState

        try:
            client = Client.from_arrival(arrival)
        except ValueError as e:
            log.error("datagrams from %s with a bad mode spec: %s", arrival.peername, e)
            stream.close()
            return
        client.transport_protocol = "udp"
        conn = _Connection()
        try:
            await self.addons.trigger("client_connected", client)
            if client.error:
                return
            ctx = self._context(client, arrival, conn)
            mode = client.proxy_mode
            destination = arrival.destination
            if mode.type_name == "reverse":
                destination = tuple(mode.address)  # type: ignore[attr-defined]
                ctx.arrival = dataclasses.replace(arrival, destination=destination)
            if destination is None:
                log.info("UDP from %s without a destination: dropped", _fmt(arrival.peername))
                return
            is_dns = (mode.type_name == "reverse" and mode.scheme == "dns") or (  # type: ignore[attr-defined]
                destination[1] == 53 and not detect.host_matches(option(self.options, "udp_hosts"), destination)
            )
            if is_dns:
                from gateway.layers.dns import handle_dns_udp

                await handle_dns_udp(ctx, stream, destination)
            else:
                from gateway.layers.udp import handle_udp

                await handle_udp(ctx, stream, destination, name=self._resolved_name(client, destination))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001
            client.error = client.error or repr(e)
            log.exception("UDP client %s: handler failed", _fmt(arrival.peername))
        finally:
            stream.close()
            client.state = ConnectionState.CLOSED
            client.timestamp_end = time.time()
            await asyncio.shield(self.addons.trigger("client_disconnected", client))

    # -- names the client resolved through us ------------------------------------------------
    def _resolved_name(self, client: Any, dest: Address | None) -> str | None:
        """The name this client last resolved (through our DNS layer) to ``dest``'s IP."""
        if dest is None or client.proxy_mode.type_name not in LABELLED_MODES or int(dest[1]) == 53:
            return None  # DNS keeps its address: the DNS layer would resolve a name again
        return self.resolved_names.lookup(client_key(client), str(dest[0]), time.monotonic())

    def _label(self, client: Any, arrival: Arrival, conn: _Connection) -> Arrival:
        """mitmproxy's model: the flow's server address (and so ``request.host`` of a request
        without a Host header) is the name, while the connection goes to the IP the client
        chose (``conn.pinned``), which becomes ``Server.peername``."""
        dest = arrival.destination
        name = self._resolved_name(client, dest)
        if name is None or dest is None:
            return arrival
        labelled = (name, int(dest[1]))
        conn.pinned[labelled] = (str(dest[0]), int(dest[1]))
        return dataclasses.replace(arrival, destination=labelled)

    # -- layer selection -------------------------------------------------------------------
    def _context(self, client: Any, arrival: Arrival, conn: _Connection) -> LayerContext:
        async def connect_server(
            address: Address, *, tls: bool, sni: str | None = None, alpn: list[bytes] | None = None
        ) -> ServerStream:
            return await self.connect_server(client, conn, address, tls=tls, sni=sni, alpn=alpn)

        ctx = LayerContext(
            options=self.options,
            addons=self.addons,
            client=client,
            arrival=arrival,
            connect_server=connect_server,
            next_layer=None,  # type: ignore[arg-type]
            certs=None,
        )
        ctx.certs = _LazyCerts(self)
        ctx.extra["listen_addresses"] = self.listen_addresses
        ctx.extra["resolved_names"] = self.resolved_names
        if arrival.destination is not None and tuple(arrival.destination) in conn.pinned:
            ctx.extra["destination_ip"] = conn.pinned[tuple(arrival.destination)]

        async def next_layer(reader: Any, writer: Any, destination: Address) -> None:
            child = dataclasses.replace(
                ctx,
                arrival=dataclasses.replace(arrival, destination=tuple(destination)),
                server=None,
                extra={"listen_addresses": self.listen_addresses, "resolved_names": self.resolved_names},
            )
            await self.dispatch(child, peekable(reader), writer)

        ctx.next_layer = next_layer
        return ctx

    async def dispatch(self, ctx: LayerContext, reader: BufferedReader, writer: Any) -> None:
        """Choose and run the layer for a (possibly tunnelled) client stream."""
        mode = ctx.client.proxy_mode
        kind = mode.type_name
        if kind == "reverse":
            scheme: str = mode.scheme  # type: ignore[attr-defined]
            dest = tuple(mode.address)  # type: ignore[attr-defined]
            ctx.arrival = dataclasses.replace(ctx.arrival, destination=dest)
            ctx.extra["reverse"] = True
            ctx.extra["server_tls"] = scheme in ("https", "tls")
            if scheme == "tcp":
                return await self._raw(ctx, reader, writer, dest)
            if scheme == "dns":
                from gateway.layers.dns import handle_dns_tcp

                return await handle_dns_tcp(ctx, reader, writer, dest)
            return await self._detect(ctx, reader, writer, dest, http_ok=scheme in ("http", "https"))
        dest = ctx.arrival.destination
        if dest is None:
            if kind in ("regular", "upstream"):
                return await self._http(ctx, reader, writer, alpn=None)
            log.info("%s connection from %s has no destination: closed", kind, _fmt(ctx.arrival.peername))
            return
        dest = (str(dest[0]), int(dest[1]))
        if dest[1] == 53 and not detect.host_matches(option(self.options, "tcp_hosts"), dest):
            from gateway.layers.dns import handle_dns_tcp

            return await handle_dns_tcp(ctx, reader, writer, dest)
        return await self._detect(ctx, reader, writer, dest, http_ok=True)

    async def _detect(
        self, ctx: LayerContext, reader: BufferedReader, writer: Any, dest: Address, *, http_ok: bool
    ) -> None:
        opts = self.options
        ignore, allow = option(opts, "ignore_hosts"), option(opts, "allow_hosts")
        # A labelled destination matches host options by its name and by its IP.
        ip_dest: Address | None = ctx.extra.get("destination_ip")
        if detect.host_matches(option(opts, "tcp_hosts"), dest, ip_dest):
            return await self._raw(ctx, reader, writer, dest,
                                   passthrough=detect.should_ignore(ignore, allow, dest, ip_dest))
        proto, data = await self._peek_protocol(reader, self.client_first_timeout)
        if proto is None:  # the client waits: the server speaks first
            return await self._raw(ctx, reader, writer, dest,
                                   passthrough=detect.should_ignore(ignore, allow, dest, ip_dest))
        if not data:
            return  # closed before saying anything
        if proto is detect.Protocol.TLS:
            from gateway.layers import tls as tls_layer

            hello = await tls_layer.read_client_hello(reader, self.client_hello_timeout)
            if hello is None:
                log.info(
                    "client %s: TLS ClientHello cut short or malformed; connection closed",
                    _fmt(ctx.arrival.peername),
                )
                ctx.client.error = "malformed or incomplete TLS ClientHello"
                return
            if detect.should_ignore(ignore, allow, dest, ip_dest, hello.sni, (hello.sni, dest[1]) if hello.sni else None):
                return await self._raw(ctx, reader, writer, dest, passthrough=True)
            result = await tls_layer.intercept(self, ctx, reader, writer, dest, hello)
            if result is None:
                return
            treader, twriter = result
            alpn = ctx.client.alpn
            if alpn in (b"h2", b"http/1.1", b"http/1.0"):
                return await self._http(ctx, treader, twriter, alpn=alpn)
            if alpn is None:
                inner, inner_data = await self._peek_protocol(treader, self.client_first_timeout)
                if inner is detect.Protocol.HTTP and http_ok:
                    return await self._http(ctx, treader, twriter, alpn=None)
                if inner is not None and not inner_data:
                    return
            return await self._raw(ctx, treader, twriter, dest)
        if detect.should_ignore(ignore, allow, dest, ip_dest):
            return await self._raw(ctx, reader, writer, dest, passthrough=True)
        if proto is detect.Protocol.HTTP and http_ok:
            return await self._http(ctx, reader, writer, alpn=None)
        return await self._raw(ctx, reader, writer, dest)

    async def _peek_protocol(
        self, reader: BufferedReader, timeout: float
    ) -> tuple[detect.Protocol | None, bytes]:
        """(protocol, bytes seen); protocol None when the client sent nothing in time."""
        try:
            async with asyncio.timeout(timeout):
                data = await reader.peek(1)
        except TimeoutError:
            return None, b""
        if not data:
            return detect.Protocol.RAW, b""
        data = reader.buffered()
        proto = detect.classify(data)
        try:
            async with asyncio.timeout(timeout):
                while proto is detect.Protocol.UNDECIDED and len(data) < MAX_PEEK:
                    more = await reader.peek_more()
                    if len(more) == len(data):
                        break  # EOF
                    data = more
                    proto = detect.classify(data)
        except TimeoutError:
            pass
        if proto is detect.Protocol.UNDECIDED:
            proto = detect.Protocol.RAW
        return proto, data

    async def _http(self, ctx: LayerContext, reader: Any, writer: Any, *, alpn: bytes | None) -> None:
        try:
            from gateway.layers.http import handle_http
        except ImportError as e:  # the HTTP layer is written concurrently
            log.warning("HTTP layer unavailable (%s); relaying as raw TCP", e)
            if ctx.arrival.destination is None:
                return
            return await self._raw(ctx, reader, writer, tuple(ctx.arrival.destination))
        await handle_http(ctx, reader, writer, alpn=alpn)

    async def _raw(
        self, ctx: LayerContext, reader: Any, writer: Any, dest: Address, *, passthrough: bool = False
    ) -> None:
        from gateway.layers.tcp import handle_tcp

        await handle_tcp(ctx, reader, writer, dest, passthrough=passthrough)

    # -- servers ---------------------------------------------------------------------------
    async def connect_server(
        self,
        client: Any,
        conn: _Connection,
        address: Address,
        *,
        tls: bool,
        sni: str | None = None,
        alpn: list[bytes] | None = None,
    ) -> ServerStream:
        from gateway.connection import ConnectionState, Server
        from gateway.net.server_spec import ServerSpec

        address = (str(address[0]), int(address[1]))
        mode = client.proxy_mode
        server = Server(address=address, transport_protocol="tcp")
        if tls:
            server.tls = True
            server.sni = sni or address[0]
            server.alpn_offers = list(alpn or ())
        via: tuple[str, Address] | None = None
        if mode.type_name == "upstream" and tuple(mode.address) != address:  # type: ignore[attr-defined]
            via = (mode.scheme, tuple(mode.address))  # type: ignore[attr-defined]
            server.via = ServerSpec(via[0], via[1])  # type: ignore[arg-type]
        elif mode.type_name not in ("upstream", "reverse"):
            chain = self._upstream_proxy()
            if chain is not None and chain[1] != address:
                via = chain
                server.via = ServerSpec(via[0], via[1])  # type: ignore[arg-type]
        hook_data = _server_hook_data(client, server)
        await self.addons.trigger("server_connect", hook_data)
        if server.error:
            raise ConnectionRefusedError(f"connection to {_fmt(address)} refused by an addon: {server.error}")
        # An addon may redirect the connection (server.address / server.via).
        address = (str(server.address[0]), int(server.address[1]))
        # A name learned from the client's own DNS answer is only a label: connect to the
        # IP the client chose (a new lookup could give another address, or none).
        target = conn.pinned.get(address, address)
        if server.via is None:
            via = None
        elif via is None or tuple(server.via[1]) != via[1]:
            via = (server.via[0], tuple(server.via[1]))
        writer: Any = None
        try:
            if via is not None:
                scheme, proxy = via
                reader, writer = await open_tcp(proxy[0], proxy[1], self.listen_addresses)
                if scheme == "https":
                    sslctx = self.server_contexts.get(
                        insecure=bool(option(self.options, "ssl_insecure", False)),
                        alpn=[b"http/1.1"],
                        cafile=option(self.options, "ssl_verify_upstream_trusted_ca"),
                    )
                    async with asyncio.timeout(self.tls_timeout):
                        reader, writer = await wrap(
                            peekable(reader), writer, sslctx, server_side=False, server_hostname=proxy[0]
                        )
                await http_connect_tunnel(
                    peekable(reader) if not isinstance(reader, BufferedReader) else reader,
                    writer, target[0], target[1], option(self.options, "upstream_auth"),
                )
            else:
                reader, writer = await open_tcp(target[0], target[1], self.listen_addresses)
            server.peername = writer.get_extra_info("peername")
            server.sockname = writer.get_extra_info("sockname")
            server.timestamp_start = time.time()
            server.timestamp_tcp_setup = time.time()
            if tls:
                reader, writer = await self._server_tls(client, server, reader, writer, alpn)
            server.state = ConnectionState.OPEN
        except BaseException as e:
            server.error = server.error or str(e) or type(e).__name__
            if writer is not None:
                _close(writer)
            if isinstance(e, Exception):
                await self.addons.trigger("server_connect_error", hook_data)
            raise
        await self.addons.trigger("server_connected", hook_data)
        stream = ServerStream(reader=reader, writer=writer, server=server)
        conn.servers.append(stream)
        return stream

    def _upstream_proxy(self) -> tuple[str, Address] | None:
        """The ``upstream_proxy`` option: ``upstream:`` chaining for the other modes."""
        spec = option(self.options, "upstream_proxy")
        if not spec:
            return None
        try:
            return parse_upstream_proxy(spec)
        except ValueError as e:  # checked when set; a bad value must not fail silently
            raise ConnectionRefusedError(f"bad upstream_proxy {spec!r}: {e}") from None

    async def _server_tls(
        self, client: Any, server: Any, reader: Any, writer: Any, alpn: list[bytes] | None
    ) -> tuple[Any, Any]:
        from gateway.layers import tls as tls_layer

        tls_data = tls_layer.make_tls_data(server, client, server)
        await self.addons.trigger("tls_start_server", tls_data)
        sslctx = self.server_contexts.get(
            insecure=bool(option(self.options, "ssl_insecure", False)),
            alpn=alpn,
            cafile=option(self.options, "ssl_verify_upstream_trusted_ca"),
        )

        def started(obj: ssl.SSLObject) -> None:
            tls_data.ssl_conn = obj

        try:
            async with asyncio.timeout(self.tls_timeout):
                treader, twriter = await wrap(
                    peekable(reader), writer, sslctx, server_side=False,
                    server_hostname=server.sni, on_sslobj=started,
                )
        except (ssl.SSLError, OSError, TimeoutError, asyncio.IncompleteReadError) as e:
            reason = _tls_reason(e)
            server.error = f"TLS handshake with {_fmt(server.address)} failed: {reason}"
            log.warning("server %s: TLS handshake failed: %s", _fmt(server.address), reason)
            await self.addons.trigger("tls_failed_server", tls_data)
            raise ServerTlsError(server.error) from e
        fill_tls_info(server, twriter)
        server.certificate_list = peer_certificates(twriter)
        await self.addons.trigger("tls_established_server", tls_data)
        return treader, twriter

    async def _close_servers(self, client: Any, conn: _Connection) -> None:
        from gateway.connection import ConnectionState

        for stream in conn.servers:
            _close(stream.writer)
            server = stream.server
            if server.state is not ConnectionState.CLOSED:
                server.state = ConnectionState.CLOSED
                server.timestamp_end = time.time()
                await asyncio.shield(self.addons.trigger("server_disconnected", _server_hook_data(client, server)))
        conn.servers.clear()


class _LazyCerts:
    """``ctx.certs``: the store is created on first use, not for every plain connection."""

    def __init__(self, handler: ConnectionHandler) -> None:
        self._handler = handler

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handler.certs, name)


def _server_hook_data(client: Any, server: Any) -> Any:
    try:
        from gateway.proxy.server_hooks import ServerConnectionHookData
    except ImportError:  # the model's module is written concurrently
        return _ServerHookData(client=client, server=server)
    return ServerConnectionHookData(client=client, server=server)


@dataclasses.dataclass
class _ServerHookData:
    client: Any
    server: Any


def _tls_reason(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {e.verify_message}"
    if isinstance(e, ssl.SSLError):
        return e.reason or str(e)
    return str(e) or type(e).__name__


def _fmt(addr: Any) -> str:
    if not addr:
        return "?"
    host, port = addr[0], addr[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def _close(writer: Any) -> None:
    try:
        writer.close()
    except Exception:  # noqa: BLE001 - closing is best effort
        pass
