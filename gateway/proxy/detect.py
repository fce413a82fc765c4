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

_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_METHOD = 24
MAX_REQUEST_LINE = 16 * 1024
"""A first line longer than this without its end is not an HTTP request we would parse."""

# RFC 9112 3: request-line = method SP request-target SP HTTP-version CRLF, the target
# visible ASCII.  Only a complete, well-formed line counts: a raw protocol that happens to
# begin with "GET " (the lab's bulk server speaks "GET n\n") must not be handed to the
# HTTP layer.  Methods are tokens; we take the registered ones' shape (upper case letters,
# "-" and "_"), so that a raw client's first bytes ("SSH-2.0-...", digits, lower case)
# are told apart at once instead of after waiting for the end of their line.
_METHOD = rb"[A-Z][A-Z_-]{0,%d}" % (MAX_METHOD - 1)
_REQUEST_LINE = re.compile(_METHOD + rb" [\x21-\x7e]+ HTTP/1\.[0-9]\r\n")
_METHOD_PREFIX = re.compile(_METHOD + rb"\Z")
_TARGET_PREFIX = re.compile(_METHOD + rb" [\x21-\x7e]*\Z")
_VERSION = b"HTTP/1.0\r"


class Protocol(Enum):
    TLS = "tls"
    HTTP = "http"
    RAW = "raw"
    UNDECIDED = "undecided"


def classify(data: bytes) -> Protocol:
    """TLS, HTTP or RAW; UNDECIDED while more bytes could still make it TLS or HTTP.

    HTTP means the HTTP/2 connection preface or a complete, well-formed HTTP/1 request
    line; a first line that is still coming (no CRLF yet) is UNDECIDED as long as it
    could become one and stays under ``MAX_REQUEST_LINE``.
    """
    if not data:
        return Protocol.UNDECIDED
    if clienthello.looks_like_tls(data):
        return Protocol.TLS
    if len(data) < 3 and data[0] == 0x16 and data[1:2] in (b"", b"\x03"):
        return Protocol.UNDECIDED  # a TLS record header on its way
    if data.startswith(_H2_PREFACE):
        return Protocol.HTTP
    if _H2_PREFACE.startswith(data):
        return Protocol.UNDECIDED
    end = data.find(b"\n", 0, MAX_REQUEST_LINE)
    if end >= 0:
        return Protocol.HTTP if _REQUEST_LINE.fullmatch(data, 0, end + 1) else Protocol.RAW
    if len(data) >= MAX_REQUEST_LINE:
        return Protocol.RAW
    return Protocol.UNDECIDED if _could_be_request_line(data) else Protocol.RAW


def _could_be_request_line(head: bytes) -> bool:
    """Is ``head`` (no LF yet) a prefix of some well-formed request line?"""
    if _METHOD_PREFIX.match(head):
        return True
    if _TARGET_PREFIX.match(head):
        return True
    first = head.find(b" ")
    second = head.find(b" ", first + 1)
    if first < 0 or second < 0 or not _TARGET_PREFIX.match(head, 0, second):
        return False
    version = head[second + 1:]
    return version[:7] == _VERSION[: len(version[:7])] and (
        len(version) <= 7 or (version[7:8].isdigit() and version[8:] in (b"", b"\r"))
    )


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
