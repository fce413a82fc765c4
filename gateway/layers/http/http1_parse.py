"""Sans-IO HTTP/1.x reader: bytes in, message events out.

Why not h11: a proxy must forward what it received (header case, order, duplicates,
close-delimited responses, ``Transfer-Encoding`` it does not understand) and decide body
framing itself (RFC 9112 section 6.3) with the request method at hand; h11 normalises
and re-frames messages for an endpoint, and owns a connection state machine that does not
fit a layer which parses one side and writes the other.  This parser is small, strict
where smuggling hides (obs-fold, whitespace before the colon, conflicting lengths, bare
CR) and keeps every byte of the head.

Usage: ``receive_data(bytes)`` (``b""`` means the peer closed), then ``next_event()``
until it returns ``NEED_DATA``.  After a head event the owner calls ``set_body(size)``
with the framing from :func:`expected_body_size` (the parser cannot know the request
method a response answers, nor whether a CONNECT or Upgrade succeeded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum

Fields = list[tuple[bytes, bytes]]

MAX_HEAD_SIZE = 256 * 1024
MAX_CHUNK_LINE = 4096
CHUNKED = -2
"""Body framing: chunked transfer coding."""
UNTIL_CLOSE = -1
"""Body framing: the body ends when the connection closes (responses only)."""

_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_VERSION = re.compile(rb"^HTTP/\d\.\d$")


class ProtocolError(Exception):
    """The peer sent something that is not HTTP/1 we will forward."""


class Need(Enum):
    DATA = "need data"


NEED_DATA = Need.DATA


@dataclass
class RequestHead:
    method: bytes
    target: bytes
    http_version: bytes
    fields: Fields
    raw_size: int = 0


@dataclass
class ResponseHead:
    http_version: bytes
    status_code: int
    reason: bytes
    fields: Fields
    raw_size: int = 0


@dataclass
class Data:
    data: bytes


@dataclass
class EndOfMessage:
    trailers: Fields | None = field(default=None)


@dataclass
class Closed:
    """The peer closed the connection between messages."""


Event = RequestHead | ResponseHead | Data | EndOfMessage | Closed | Need


def _get(fields: Fields, name: bytes) -> list[bytes]:
    name = name.lower()
    return [v for k, v in fields if k.lower() == name]


def expected_body_size(
    fields: Fields, *, is_request: bool, method: bytes = b"GET", status_code: int = 200
) -> int:
    """Body framing of a message (RFC 9112 section 6.3): a byte count, CHUNKED or UNTIL_CLOSE.

    Raises ProtocolError for requests that could smuggle (both TE and CL, a TE other than
    chunked, conflicting Content-Length values).
    """
    if not is_request:
        if method.upper() == b"HEAD" or 100 <= status_code < 200 or status_code in (204, 304):
            return 0
        if method.upper() == b"CONNECT" and 200 <= status_code < 300:
            return 0
    te = _get(fields, b"transfer-encoding")
    cl = _get(fields, b"content-length")
    if te:
        if is_request and cl:
            raise ProtocolError("both Transfer-Encoding and Content-Length")
        codings = [c.strip().lower() for v in te for c in v.split(b",") if c.strip()]
        if codings and codings[-1] == b"chunked":
            return CHUNKED
        if is_request:
            raise ProtocolError(f"unsupported Transfer-Encoding: {b', '.join(te)!r}")
        return UNTIL_CLOSE
    if cl:
        values = {c.strip() for v in cl for c in v.split(b",")}
        if len(values) != 1:
            raise ProtocolError("conflicting Content-Length values")
        (value,) = values
        if not value.isdigit():
            raise ProtocolError(f"invalid Content-Length: {value!r}")
        return int(value)
    return 0 if is_request else UNTIL_CLOSE


def _parse_fields(lines: list[bytes]) -> Fields:
    fields: Fields = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            raise ProtocolError("obsolete line folding in header")
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.match(name):
            raise ProtocolError(f"invalid header line: {line[:80]!r}")
        value = value.strip(b" \t")
        if b"\r" in value or b"\0" in value:
            raise ProtocolError("invalid character in header value")
        fields.append((name, value))
    return fields


def _split_head(head: bytes) -> list[bytes]:
    if b"\r" in head.replace(b"\r\n", b""):
        raise ProtocolError("bare CR in message head")
    return head.replace(b"\r\n", b"\n").split(b"\n")


def parse_request_head(head: bytes) -> RequestHead:
    first, *rest = _split_head(head)
    parts = first.split(b" ")
    if len(parts) != 3:
        raise ProtocolError(f"invalid request line: {first[:80]!r}")
    method, target, version = parts
    if not _TOKEN.match(method) or not target or not _VERSION.match(version):
        raise ProtocolError(f"invalid request line: {first[:80]!r}")
    if any(c < 0x21 or c == 0x7F for c in target):
        raise ProtocolError("invalid request target")
    return RequestHead(method, target, version, _parse_fields(rest), len(head))


def parse_response_head(head: bytes) -> ResponseHead:
    first, *rest = _split_head(head)
    version, _, remainder = first.partition(b" ")
    status, _, reason = remainder.partition(b" ")
    if not _VERSION.match(version) or len(status) != 3 or not status.isdigit():
        raise ProtocolError(f"invalid status line: {first[:80]!r}")
    return ResponseHead(version, int(status), reason, _parse_fields(rest), len(head))


class _State(Enum):
    HEAD = 1
    BODY_WAIT = 2  # head delivered, owner has not chosen framing yet
    LENGTH = 3
    CHUNK_SIZE = 4
    CHUNK_DATA = 5
    CHUNK_CRLF = 6
    TRAILERS = 7
    UNTIL_CLOSE = 8
    PAUSED = 9  # CONNECT/Upgrade: the rest of the bytes are not HTTP/1
    DONE = 10


_BODY_STATES = frozenset({_State.LENGTH, _State.UNTIL_CLOSE, _State.CHUNK_DATA})


class Http1Reader:
    """Parses a stream of requests (``is_request=True``) or responses from one peer."""

    def __init__(self, *, is_request: bool, max_head: int = MAX_HEAD_SIZE) -> None:
        self.is_request = is_request
        self.max_head = max_head
        self._buf = bytearray()
        self._eof = False
        self._state = _State.HEAD
        self._remaining = 0
        self._direct: bytes | None = None
        """Body bytes received while the buffer was empty, handed out without copying."""

    def receive_data(self, data: bytes) -> None:
        if data:
            if self._direct is None and not self._buf and self._state in _BODY_STATES:
                self._direct = data
            else:
                self._flush()
                self._buf += data
        else:
            self._eof = True

    def _flush(self) -> None:
        if self._direct is not None:
            self._buf += self._direct
            self._direct = None

    def _available(self) -> int:
        return len(self._direct) if self._direct is not None else len(self._buf)

    def _take(self, n: int) -> bytes:
        """Up to ``n`` body bytes; zero-copy when a whole received chunk goes out."""
        d = self._direct
        if d is not None:
            self._direct = None
            if n >= len(d):
                return d
            self._buf += d[n:]
            return d[:n]
        if n >= len(self._buf):
            data = bytes(self._buf)
            self._buf.clear()
            return data
        with memoryview(self._buf) as mv:
            data = bytes(mv[:n])
        del self._buf[:n]
        return data

    @property
    def eof(self) -> bool:
        return self._eof

    def set_body(self, size: int) -> None:
        """Framing of the body after the head just returned (from expected_body_size)."""
        assert self._state is _State.BODY_WAIT
        if size == CHUNKED:
            self._state = _State.CHUNK_SIZE
        elif size == UNTIL_CLOSE:
            self._state = _State.UNTIL_CLOSE
        else:
            self._state = _State.LENGTH
            self._remaining = size

    def pause(self) -> bytes:
        """Stop parsing (after CONNECT or a 101) and return the bytes already received."""
        self._flush()
        self._state = _State.PAUSED
        data = bytes(self._buf)
        self._buf.clear()
        return data

    def next_event(self) -> Event:
        state = self._state
        if state not in _BODY_STATES:
            self._flush()
        if state is _State.HEAD:
            return self._head()
        if state is _State.LENGTH:
            if self._remaining == 0:
                self._state = _State.HEAD
                return EndOfMessage()
            if not self._available():
                if self._eof:
                    raise ProtocolError(f"peer closed with {self._remaining} body bytes missing")
                return NEED_DATA
            data = self._take(self._remaining)
            self._remaining -= len(data)
            return Data(data)
        if state is _State.UNTIL_CLOSE:
            if self._available():
                return Data(self._take(self._available()))
            if self._eof:
                self._state = _State.DONE
                return EndOfMessage()
            return NEED_DATA
        if state in (_State.CHUNK_SIZE, _State.CHUNK_DATA, _State.CHUNK_CRLF, _State.TRAILERS):
            return self._chunked()
        if state is _State.DONE:
            return Closed()
        raise RuntimeError(f"next_event in state {state}")

    def _head(self) -> Event:
        # Tolerate blank lines before a request (RFC 9112 section 2.2).
        while self._buf[:2] == b"\r\n" or self._buf[:1] == b"\n":
            del self._buf[: 2 if self._buf[:1] == b"\r" else 1]
        end = self._buf.find(b"\r\n\r\n")
        sep = 4
        alt = self._buf.find(b"\n\n")
        if alt != -1 and (end == -1 or alt < end):
            end, sep = alt, 2
        if end == -1:
            if len(self._buf) > self.max_head:
                raise ProtocolError("message head too large")
            if self._eof:
                if self._buf:
                    raise ProtocolError("peer closed in the middle of a message head")
                self._state = _State.DONE
                return Closed()
            return NEED_DATA
        if end > self.max_head:
            raise ProtocolError("message head too large")
        head = bytes(self._buf[:end])
        del self._buf[: end + sep]
        self._state = _State.BODY_WAIT
        return parse_request_head(head) if self.is_request else parse_response_head(head)

    def _line(self, limit: int) -> bytes | None:
        idx = self._buf.find(b"\n")
        if idx == -1:
            if len(self._buf) > limit:
                raise ProtocolError("chunk line too long")
            if self._eof:
                raise ProtocolError("peer closed in the middle of a chunked body")
            return None
        line = bytes(self._buf[:idx]).rstrip(b"\r")
        del self._buf[: idx + 1]
        return line

    def _chunked(self) -> Event:
        while True:
            state = self._state
            if state is not _State.CHUNK_DATA:
                self._flush()
            if state is _State.CHUNK_SIZE:
                line = self._line(MAX_CHUNK_LINE)
                if line is None:
                    return NEED_DATA
                size = line.split(b";", 1)[0].strip()
                if not size or any(c not in b"0123456789abcdefABCDEF" for c in size):
                    raise ProtocolError(f"invalid chunk size: {line[:40]!r}")
                self._remaining = int(size, 16)
                if self._remaining == 0:
                    self._state = _State.TRAILERS
                    self._trailer_lines: list[bytes] = []
                else:
                    self._state = _State.CHUNK_DATA
            elif state is _State.CHUNK_DATA:
                if not self._available():
                    if self._eof:
                        raise ProtocolError("peer closed in the middle of a chunk")
                    return NEED_DATA
                data = self._take(self._remaining)
                self._remaining -= len(data)
                if self._remaining == 0:
                    self._state = _State.CHUNK_CRLF
                return Data(data)
            elif state is _State.CHUNK_CRLF:
                buf = self._buf
                if buf.startswith(b"\r\n"):
                    del buf[:2]
                elif buf.startswith(b"\n"):
                    del buf[:1]
                elif not buf or buf == b"\r":
                    if self._eof:
                        raise ProtocolError("peer closed in the middle of a chunked body")
                    return NEED_DATA
                else:
                    raise ProtocolError("chunk not followed by CRLF")
                self._state = _State.CHUNK_SIZE
            else:  # TRAILERS
                line = self._line(self.max_head)
                if line is None:
                    return NEED_DATA
                if line:
                    self._trailer_lines.append(line)
                    if sum(map(len, self._trailer_lines)) > self.max_head:
                        raise ProtocolError("trailers too large")
                    continue
                self._state = _State.HEAD
                trailers = _parse_fields(self._trailer_lines) if self._trailer_lines else None
                return EndOfMessage(trailers)
