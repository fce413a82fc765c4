"""Which protocol a client speaks, from its first bytes, and the host-matching options.

The choice is made on peeked bytes (nothing consumed), so the chosen layer sees the
connection from its first byte.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from enum import Enum
from functools import lru_cache

from gateway.proxy import clienthello

_HTTP_METHODS = (
    b"GET", b"POST", b"PUT", b"HEAD", b"DELETE", b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE",
    b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"REPORT",
    b"SEARCH", b"PURGE",
)
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
LONGEST_PREFIX = max(len(m) for m in _HTTP_METHODS) + 1


class Protocol(Enum):
    TLS = "tls"
    HTTP = "http"
    RAW = "raw"
    UNDECIDED = "undecided"


def classify(data: bytes) -> Protocol:
    """TLS, HTTP or RAW; UNDECIDED while ``data`` is a strict prefix of an HTTP start."""
    if not data:
        return Protocol.UNDECIDED
    if clienthello.looks_like_tls(data):
        return Protocol.TLS
    if len(data) < 3 and data[0] == 0x16:
        return Protocol.UNDECIDED
    head = data[:LONGEST_PREFIX]
    for m in (*_HTTP_METHODS, b"PRI"):
        word = m + b" "
        if head.startswith(word):
            if m == b"PRI":
                return Protocol.HTTP if _H2_PREFACE.startswith(data[: len(_H2_PREFACE)]) else Protocol.RAW
            return Protocol.HTTP
        if word.startswith(head):
            return Protocol.UNDECIDED
    return Protocol.RAW


@lru_cache(maxsize=64)
def _compile(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


def host_matches(patterns: Sequence[str] | None, *candidates: str | tuple[str, int] | None) -> bool:
    """mitmproxy's host matching: a regex search on ``host:port`` and on bare names (SNI)."""
    if not patterns:
        return False
    regexes = _compile(tuple(patterns))
    for cand in _expand(candidates):
        if any(r.search(cand) for r in regexes):
            return True
    return False


def _expand(candidates: Iterable[str | tuple[str, int] | None]) -> Iterable[str]:
    for c in candidates:
        if c is None:
            continue
        if isinstance(c, tuple):
            host, port = c[0], c[1]
            yield f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            yield f"{host}:{port}"
        else:
            yield c


def should_ignore(
    ignore_hosts: Sequence[str] | None,
    allow_hosts: Sequence[str] | None,
    *candidates: str | tuple[str, int] | None,
) -> bool:
    """Pass through untouched?  ``allow_hosts`` wins when both are set (mitmproxy refuses both)."""
    if allow_hosts:
        return not host_matches(allow_hosts, *candidates)
    return host_matches(ignore_hosts, *candidates)
