"""HTTP/1.x bytes out: message heads and chunked framing, the writing half of http1_parse."""

from __future__ import annotations

from gateway.layers.http.http1_parse import Fields


def fields_block(fields: Fields) -> bytes:
    return b"".join(k + b": " + v + b"\r\n" for k, v in fields)


def request_head(method: bytes, target: bytes, http_version: bytes, fields: Fields) -> bytes:
    return b"%s %s %s\r\n%s\r\n" % (method, target, http_version, fields_block(fields))


def response_head(http_version: bytes, status_code: int, reason: bytes, fields: Fields) -> bytes:
    return b"%s %d %s\r\n%s\r\n" % (http_version, status_code, reason, fields_block(fields))


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""


def last_chunk(trailers: Fields | None = None) -> bytes:
    return b"0\r\n" + fields_block(trailers or []) + b"\r\n"
