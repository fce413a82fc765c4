"""Server specifications as written on the command line: ``[scheme://]host[:port][/]``.

Used by the upstream and reverse modes (``upstream:http://proxy:3128``,
``reverse:https://example.com``).  Parsing is strict: a bad spec is a ``ValueError``
naming what is wrong, so the CLI can print it as a one-line error.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Literal, NamedTuple

Scheme = Literal["http", "https", "http3", "tls", "dtls", "tcp", "udp", "dns", "quic"]
SCHEMES: tuple[str, ...] = ("http", "https", "http3", "tls", "dtls", "tcp", "udp", "dns", "quic")
DEFAULT_PORTS: dict[str, int] = {
    "http": 80,
    "https": 443,
    "http3": 443,
    "quic": 443,
    "tls": 443,
    "dtls": 443,
    "dns": 53,
}

_SPEC_RE = re.compile(
    r"""
    ^
    (?:(?P<scheme>[A-Za-z][\w+.-]*)://)?   # optional scheme
    (?P<host>\[[^\]]+\]|[^:/\[\]]+)         # DNS name, IPv4, or [IPv6]
    (?::(?P<port>\d+))?                     # optional port
    /?                                      # a trailing slash, but no path
    $
    """,
    re.VERBOSE,
)
_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


class ServerSpec(NamedTuple):
    scheme: Scheme
    address: tuple[str, int]


def is_valid_host(host: str) -> bool:
    """An IP address, or a DNS name made of valid labels (IDNA allowed)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    if not ascii_host or len(ascii_host) > 253:
        return False
    return all(_HOSTNAME_LABEL.match(label) for label in ascii_host.rstrip(".").split("."))


@functools.lru_cache(maxsize=256)
def parse(server_spec: str, default_scheme: str = "http") -> ServerSpec:
    """Parse e.g. ``http://example.com/``, ``example.org``, ``example.com:443``, ``[::1]:8080``.

    Raises ``ValueError`` if the spec is invalid.
    """
    m = _SPEC_RE.match(server_spec)
    if not m:
        raise ValueError(f"Invalid server specification: {server_spec!r}")
    scheme = (m.group("scheme") or default_scheme).lower()
    if scheme not in SCHEMES:
        raise ValueError(f"Invalid server scheme: {scheme!r} (expected one of {', '.join(SCHEMES)})")
    host = m.group("host")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            raise ValueError(f"Invalid IPv6 address: {host!r}") from None
    elif not is_valid_host(host):
        raise ValueError(f"Invalid hostname: {host!r}")
    if m.group("port"):
        port = int(m.group("port"))
    elif scheme in DEFAULT_PORTS:
        port = DEFAULT_PORTS[scheme]
    else:
        raise ValueError(f"Port specification missing: {server_spec!r} ({scheme} has no default port)")
    if not 0 < port <= 65535:
        raise ValueError(f"Invalid port: {port}")
    return ServerSpec(scheme, (host, port))  # type: ignore[arg-type]
