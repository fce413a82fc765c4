"""TLS interception of a client connection.

Order of events (mitmproxy's, with ``upstream_cert`` on):

1. the ClientHello is read (peeked, not consumed) and parsed; ``tls_clienthello`` fires
   and may choose passthrough (``data.ignore_connection``);
2. the server is connected first, offering the client's ALPN list, so that we learn the
   names on its certificate and the protocol it picked;
3. a leaf certificate for the SNI plus the server certificate's names is minted, and the
   client's handshake is completed offering only the server's ALPN choice (so both sides
   agree on HTTP/2 or HTTP/1.1);
4. ``tls_established_client`` -- or, when the client refuses our certificate (it does
   not trust the CA, or it pins), ``tls_failed_client`` and one log line.  Nothing is
   remembered about the host: the next connection is intercepted the same way.

A server that cannot be reached does not stop step 3: the client still gets a
certificate (for its SNI) so that the HTTP layer can answer with an error response, or
an addon (the onboarding page) can answer without any server at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import ssl
from typing import TYPE_CHECKING, Any

from gateway.proxy import clienthello
from gateway.proxy.arrival import Address
from gateway.proxy.server_connect import fill_tls_info
from gateway.proxy.streams import BufferedReader
from gateway.proxy.tlsstream import TlsReader, TlsWriter, wrap

if TYPE_CHECKING:
    from gateway.layers.context import LayerContext
    from gateway.proxy.handler import ConnectionHandler

log = logging.getLogger("gateway.tls")

# Protocols the layers above can speak after TLS; other ALPN values are relayed as raw TCP.
HTTP_ALPNS = (b"h2", b"http/1.1", b"http/1.0")
MAX_UPSTREAM_SANS = 100


async def read_client_hello(reader: BufferedReader, timeout: float) -> clienthello.ParsedClientHello | None:
    """The parsed ClientHello, left unconsumed in ``reader``; None if short or malformed."""
    try:
        async with asyncio.timeout(timeout):
            data = reader.buffered()
            while True:
                try:
                    return clienthello.parse(clienthello.reassemble(data))
                except clienthello.NeedMoreData:
                    if len(data) > clienthello.MAX_CLIENT_HELLO:
                        return None
                    more = await reader.peek_more()
                    if len(more) == len(data):
                        return None  # EOF in the middle of the ClientHello
                    data = more
    except (ValueError, TimeoutError):
        return None


@dataclasses.dataclass
class HookContext:
    """``data.context`` of TLS hooks: the connection pair, as mitmproxy's ``Context``."""

    client: Any
    server: Any
    options: Any = None


def make_client_hello(hello: clienthello.ParsedClientHello) -> Any:
    try:
        from gateway.tls import ClientHello
    except ImportError:
        return hello
    try:
        return ClientHello(hello.raw)
    except TypeError:
        return ClientHello(raw_client_hello=hello.raw)


def make_tls_data(conn: Any, client: Any, server: Any, options: Any = None) -> Any:
    context = HookContext(client=client, server=server, options=options)
    try:
        from gateway.tls import TlsData
    except ImportError:
        return _TlsData(conn=conn, context=context)
    return TlsData(conn=conn, context=context)


@dataclasses.dataclass
class _TlsData:
    conn: Any
    context: Any
    ssl_conn: Any = None
    is_dtls: bool = False


@dataclasses.dataclass
class _ClientHelloData:
    context: Any
    client_hello: Any
    ignore_connection: bool = False
    establish_server_tls_first: bool = True


def make_client_hello_data(context: HookContext, hello: clienthello.ParsedClientHello) -> Any:
    ch = make_client_hello(hello)
    try:
        from gateway.tls import ClientHelloData
    except ImportError:
        return _ClientHelloData(context=context, client_hello=ch)
    data = ClientHelloData(context=context, client_hello=ch)
    # We always learn the server's certificate first unless a hook says otherwise.
    if hasattr(data, "establish_server_tls_first"):
        data.establish_server_tls_first = True
    return data


def _server_alpn_offers(client_offers: list[bytes], http2: bool) -> list[bytes]:
    offers = [p for p in client_offers if http2 or p != b"h2"]
    return offers


def _client_alpn_choice(
    client_offers: list[bytes], server: Any | None, server_connected: bool, http2: bool
) -> list[bytes]:
    """What we offer in our (server-side) handshake with the client."""
    if server_connected:
        return [server.alpn] if server.alpn else []
    # No server (unreachable, or not asked): pick what the HTTP layer speaks best.
    for proto in ((b"h2", b"http/1.1") if http2 else (b"http/1.1",)):
        if proto in client_offers:
            return [proto]
    return []


async def intercept(
    handler: ConnectionHandler,
    ctx: LayerContext,
    reader: BufferedReader,
    writer: Any,
    dest: Address,
    hello: clienthello.ParsedClientHello,
) -> tuple[TlsReader, TlsWriter] | None:
    """Terminate the client's TLS; None when passed through or failed (already handled)."""
    from gateway.proxy.handler import _fmt, option

    client = ctx.client
    opts = ctx.options
    client.sni = hello.sni
    client.alpn_offers = list(hello.alpn_protocols)
    client.cipher_list = [f"{c:#06x}" for c in hello.cipher_suites]
    hook_ctx = HookContext(client=client, server=None, options=opts)
    ch_data = make_client_hello_data(hook_ctx, hello)
    await ctx.addons.trigger("tls_clienthello", ch_data)
    if getattr(ch_data, "ignore_connection", False):
        from gateway.layers.tcp import handle_tcp

        await handle_tcp(ctx, reader, writer, dest, passthrough=True)
        return None

    http2 = bool(option(opts, "http2", True))
    server_tls = ctx.extra.get("server_tls", True)
    sni = hello.sni
    server_host = sni or dest[0]
    upstream_names: list[str] = []
    server_connected = False
    onboarding = bool(option(opts, "onboarding", False)) and sni is not None and (
        sni == str(option(opts, "onboarding_host", "")).lower()
    )
    if (
        server_tls
        and not onboarding
        and option(opts, "upstream_cert", True)
        and getattr(ch_data, "establish_server_tls_first", True)
        and ctx.server is None
    ):
        offers = _server_alpn_offers(list(hello.alpn_protocols), http2)
        try:
            ctx.server = await ctx.connect_server(dest, tls=True, sni=server_host, alpn=offers)
            server_connected = True
            hook_ctx.server = ctx.server.server
            certs = getattr(ctx.server.server, "certificate_list", None) or []
            if certs:
                leaf = certs[0]
                upstream_names = [n for n in [leaf.cn, *leaf.altnames] if n][:MAX_UPSTREAM_SANS]
        except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError) as e:
            # Go on: the client still gets a certificate and the HTTP layer a chance to
            # answer (502, or an addon such as the onboarding page).
            # The handshake's own warning (proxy/handler.py) already said why: one line per
            # connection; the HTTP layer answers every request with this error (no retry).
            log.debug("server %s unavailable before the client's TLS handshake: %s", _fmt(dest), e)
            ctx.extra["server_error"] = e
            ctx.extra["server_error_address"] = tuple(dest[:2])
    elif ctx.server is not None:
        server_connected = True
        hook_ctx.server = ctx.server.server

    server_obj = ctx.server.server if ctx.server is not None else None
    alpn_for_client = _client_alpn_choice(
        list(hello.alpn_protocols), server_obj, server_connected and bool(server_obj and server_obj.tls), http2
    )

    cn = sni or _host_for_cert(dest[0], upstream_names)
    # Without SNI the client checks the address it connected to: a destination labelled
    # with a resolved name (handler.LABELLED_MODES) still needs its IP in the certificate.
    ip_dest = ctx.extra.get("destination_ip")
    sans = [n for n in [
        sni,
        dest[0] if _is_ip(dest[0]) and not sni else None,
        ip_dest[0] if ip_dest and not sni else None,
        *upstream_names,
    ] if n]
    try:
        sslctx, cert = ctx.certs.server_context(cn, sans, alpn=alpn_for_client)
    except Exception as e:  # noqa: BLE001 - a broken store must not crash the connection
        log.error("cannot mint a certificate for %s: %s", cn, e)
        return None
    client.mitmcert = cert
    tls_data = make_tls_data(client, client, server_obj, opts)
    await ctx.addons.trigger("tls_start_client", tls_data)

    def started(obj: ssl.SSLObject) -> None:
        tls_data.ssl_conn = obj

    try:
        async with asyncio.timeout(handler.tls_timeout):
            treader, twriter = await wrap(reader, writer, sslctx, server_side=True, on_sslobj=started)
    except (ssl.SSLError, OSError, TimeoutError, asyncio.IncompleteReadError) as e:
        reason = _client_failure_reason(e)
        client.error = f"TLS handshake failed: {reason}"
        log.warning(
            "client %s refused our certificate for %s (%s): the client does not trust the gateway CA "
            "or pins certificates for this host; add it to ignore_hosts to pass it through",
            _fmt(client.peername), sni or dest[0], reason,
        )
        await ctx.addons.trigger("tls_failed_client", tls_data)
        return None
    fill_tls_info(client, twriter)
    await ctx.addons.trigger("tls_established_client", tls_data)
    ctx.extra["client_tls"] = True
    ctx.extra["sni"] = sni
    return treader, twriter


def _client_failure_reason(e: BaseException) -> str:
    if isinstance(e, TimeoutError):
        return "handshake timed out"
    if isinstance(e, ssl.SSLError):
        reason = e.reason or str(e)
        if reason and "ALERT" in reason.upper():
            return f"client sent alert {reason}"
        return reason
    if isinstance(e, asyncio.IncompleteReadError):
        return "client closed the connection during the handshake"
    return str(e) or type(e).__name__


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _host_for_cert(dest_host: str, upstream_names: list[str]) -> str:
    """Without SNI: the server certificate's first name, else the destination itself."""
    if _is_ip(dest_host) and upstream_names:
        return upstream_names[0]
    return dest_host
