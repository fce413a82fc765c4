"""How a message is framed when we write it, and which header fields cross between
HTTP/1 and HTTP/2.

A buffered message may have been changed by addons, so its length is recomputed; a
streamed one keeps the framing it arrived with when the target speaks the same protocol,
and falls back to chunked (or close-delimited for HTTP/1.0 peers) when its length is
unknown, e.g. an HTTP/2 request without content-length going to an HTTP/1 server.
"""

from __future__ import annotations

from enum import Enum

from gateway.layers.http.http1_parse import Fields

CONNECTION_SPECIFIC = {
    b"connection",
    b"keep-alive",
    b"proxy-connection",
    b"transfer-encoding",
    b"upgrade",
    b"te",
}
HOP_BY_HOP_TO_SERVER = {b"proxy-connection"}
"""Proxy-Authorization is removed by the proxyauth addon once checked (and set again by
upstream_auth for an upstream proxy), so it is not dropped here."""


class Framing(Enum):
    NONE = 0  # no body bytes at all
    LENGTH = 1
    CHUNKED = 2
    CLOSE = 3


def get(fields: Fields, name: bytes) -> bytes | None:
    name = name.lower()
    for k, v in fields:
        if k.lower() == name:
            return v
    return None


def without(fields: Fields, names: set[bytes]) -> Fields:
    return [(k, v) for k, v in fields if k.lower() not in names]


def is_chunked(fields: Fields) -> bool:
    te = b",".join(v for k, v in fields if k.lower() == b"transfer-encoding")
    return te.lower().rstrip().endswith(b"chunked")


def connection_tokens(fields: Fields) -> set[bytes]:
    return {
        t.strip().lower() for k, v in fields if k.lower() == b"connection" for t in v.split(b",") if t.strip()
    }


def wants_keepalive(http_version: bytes, fields: Fields) -> bool:
    tokens = connection_tokens(fields)
    if b"close" in tokens:
        return False
    if http_version == b"HTTP/1.0":
        return b"keep-alive" in tokens
    return True


def buffered_framing(
    fields: Fields, body: bytes, trailers: Fields | None, *, no_body: bool, peer_http11: bool, is_request: bool
) -> tuple[Fields, Framing]:
    """Framing for a message whose body we hold in full."""
    if no_body:
        return fields, Framing.NONE
    if is_chunked(fields) and peer_http11:
        return without(fields, {b"content-length"}), Framing.CHUNKED
    if trailers and peer_http11:
        f = without(fields, {b"content-length", b"transfer-encoding"})
        return f + [(b"transfer-encoding", b"chunked")], Framing.CHUNKED
    f = without(fields, {b"transfer-encoding", b"content-length"})
    if body or not is_request or get(fields, b"content-length") is not None:
        f = _set_length(f, fields, len(body))
    return f, Framing.LENGTH


def _set_length(new: Fields, original: Fields, n: int) -> Fields:
    """Put Content-Length back where it was (keeping its case), or at the end."""
    value = str(n).encode()
    for i, (k, _) in enumerate(original):
        if k.lower() == b"content-length":
            pos = min(i, len(new))
            return new[:pos] + [(k, value)] + new[pos:]
    return new + [(b"content-length", value)]


def streamed_framing(fields: Fields, *, no_body: bool, peer_http11: bool, is_request: bool) -> tuple[Fields, Framing]:
    """Framing for a message whose body we pass through without knowing its final size."""
    if no_body:
        return fields, Framing.NONE
    if is_chunked(fields):
        if peer_http11:
            return without(fields, {b"content-length"}), Framing.CHUNKED
        return without(fields, {b"content-length", b"transfer-encoding"}), Framing.CLOSE
    if get(fields, b"content-length") is not None and get(fields, b"transfer-encoding") is None:
        return fields, Framing.LENGTH
    f = without(fields, {b"transfer-encoding"})
    if peer_http11:
        return f + [(b"transfer-encoding", b"chunked")], Framing.CHUNKED
    return f, Framing.CLOSE


def h1_to_h2_fields(fields: Fields) -> Fields:
    """Header fields of an HTTP/1 message as HTTP/2 needs them: lowercase, no
    connection-specific fields (RFC 9113 section 8.2.2), ``te`` only as trailers."""
    drop = CONNECTION_SPECIFIC | connection_tokens(fields) | {b"host"}
    out: Fields = []
    for k, v in fields:
        lk = k.lower()
        if lk in drop:
            if lk == b"te" and v.strip().lower() == b"trailers":
                out.append((lk, b"trailers"))
            continue
        out.append((lk, v))
    return out
