"""Export flows: a request as a curl command, raw HTTP/1 messages, and HAR 1.2 archives.

The curl command replays the request as it was sent: the same method, URL, headers
(except those curl computes itself) and the body bytes as received, so a compressed body
keeps its Content-Encoding. A body that cannot travel in an argument (NUL bytes, or bytes
that are not UTF-8) is piped in with ``printf``, which any POSIX shell runs.
"""

from __future__ import annotations

import base64
import datetime
import json
import shlex
from collections.abc import Iterable
from typing import IO, Any

from gateway.version import VERSION

__all__ = ["curl_command", "raw_request", "raw_response", "raw", "har", "har_entry", "write_har", "formats",
           "bodies_not_recorded"]

# Headers curl derives from its own arguments: sending ours as well would duplicate or
# contradict them.
_CURL_COMPUTED = {"content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade", "http2-settings"}


def _http_request(f: Any) -> Any:
    request = getattr(f, "request", None)
    if getattr(f, "type", None) != "http" or request is None:
        raise ValueError("only HTTP flows with a request can be exported this way")
    return request


def _text_or_none(data: bytes) -> str | None:
    """``data`` as text if it can be an argument as is (UTF-8, no NUL), else None."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _printf_literal(data: bytes) -> str:
    """A printf format string that prints exactly ``data`` (octal escapes for the rest)."""
    out = []
    for b in data:
        c = chr(b)
        if c == "%":
            out.append("%%")
        elif c == "\\":
            out.append("\\\\")
        elif 32 <= b < 127 and c != "'":
            out.append(c)
        else:
            out.append(f"\\{b:03o}")
    return "".join(out)


def _announced_size(message: Any) -> int | None:
    """The Content-Length of a message, if it has a valid one."""
    length = message.headers.get("content-length")
    return int(length) if length is not None and length.strip().isdigit() else None


def _unrecorded_note(message: Any) -> str | None:
    """Why a message has no body to export: it was streamed through without being kept
    (``raw_content`` None, as for bodies above stream_large_bodies)."""
    if message.raw_content is not None:
        return None
    size = _announced_size(message)
    return f"body streamed through, not recorded ({size} bytes)" if size is not None else \
        "body streamed through, not recorded"


def bodies_not_recorded(f: Any) -> bool:
    """Whether the flow's request or response body was streamed through without being kept
    (its exports then carry the head alone)."""
    request = getattr(f, "request", None)
    response = getattr(f, "response", None)
    if request is not None and _unrecorded_note(request) is not None and _may_carry_body(request):
        return True
    return response is not None and _unrecorded_note(response) is not None and _announced_size(response) != 0


def _may_carry_body(request: Any) -> bool:
    if _announced_size(request) not in (None, 0):
        return True
    return "chunked" in (request.headers.get("transfer-encoding") or "").lower()


def curl_command(f: Any) -> str:
    """A shell command that sends the flow's request again with curl.

    A request whose body was streamed through unrecorded gets a comment line first: the
    command cannot send a body nobody kept, and must not look as if it did.
    """
    request = _http_request(f)
    note = _unrecorded_note(request)
    if note is not None and request.method in ("GET", "HEAD") and not _may_carry_body(request):
        note = None  # nothing was sent after the head anyway
    args = ["curl"]
    body = request.raw_content or b""
    method = request.method
    if method == "HEAD":
        args.append("--head")
    elif not (method == "GET" and not body) and not (method == "POST" and body):
        args += ["-X", method]
    if request.http_version == "HTTP/2.0":
        args.append("--http2")
    elif request.http_version == "HTTP/1.0":
        args.append("--http1.0")
    url = request.url
    args.append(url)
    authority = url.split("://", 1)[-1].split("/", 1)[0]
    for name, value in request.headers.items(multi=True):
        lname = name.lower()
        if lname in _CURL_COMPUTED:
            continue
        if lname == "host" and value == authority:
            continue  # curl sends the same Host from the URL
        args += ["-H", f"{name}: {value}" if value else f"{name};"]
    if request.trailers:
        for name, value in request.trailers.items(multi=True):
            args += ["-H", f"{name}: {value}"]  # curl cannot send trailers; keep them visible
    stdin = None
    if body:
        text = _text_or_none(body)
        if text is not None:
            args += ["--data-binary", text]
        else:
            args += ["--data-binary", "@-"]
            stdin = _printf_literal(body)
    command = " ".join(shlex.quote(a) for a in args)
    if stdin is not None:
        command = f"printf '{stdin}' | {command}"
    if note is not None:
        command = f"# request {note}: this command sends no body\n{command}"
    return command


def _assemble(first_line: str, headers: Any, body: bytes, trailers: Any) -> bytes:
    chunked = "chunked" in (headers.get("transfer-encoding") or "").lower()
    out = first_line.encode("utf-8", "surrogateescape") + b"\r\n" + bytes(headers) + b"\r\n"
    if chunked:
        if body:
            out += f"{len(body):x}\r\n".encode() + body + b"\r\n"
        out += b"0\r\n" + (bytes(trailers) if trailers else b"") + b"\r\n"
    else:
        out += body
    return out


def raw_request(f: Any) -> bytes:
    """The request as HTTP/1 bytes (HTTP/2 requests are written in HTTP/1 form)."""
    request = _http_request(f)
    if request.method == "CONNECT":
        target = f"{request.host}:{request.port}"
    elif request.first_line_format == "absolute":
        target = request.url
    else:
        target = request.path or "/"
    headers = request.headers.copy()
    if "host" not in headers and request.authority:
        headers.insert(0, "Host", request.authority)
    version = request.http_version if request.http_version.startswith("HTTP/1") else "HTTP/1.1"
    return _assemble(f"{request.method} {target} {version}", headers, request.raw_content or b"", request.trailers)


def raw_response(f: Any) -> bytes:
    """The response as HTTP/1 bytes; ValueError if the flow has none."""
    _http_request(f)
    response = f.response
    if response is None:
        raise ValueError("the flow has no response")
    version = response.http_version if response.http_version.startswith("HTTP/1") else "HTTP/1.1"
    first = f"{version} {response.status_code} {response.reason}".rstrip()
    return _assemble(first, response.headers, response.raw_content or b"", response.trailers)


def raw(f: Any, separator: bytes = b"\r\n\r\n") -> bytes:
    """Request and response, one after the other."""
    out = raw_request(f)
    if f.response is not None:
        out += separator + raw_response(f)
    return out


# ---------------------------------------------------------------------------------------
# HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/)


def _iso(ts: float | None) -> str:
    if ts is None:
        ts = 0.0
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(start: float | None, end: float | None) -> float:
    if start is None or end is None or end < start:
        return -1
    return round((end - start) * 1000, 3)


def _name_values(items: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in items]


def _content(message: Any) -> tuple[dict[str, Any], int]:
    """HAR content fields for a body (decoded), and the size of the body as sent."""
    raw_body = message.raw_content or b""
    data = message.get_content(strict=False) or b""
    out: dict[str, Any] = {"size": len(data), "mimeType": message.headers.get("content-type", "")}
    note = _unrecorded_note(message)
    if note is not None:
        # Streamed, not kept: the size it announced (HAR has no 'unknown' content size).
        size = _announced_size(message)
        out.update(size=size or 0, text="", comment=note)
        return out, -1 if size is None else size
    if len(data) != len(raw_body):
        out["compression"] = len(data) - len(raw_body)
    text = _text_or_none(data)
    if text is not None:
        out["text"] = text
    else:
        out["text"] = base64.b64encode(data).decode("ascii")
        out["encoding"] = "base64"
    return out, len(raw_body)


def _response_cookies(response: Any) -> list[dict[str, Any]]:
    cookies = []
    for name, (value, attrs) in response.cookies.items(multi=True):
        c: dict[str, Any] = {"name": name, "value": value}
        lower = {k.lower(): v for k, v in attrs.items(multi=True)}
        if "path" in lower:
            c["path"] = lower["path"]
        if "domain" in lower:
            c["domain"] = lower["domain"]
        if "expires" in lower:
            c["expires"] = lower["expires"]
        c["httpOnly"] = "httponly" in lower
        c["secure"] = "secure" in lower
        cookies.append(c)
    return cookies


def har_entry(f: Any) -> dict[str, Any]:
    """One HAR entry for an HTTP flow."""
    request = _http_request(f)
    response = f.response
    req_content, req_body_size = _content(request)
    har_request: dict[str, Any] = {
        "method": request.method,
        "url": request.pretty_url,
        "httpVersion": request.http_version,
        "cookies": _name_values(request.cookies.items(multi=True)),
        "headers": _name_values(request.headers.items(multi=True)),
        "queryString": _name_values(request.query.items(multi=True)),
        "headersSize": len(bytes(request.headers)),
        "bodySize": req_body_size,
    }
    if request.raw_content:
        post: dict[str, Any] = {"mimeType": req_content["mimeType"], "text": req_content["text"]}
        if "encoding" in req_content:
            post["encoding"] = "base64"
        if req_content["mimeType"].startswith("application/x-www-form-urlencoded"):
            post["params"] = _name_values(request.urlencoded_form.items(multi=True))
        har_request["postData"] = post

    if response is not None:
        content, body_size = _content(response)
        har_response: dict[str, Any] = {
            "status": response.status_code,
            "statusText": response.reason,
            "httpVersion": response.http_version,
            "cookies": _response_cookies(response),
            "headers": _name_values(response.headers.items(multi=True)),
            "content": content,
            "redirectURL": response.headers.get("location", ""),
            "headersSize": len(bytes(response.headers)),
            "bodySize": body_size,
        }
    else:
        # HAR has no way to say "no response": status 0 is what browsers write for aborted requests.
        har_response = {"status": 0, "statusText": "", "httpVersion": "", "cookies": [], "headers": [],
                        "content": {"size": 0, "mimeType": ""}, "redirectURL": "", "headersSize": -1,
                        "bodySize": -1}  # fmt: skip
    if f.error is not None:
        har_response["_error"] = f.error.msg  # also a response that broke off

    server = f.server_conn
    timings = {
        "blocked": -1,
        "dns": -1,
        "connect": _ms(server.timestamp_start, server.timestamp_tcp_setup) if server else -1,
        "ssl": _ms(server.timestamp_tcp_setup, server.timestamp_tls_setup) if server else -1,
        "send": max(_ms(request.timestamp_start, request.timestamp_end), 0),
        "wait": max(_ms(request.timestamp_end, response.timestamp_start), 0) if response else 0,
        "receive": max(_ms(response.timestamp_start, response.timestamp_end), 0) if response else 0,
    }
    entry: dict[str, Any] = {
        "startedDateTime": _iso(request.timestamp_start),
        "time": round(sum(v for v in timings.values() if v > 0), 3),
        "request": har_request,
        "response": har_response,
        "cache": {},
        "timings": timings,
    }
    if server is not None and server.peername:
        entry["serverIPAddress"] = str(server.peername[0])
    if f.client_conn is not None and f.client_conn.peername:
        entry["connection"] = str(f.client_conn.peername[1])
    if f.comment:
        entry["comment"] = f.comment
    if f.websocket is not None:
        entry["_webSocketMessages"] = [
            {
                "type": "send" if m.from_client else "receive",
                "time": m.timestamp,
                "opcode": int(m.type),
                "data": m.content.decode("utf-8", "replace") if m.is_text else base64.b64encode(m.content).decode(),
            }
            for m in f.websocket.messages
        ]
    return entry


def har(flows: Iterable[Any]) -> dict[str, Any]:
    """A HAR 1.2 log of the HTTP flows among ``flows`` (other flow types have no HAR form)."""
    entries = [har_entry(f) for f in flows if getattr(f, "type", None) == "http" and f.request is not None]
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "gateway", "version": VERSION},
            "pages": [],
            "entries": entries,
        }
    }


def write_har(flows: Iterable[Any], fo: IO[str]) -> int:
    """Write a HAR file; returns the number of entries written."""
    doc = har(flows)
    json.dump(doc, fo, indent=2, ensure_ascii=False)
    fo.write("\n")
    return len(doc["log"]["entries"])


formats = {
    "curl": lambda f: curl_command(f).encode(),
    "raw_request": raw_request,
    "raw_response": raw_response,
    "raw": raw,
}
"""Single-flow exports by name (bytes out), as mitmproxy's export addon offers them."""
