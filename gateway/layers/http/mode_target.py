"""What the proxy mode means for an HTTP request: which request forms it accepts and where
the request goes.

Read from the mode spec string in ``Arrival.mode`` (mitmproxy's grammar
``mode[:data][@[host:]port]``).  ``gateway.proxy.mode_specs`` is the public parser; this
module only needs the name and the data part, and parses them itself so the HTTP layer
does not break while that module changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.proxy.arrival import Address

_SPEC = re.compile(r"^(?P<name>[a-z0-9_]+)(?::(?P<data>.*?))?(?:@(?:(?P<host>[^@]*):)?(?P<port>\d+))?$")

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class ModeTarget:
    name: str
    """``regular``, ``upstream``, ``reverse``, ``transparent``, ``wireguard``, ..."""
    scheme: str | None = None
    """Scheme of the upstream proxy (upstream mode) or the reverse target."""
    address: Address | None = None
    """The upstream proxy (upstream mode) or the reverse target."""

    @property
    def proxy_form(self) -> bool:
        """Modes where clients address us as a proxy (absolute-form requests, CONNECT)."""
        return self.name in ("regular", "upstream")


def parse_mode(spec: str) -> ModeTarget:
    m = _SPEC.match(spec.strip())
    if not m:
        return ModeTarget(spec.split(":", 1)[0] or "regular")
    name, data = m.group("name"), m.group("data")
    if name in ("upstream", "reverse") and data:
        if "://" not in data:
            data = ("http://" if name == "upstream" else "https://") + data
        url = urlsplit(data)
        scheme = url.scheme or "http"
        host = url.hostname or ""
        port = url.port or DEFAULT_PORTS.get(scheme, 80)
        return ModeTarget(name, scheme, (host, port))
    return ModeTarget(name)
