"""Socket addresses as people write them, for log lines and the live flow output.

A dual-stack socket reports an IPv4 phone as ``('::ffff:10.99.1.2', 54767, 0, 0)``;
printing that tuple (as the WireGuard drop line and the DNS layer did) hides the address
a user would search for.  IPv4-mapped addresses are shown as the IPv4 address.
"""

from __future__ import annotations

import ipaddress
from typing import Any


def format_address(address: Any) -> str:
    """``10.99.1.2:54767``, ``[2001:db8::1]:53``; ``?`` for none, ``str()`` for anything
    that is not a (host, port, ...) tuple, so a log line never raises."""
    if not address:
        return "?"
    if not isinstance(address, tuple | list) or len(address) < 2:
        return str(address)
    host, port = str(address[0]), address[1]
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return f"{host}:{port}"  # a host name
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return f"{ip.ipv4_mapped}:{port}"
    return f"[{host}]:{port}" if ip.version == 6 else f"{host}:{port}"
