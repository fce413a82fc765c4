"""Cookie and Set-Cookie header parsing (RFC 6265), lossless for round trips.

Values are kept verbatim (quotes included) so that reading and writing back an
untouched cookie reproduces the header byte for byte.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable, Sequence

from gateway.coretypes.multidict import MultiDict


class CookieAttrs(MultiDict[str, str | None]):
    """Set-Cookie attributes (``Path``, ``Secure``...): names case-insensitive, last one wins.

    Flag attributes such as ``Secure`` and ``HttpOnly`` have the value None.
    """

    __slots__ = ()

    @staticmethod
    def _kconv(key: str) -> str:
        return key.lower()

    @staticmethod
    def _reduce_values(values: list[str | None]) -> str | None:
        return values[-1]


def _pairs(line: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for part in line.split(";"):
        if not part.strip():
            continue
        name, eq, value = part.partition("=")
        out.append((name.strip(), value.strip() if eq else None))
    return out


def parse_cookie_header(line: str) -> list[tuple[str, str]]:
    """``"a=1; b=2"`` -> ``[("a", "1"), ("b", "2")]``."""
    return [(name, value if value is not None else "") for name, value in _pairs(line)]


def parse_cookie_headers(cookie_headers: Iterable[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for header in cookie_headers:
        pairs.extend(parse_cookie_header(header))
    return pairs


def format_cookie_header(pairs: Iterable[Sequence[str]]) -> str:
    return "; ".join(f"{name}={value}" for name, value in pairs)


def parse_set_cookie_header(line: str) -> tuple[str, str, CookieAttrs] | None:
    """``"id=a3f; Path=/; Secure"`` -> ``("id", "a3f", CookieAttrs[("Path", "/"), ("Secure", None)])``.

    None if the header holds no cookie.
    """
    pairs = _pairs(line)
    if not pairs:
        return None
    name, value = pairs[0]
    if value is None:
        # RFC 6265 5.2: a nameless cookie; browsers store it with an empty name.
        name, value = "", name
    return name, value, CookieAttrs(pairs[1:])


def parse_set_cookie_headers(headers: Iterable[str]) -> list[tuple[str, str, CookieAttrs]]:
    out = []
    for header in headers:
        cookie = parse_set_cookie_header(header)
        if cookie is not None:
            out.append(cookie)
    return out


def format_set_cookie_header(name: str, value: str, attrs: Iterable[tuple[str, str | None]] = ()) -> str:
    parts = [f"{name}={value}" if name else value]
    for key, val in (attrs.fields if isinstance(attrs, MultiDict) else attrs):
        parts.append(key if val is None else f"{key}={val}")
    return "; ".join(parts)


def get_expiration_ts(attrs: CookieAttrs, now: float | None = None) -> float | None:
    """When the cookie expires (Max-Age wins over Expires), or None for a session cookie."""
    now = time.time() if now is None else now
    max_age = attrs.get("max-age")
    if max_age is not None:
        try:
            return now + int(max_age)
        except ValueError:
            pass
    expires = attrs.get("expires")
    if expires:
        try:
            return email.utils.parsedate_to_datetime(expires).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return None


def is_expired(attrs: CookieAttrs, now: float | None = None) -> bool:
    ts = get_expiration_ts(attrs, now)
    now = time.time() if now is None else now
    return ts is not None and ts <= now
