"""SOCKS5 (RFC 1928) with username/password authentication (RFC 1929), CONNECT only.

The handshake is answered before the server is contacted (as mitmproxy does): the
client then speaks its protocol into the tunnel and the connection handler treats it
like any connection with a known destination (TLS interception, HTTP, raw TCP...).
A client that fails authentication, asks for BIND or UDP ASSOCIATE, or speaks
something else gets the SOCKS error reply the RFC prescribes and is closed.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from typing import Any

from gateway.proxy.arrival import Address

log = logging.getLogger("gateway.modes.socks5")

VERSION = 5
METHOD_NO_AUTH = 0x00
METHOD_USERPASS = 0x02
METHOD_NONE_ACCEPTABLE = 0xFF
CMD_CONNECT = 1
ATYP_IPV4 = 1
ATYP_DOMAIN = 3
ATYP_IPV6 = 4
REP_SUCCEEDED = 0
REP_GENERAL_FAILURE = 1
REP_COMMAND_NOT_SUPPORTED = 7
REP_ATYP_NOT_SUPPORTED = 8
HANDSHAKE_TIMEOUT = 30.0


class Socks5Error(Exception):
    """The client broke the protocol; the reply (if any) has been sent."""


def reply(rep: int) -> bytes:
    return bytes([VERSION, rep, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0])


def check_credentials(proxyauth: str | None, user: str, password: str) -> bool:
    """``proxyauth`` is ``user:pass`` or ``any``."""
    if not proxyauth:
        return True
    if proxyauth == "any":
        return True
    want_user, _, want_pass = proxyauth.partition(":")
    return hmac.compare_digest(user.encode(), want_user.encode()) & hmac.compare_digest(
        password.encode(), want_pass.encode()
    )


async def handshake(reader: Any, writer: Any, proxyauth: str | None) -> Address:
    """Run the SOCKS5 handshake; the requested destination, or ``Socks5Error``."""
    async with asyncio.timeout(HANDSHAKE_TIMEOUT):
        try:
            return await _handshake(reader, writer, proxyauth)
        except asyncio.IncompleteReadError as e:
            raise Socks5Error("client closed during the SOCKS5 handshake") from e


async def _handshake(reader: Any, writer: Any, proxyauth: str | None) -> Address:
    ver, nmethods = await reader.readexactly(2)
    if ver != VERSION:
        if ver in b"GPCHODT":  # an HTTP method's first letter: a client set the wrong proxy type
            writer.write(
                b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n"
                b"This is a SOCKS5 proxy, not an HTTP proxy.\n"
            )
        raise Socks5Error(f"not SOCKS5 (version byte {ver:#04x})")
    methods = await reader.readexactly(nmethods)
    wanted = METHOD_USERPASS if proxyauth else METHOD_NO_AUTH
    if wanted not in methods:
        writer.write(bytes([VERSION, METHOD_NONE_ACCEPTABLE]))
        raise Socks5Error("no acceptable authentication method offered" + (" (credentials required)" if proxyauth else ""))
    writer.write(bytes([VERSION, wanted]))
    await writer.drain()
    if wanted == METHOD_USERPASS:
        authver, ulen = await reader.readexactly(2)
        user = await reader.readexactly(ulen)
        (plen,) = await reader.readexactly(1)
        password = await reader.readexactly(plen)
        ok = authver == 1 and check_credentials(
            proxyauth, user.decode("utf-8", "replace"), password.decode("utf-8", "replace")
        )
        writer.write(bytes([1, 0 if ok else 1]))
        await writer.drain()
        if not ok:
            raise Socks5Error(f"authentication failed for user {user.decode('utf-8', 'replace')!r}")
    ver, cmd, _rsv, atyp = await reader.readexactly(4)
    if ver != VERSION:
        raise Socks5Error(f"bad version {ver} in request")
    if atyp == ATYP_IPV4:
        host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
    elif atyp == ATYP_IPV6:
        host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
    elif atyp == ATYP_DOMAIN:
        (n,) = await reader.readexactly(1)
        raw = await reader.readexactly(n)
        try:
            host = raw.decode("idna")
        except UnicodeError:
            writer.write(reply(REP_GENERAL_FAILURE))
            raise Socks5Error(f"bad host name {raw!r}") from None
    else:
        writer.write(reply(REP_ATYP_NOT_SUPPORTED))
        raise Socks5Error(f"unknown address type {atyp}")
    port = int.from_bytes(await reader.readexactly(2), "big")
    if cmd != CMD_CONNECT:
        writer.write(reply(REP_COMMAND_NOT_SUPPORTED))
        raise Socks5Error(f"unsupported command {cmd} (only CONNECT)")
    writer.write(reply(REP_SUCCEEDED))
    await writer.drain()
    return host, port
