"""Opening connections to servers: directly, or tunnelled through an upstream proxy; with
TLS (verified by default) or without; never back into our own listeners.

Layers reach this only through ``LayerContext.connect_server`` so that the same layer
code works in every mode (DESIGN.md, seam 4).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import socket
import ssl
import time
from collections.abc import Iterable
from typing import Any

from gateway.certs import Cert
from gateway.proxy import tlsstream
from gateway.proxy.arrival import Address
from gateway.proxy.streams import PeekableReader

log = logging.getLogger("gateway.proxy.server")

CONNECT_TIMEOUT = 15.0
import _ssl  # noqa: E402  (3.11 exposes the chain only through _ssl.Certificate)

_ENCODING_DER = _ssl.ENCODING_DER
TLS_TIMEOUT = 20.0


class LoopRefused(ConnectionRefusedError):
    """The destination is one of our own listening addresses."""


class UpstreamProxyError(ConnectionRefusedError):
    """The upstream proxy refused the CONNECT (its status line is the message)."""


class ServerTlsError(ssl.SSLError):
    """The TLS handshake with a server failed (verification, protocol, timeout)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "TLS handshake with the server failed"


class ListenAddresses:
    """The addresses our modes listen on, for loop detection."""

    def __init__(self) -> None:
        self._addrs: set[tuple[str, int]] = set()

    def add(self, addr: Address) -> None:
        self._addrs.add((_norm_ip(addr[0]), int(addr[1])))

    def discard(self, addr: Address) -> None:
        self._addrs.discard((_norm_ip(addr[0]), int(addr[1])))

    def __iter__(self):
        return iter(self._addrs)

    def contains(self, ip: str, port: int) -> bool:
        ip = _norm_ip(ip)
        for host, lport in self._addrs:
            if lport != port:
                continue
            if host == ip:
                return True
            if host in ("0.0.0.0", "::", "") and _is_local(ip):
                return True
            if _is_loopback(host) and _is_loopback(ip):
                # 127.0.0.1 and 127.0.0.2 are the same host; ::1 and 127.0.0.1 are not
                # the same socket, but connecting to either is still connecting to us
                # when both listen -- be conservative only within the same family.
                if ipaddress.ip_address(host).version == ipaddress.ip_address(ip).version:
                    return host == ip or ipaddress.ip_address(host).version == 4
        return False


def _norm_ip(host: str) -> str:
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_local(ip: str) -> bool:
    """An address of this host: loopback, or one we can bind to."""
    if _is_loopback(ip):
        return True
    try:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((ip, 0))
        return True
    except OSError:
        return False


class ServerContexts:
    """Client-side ``SSLContext`` objects for talking to servers, cached per settings."""

    def __init__(self) -> None:
        self._cache: dict[tuple, ssl.SSLContext] = {}

    def get(self, *, insecure: bool, alpn: Iterable[bytes] | None, cafile: str | None) -> ssl.SSLContext:
        alpn_t = tuple(alpn or ())
        key = (insecure, alpn_t, cafile)
        ctx = self._cache.get(key)
        if ctx is not None:
            return ctx
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.check_hostname = True
            if cafile:
                ctx.load_verify_locations(cafile=cafile)
            else:
                ctx.load_default_certs()
                try:
                    import certifi

                    ctx.load_verify_locations(cafile=certifi.where())
                except ImportError:
                    pass
        if alpn_t:
            ctx.set_alpn_protocols([p.decode("latin-1") for p in alpn_t])
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = ctx
        return ctx


async def resolve(host: str, port: int) -> list[tuple[int, str]]:
    """(family, ip) candidates for ``host``; an IP literal resolves to itself."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
        return [(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, str(ip))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[tuple[int, str]] = []
    for family, _, _, _, sockaddr in infos:
        cand = (family, str(sockaddr[0]))
        if cand not in out:
            out.append(cand)
    return out


async def open_tcp(
    host: str, port: int, listen: ListenAddresses | None, timeout: float = CONNECT_TIMEOUT
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to ``host:port`` (each resolved address in turn), refusing our own listeners."""
    async with asyncio.timeout(timeout):
        candidates = await resolve(host, port)
        if not candidates:
            raise OSError(f"{host}: no address")
        if listen is not None:
            for _, ip in candidates:
                if listen.contains(ip, port):
                    raise LoopRefused(f"refusing to connect to {host}:{port}: that is the gateway's own listening address")
        last: BaseException | None = None
        for _, ip in candidates:
            try:
                return await asyncio.open_connection(ip, port)
            except OSError as e:
                last = e
        assert last is not None
        raise last


def parse_upstream_proxy(spec: str) -> tuple[str, Address]:
    """``upstream_proxy`` -> (scheme, (host, port)); ``http://h:p``, ``https://h:p`` or
    the same with mode syntax (``upstream:http://h:p``).  ``ValueError`` if it is neither."""
    from gateway.net.server_spec import parse

    text = spec.strip()
    if text.startswith("upstream:"):
        text = text[len("upstream:"):]
    scheme, address = parse(text, "http")
    if scheme not in ("http", "https"):
        raise ValueError(f"an upstream proxy is http:// or https://, not {scheme}://")
    return scheme, (address[0], int(address[1]))


async def http_connect_tunnel(
    reader: Any, writer: Any, host: str, port: int, auth: str | None
) -> None:
    """Ask an HTTP proxy for a CONNECT tunnel; raises ``UpstreamProxyError`` unless it says 2xx."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    head = f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n"
    if auth:
        head += f"Proxy-Authorization: Basic {base64.b64encode(auth.encode()).decode()}\r\n"
    writer.write((head + "\r\n").encode("idna" if not head.isascii() else "ascii"))
    await writer.drain()
    try:
        response = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        raise UpstreamProxyError("upstream proxy closed the connection during CONNECT") from e
    except asyncio.LimitOverrunError as e:
        raise UpstreamProxyError("upstream proxy sent an oversized CONNECT response") from e
    status_line = response.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit() or not 200 <= int(parts[1]) < 300:
        raise UpstreamProxyError(f"upstream proxy refused CONNECT {authority}: {status_line}")


def fill_tls_info(conn: Any, tls_writer: tlsstream.TlsWriter) -> None:
    """Copy the negotiated TLS parameters onto a Client or Server."""
    obj = tls_writer.conn.sslobj
    conn.tls = True
    alpn = obj.selected_alpn_protocol()
    conn.alpn = alpn.encode() if alpn else None
    cipher = obj.cipher()
    conn.cipher = cipher[0] if cipher else None
    conn.tls_version = obj.version()
    conn.timestamp_tls_setup = time.time()


def peer_certificates(tls_writer: tlsstream.TlsWriter) -> list[Cert]:
    """The server's chain, leaf first (Python 3.11 exposes it only on the private object)."""
    obj = tls_writer.conn.sslobj
    chain: list[Cert] = []
    inner = getattr(obj, "_sslobj", obj)
    for name in ("get_verified_chain", "get_unverified_chain"):
        getter = getattr(inner, name, None)
        if getter is None:
            continue
        try:
            items = getter() or []
        except (ssl.SSLError, ValueError):
            continue
        for item in items:
            der = item if isinstance(item, bytes) else item.public_bytes(_ENCODING_DER)
            try:
                chain.append(Cert.from_der(der))
            except ValueError:
                break
        if chain:
            return chain
    der = obj.getpeercert(binary_form=True)
    if der:
        try:
            chain.append(Cert.from_der(der))
        except ValueError:
            pass
    return chain


def wrap_reader(reader: Any) -> PeekableReader:
    return reader if isinstance(reader, PeekableReader) else PeekableReader(reader)
