"""URL and authority parsing for requests: strict where a wrong answer would mislead
(``parse`` raises on garbage), lenient where the input is a peer's header
(``parse_authority(check=False)``)."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from typing import AnyStr

from gateway.net.server_spec import is_valid_host

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

_AUTHORITY_RE = re.compile(r"^(?P<host>\[[^\]]*\]|[^:]*)(?::(?P<port>\d+))?$")


def default_port(scheme: AnyStr) -> int | None:
    s = scheme.decode("ascii", "replace") if isinstance(scheme, bytes) else scheme
    return DEFAULT_PORTS.get(s.lower())


def hostport(scheme: AnyStr, host: AnyStr, port: int) -> AnyStr:
    """``host`` if ``port`` is the scheme's default, else ``host:port`` (IPv6 bracketed)."""
    if isinstance(host, bytes):
        return hostport(scheme, host.decode("utf-8", "surrogateescape"), port).encode(  # type: ignore
            "utf-8", "surrogateescape"
        )
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if port == default_port(scheme):
        return host
    return f"{host}:{port}"


def parse(url: AnyStr) -> tuple[AnyStr, AnyStr, int, AnyStr]:
    """Split an absolute URL into ``(scheme, host, port, path)``.

    ``path`` includes query and fragment and defaults to ``/``.  Raises ``ValueError`` for
    URLs without scheme or host, with an invalid host or port.
    """
    if isinstance(url, bytes):
        s, h, p, pa = parse(url.decode("utf-8", "surrogateescape"))
        enc = ("utf-8", "surrogateescape")
        return s.encode(*enc), h.encode(*enc), p, pa.encode(*enc)  # type: ignore[return-value]
    try:
        parsed = urllib.parse.urlparse(url)
        port = parsed.port
    except ValueError as e:
        raise ValueError(f"invalid URL {url!r}: {e}") from None
    if not parsed.scheme or not parsed.hostname:
        raise ValueError(f"invalid URL {url!r}: scheme and host are required")
    host = parsed.hostname
    if not is_valid_host(host):
        raise ValueError(f"invalid URL {url!r}: invalid host {host!r}")
    if port is None:
        port = default_port(parsed.scheme)
        if port is None:
            raise ValueError(f"invalid URL {url!r}: no port and no default port for {parsed.scheme!r}")
    # Everything after the authority, unchanged (urlunparse would normalise it).
    rest = url.split("://", 1)[1]
    cut = len(rest)
    for sep in "/?#":
        i = rest.find(sep)
        if i != -1:
            cut = min(cut, i)
    path = rest[cut:]
    if not path.startswith("/"):
        path = "/" + path
    return parsed.scheme.lower(), host, port, path  # type: ignore[return-value]


def unparse(scheme: str, host: str, port: int, path: str = "") -> str:
    if path == "*":
        path = ""
    return f"{scheme}://{hostport(scheme, host, port)}{path}"


def parse_authority(authority: AnyStr, check: bool) -> tuple[str, int | None]:
    """``"example.com:8080"`` -> ``("example.com", 8080)``; ``"[::1]"`` -> ``("::1", None)``.

    With ``check`` a malformed authority raises ``ValueError``; without, the best guess
    (the whole string as host) is returned.
    """
    if isinstance(authority, bytes):
        authority = authority.decode("utf-8", "surrogateescape")
    m = _AUTHORITY_RE.match(authority)
    if m:
        host = m.group("host")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        port = int(m.group("port")) if m.group("port") else None
        try:
            host = host.encode("idna").decode("ascii").lower() if host.isascii() else host
        except UnicodeError:
            pass
        if not check or (is_valid_host(host) and (port is None or 0 < port <= 65535)):
            return host, port
    if check:
        raise ValueError(f"invalid authority: {authority!r}")
    return authority.lower(), None


def encode(s: Sequence[tuple[str, str]], similar_to: str | None = None) -> str:
    """URL-encode pairs; keys without value (``?flag``) stay bare if ``similar_to`` has them."""
    bare_keys = similar_to is not None and any("=" not in p for p in similar_to.split("&") if p)
    parts = []
    for key, value in s:
        k = urllib.parse.quote_plus(key, errors="surrogateescape")
        if bare_keys and value == "":
            parts.append(k)
        else:
            parts.append(f"{k}={urllib.parse.quote_plus(value, errors='surrogateescape')}")
    return "&".join(parts)


def decode(s: str) -> list[tuple[str, str]]:
    """Decode a query string or urlencoded body into pairs (blank values kept)."""
    return urllib.parse.parse_qsl(s, keep_blank_values=True, errors="surrogateescape")


def quote(b: str, safe: str = "/") -> str:
    return urllib.parse.quote(b, safe=safe, errors="surrogateescape")


def unquote(s: str) -> str:
    return urllib.parse.unquote(s, errors="surrogateescape")
