"""From an HTTP/1 request head to a ``Request``: the request-target forms (RFC 9112
section 3.2) and where each mode says an origin-form request goes."""

from __future__ import annotations

import time
from typing import Any

from gateway.layers.context import LayerContext
from gateway.layers.http.http1_parse import RequestHead
from gateway.layers.http.mode_target import DEFAULT_PORTS, ModeTarget


class RequestTargetError(ValueError):
    """A request-target that does not fit the mode (answered with 400)."""


def parse_authority(authority: bytes, default_port: int | None) -> tuple[str, int]:
    try:
        text = authority.decode("idna") if authority else ""
    except UnicodeError:
        text = authority.decode("latin-1")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_s = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_s = text.partition(":")
    else:
        host, port_s = text, ""
    if not host:
        raise RequestTargetError(f"invalid authority: {authority[:80]!r}")
    if port_s:
        if not port_s.isdigit() or not 0 < int(port_s) < 65536:
            raise RequestTargetError(f"invalid port in authority: {authority[:80]!r}")
        return host, int(port_s)
    if default_port is None:
        raise RequestTargetError(f"authority without port: {authority[:80]!r}")
    return host, default_port


def _absolute(target: bytes) -> tuple[bytes, bytes, bytes] | None:
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https", b"ws", b"wss"):
        return None
    slash = rest.find(b"/")
    query = rest.find(b"?")
    cut = min(i for i in (slash, query, len(rest)) if i != -1)
    authority, path = rest[:cut], rest[cut:]
    if b"@" in authority:
        raise RequestTargetError("userinfo in request-target")
    if not path.startswith(b"/"):
        path = b"/" + path
    return scheme.lower(), authority, path


def build_request(
    ctx: LayerContext, head: RequestHead, mode: ModeTarget, *, proxy_form: bool, client_tls: bool
) -> Any:
    from gateway.http import Headers, Request

    method, target = head.method, head.target
    if method.upper() == b"CONNECT":
        host, port = parse_authority(target, None)
        scheme, authority, path = b"", target, b""
    elif (absolute := _absolute(target)) is not None:
        scheme, authority, path = absolute
        host, port = parse_authority(authority, DEFAULT_PORTS[scheme.decode()])
        if scheme == b"ws":
            scheme = b"http"
        elif scheme == b"wss":
            scheme = b"https"
    elif proxy_form:
        raise RequestTargetError(
            "Invalid HTTP request form (expected: absolute, got: relative): this is a proxy"
        )
    elif target.startswith(b"/") or target == b"*":
        authority, path = b"", target
        if mode.name == "reverse" and mode.address is not None:
            scheme = (mode.scheme or "http").encode()
            if scheme in (b"tls", b"wss"):
                scheme = b"https"
            elif scheme == b"ws":
                scheme = b"http"
            host, port = mode.address
        else:
            dest = ctx.arrival.destination
            if dest is None and ctx.server is not None:
                dest = tuple(ctx.server.server.address[:2])
            if dest is None:
                raise RequestTargetError("origin-form request, but where it goes is unknown")
            host, port = dest
            scheme = b"https" if client_tls else b"http"
    else:
        raise RequestTargetError(f"invalid request-target: {target[:80]!r}")
    now = time.time()
    request = Request(
        host, port, method, scheme, authority, path, head.http_version,
        Headers(head.fields), None, None, now, None,
    )
    if mode.name == "reverse" and mode.address is not None and not getattr(ctx.options, "keep_host_header", False):
        # As a reverse proxy we are the origin to the client: the server expects its own
        # name in Host (virtual hosting, redirects), not ours.
        default = DEFAULT_PORTS.get(scheme.decode(), 0)
        request.host_header = host if port == default else f"{host}:{port}"
    return request
