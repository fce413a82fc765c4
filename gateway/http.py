"""HTTP flows: ``Headers``, ``Request``, ``Response`` and ``HTTPFlow``, as mitmproxy names them.

Raw wire values (method, path, header bytes, body as received) are kept in a small
``data`` object; the public attributes are views that decode them (``request.path`` is a
str, ``request.data.path`` the bytes).  Bodies are stored as received in ``raw_content``
and transparently de/compressed through ``content`` according to Content-Encoding.
"""

from __future__ import annotations

import binascii
import email.utils
import json
import os
import re
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

from gateway import encoding, flow
from gateway.connection import Client, Server
from gateway.coretypes import multidict
from gateway.coretypes.serializable import Serializable
from gateway.net.http import cookies, multipart, status_codes, url
from gateway.net.http.headers import assemble_content_type, parse_content_type
from gateway.websocket import WebSocketData

__all__ = ["Headers", "Message", "Request", "Response", "HTTPFlow"]

_ENC = ("utf-8", "surrogateescape")


def _always_bytes(x: str | bytes) -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode(*_ENC)
    raise TypeError(f"expected str or bytes, not {type(x).__name__}")


def _native(x: bytes) -> str:
    return x.decode(*_ENC)


class Headers(multidict.MultiDict[str, str]):
    """HTTP headers: ordered, case-insensitive, repeatable, stored as raw bytes.

    Reading a repeated header joins its values with ``", "`` (``get_all`` gives them
    separately).  Names and values are bytes in ``fields`` and str everywhere else,
    decoded as UTF-8 with surrogate escapes so any byte survives a round trip.

    >>> h = Headers(host="example.com", content_type="text/html")
    >>> h["Content-Type"]
    'text/html'
    """

    __slots__ = ()

    fields: tuple[tuple[bytes, bytes], ...]  # type: ignore[assignment]

    def __init__(self, fields: Iterable[tuple[bytes, bytes]] = (), **headers: str | bytes) -> None:
        super().__init__(fields)  # type: ignore[arg-type]
        for key, value in self.fields:
            if not isinstance(key, bytes) or not isinstance(value, bytes):
                raise TypeError("Header fields must be bytes.")
        # Keyword arguments: content_type="..." -> Content-Type
        for name, value in headers.items():
            self[name.replace("_", "-")] = value  # type: ignore[assignment]

    @staticmethod
    def _kconv(key: Any) -> Any:
        return key.lower()

    @staticmethod
    def _reduce_values(values: list[str]) -> str:
        return ", ".join(values)

    def __bytes__(self) -> bytes:
        """The header block as sent in HTTP/1 (each line ending in CRLF, no blank line)."""
        if not self.fields:
            return b""
        return b"".join(k + b": " + v + b"\r\n" for k, v in self.fields)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str | bytes):
            return False
        k = _always_bytes(key).lower()
        return any(f[0].lower() == k for f in self.fields)

    def __delitem__(self, key: str | bytes) -> None:  # type: ignore[override]
        super().__delitem__(_always_bytes(key))  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        for key in super().__iter__():
            yield _native(key)  # type: ignore[arg-type]

    def get_all(self, name: str | bytes) -> list[str]:  # type: ignore[override]
        """Every value of header ``name``, in order, without joining."""
        k = _always_bytes(name).lower()
        return [_native(v) for key, v in self.fields if key.lower() == k]

    def set_all(self, name: str | bytes, values: Iterable[str | bytes]) -> None:  # type: ignore[override]
        """Replace all values of header ``name`` (positions of existing lines are kept)."""
        super().set_all(_always_bytes(name), [_always_bytes(v) for v in values])  # type: ignore[arg-type]

    def insert(self, index: int, key: str | bytes, value: str | bytes) -> None:  # type: ignore[override]
        super().insert(index, _always_bytes(key), _always_bytes(value))  # type: ignore[arg-type]

    def items(self, multi: bool = False):  # type: ignore[override]
        """``(name, value)`` str pairs; with ``multi=True`` one pair per header line."""
        if multi:
            return [(_native(k), _native(v)) for k, v in self.fields]
        return super().items()

    @classmethod
    def from_state(cls, state: Sequence[Sequence[bytes]]) -> Headers:
        h = cls.__new__(cls)
        fields = tuple((k, v) for k, v in state)
        for k, v in fields:
            if type(k) is not bytes or type(v) is not bytes:
                raise TypeError("Header fields must be bytes.")
        h.fields = fields
        return h


def _headers(value: Headers | Iterable[tuple[bytes, bytes]] | Mapping | None) -> Headers:
    if isinstance(value, Headers):
        return value
    if value is None:
        return Headers()
    if isinstance(value, Mapping):
        return Headers([(_always_bytes(k), _always_bytes(v)) for k, v in value.items()])
    if isinstance(value, Iterable):
        return Headers(value)  # type: ignore[arg-type]
    raise TypeError(f"Expected headers to be an iterable or dict, but is {type(value).__name__}.")


class MessageData(Serializable):
    """The raw fields of a message, as bytes and numbers; what gets saved."""

    __slots__ = ("http_version", "headers", "content", "trailers", "timestamp_start", "timestamp_end")

    _state_keys: ClassVar[tuple[str, ...]]

    http_version: bytes
    headers: Headers
    content: bytes | None
    trailers: Headers | None
    timestamp_start: float
    timestamp_end: float | None

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self.get_state() == other.get_state()  # type: ignore[union-attr]
        return False

    __hash__ = None  # type: ignore[assignment]

    def get_state(self) -> dict[str, Any]:
        state = {k: getattr(self, k) for k in self._state_keys}
        state["headers"] = self.headers.get_state()
        state["trailers"] = self.trailers.get_state() if self.trailers is not None else None
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        for k in self._state_keys:
            setattr(self, k, state[k])
        self.headers = Headers.from_state(state["headers"])
        self.trailers = Headers.from_state(state["trailers"]) if state["trailers"] is not None else None

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MessageData:
        data = cls.__new__(cls)
        data.set_state(state)
        return data


class RequestData(MessageData):
    __slots__ = ("host", "port", "method", "scheme", "authority", "path")
    _state_keys = (
        "http_version", "headers", "content", "trailers", "timestamp_start", "timestamp_end",
        "host", "port", "method", "scheme", "authority", "path",
    )  # fmt: skip
    host: str
    port: int
    method: bytes
    scheme: bytes
    authority: bytes
    path: bytes


class ResponseData(MessageData):
    __slots__ = ("status_code", "reason")
    _state_keys = (
        "http_version", "headers", "content", "trailers", "timestamp_start", "timestamp_end",
        "status_code", "reason",
    )  # fmt: skip
    status_code: int
    reason: bytes


_META_CHARSET = re.compile(rb"""<meta[^>]+charset=['"]?([^'">\s/]+)""", re.IGNORECASE)
_CSS_CHARSET = re.compile(rb"""@charset "([^"]+)";""", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding=['"]([^'"]+)['"]""")


class Message(Serializable):
    """What ``Request`` and ``Response`` share: version, headers, body, trailers, timestamps."""

    data: MessageData
    _data_class: ClassVar[type[MessageData]] = MessageData

    stream: Callable[[bytes], Iterable[bytes] | bytes] | bool = False
    """Set to True (in ``requestheaders``/``responseheaders``) to pass the body through
    without buffering it, or to a function that transforms each chunk."""

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Message:
        msg = cls.__new__(cls)
        msg.data = cls._data_class.from_state(state)
        return msg

    def get_state(self) -> dict[str, Any]:
        return self.data.get_state()

    def set_state(self, state: dict[str, Any]) -> None:
        self.data.set_state(state)

    @property
    def http_version(self) -> str:
        """``"HTTP/1.1"``, ``"HTTP/2.0"``..."""
        return self.data.http_version.decode("utf-8", "surrogateescape")

    @http_version.setter
    def http_version(self, http_version: str | bytes) -> None:
        self.data.http_version = _always_bytes(http_version)

    @property
    def is_http10(self) -> bool:
        return self.data.http_version == b"HTTP/1.0"

    @property
    def is_http11(self) -> bool:
        return self.data.http_version == b"HTTP/1.1"

    @property
    def is_http2(self) -> bool:
        return self.data.http_version == b"HTTP/2.0"

    @property
    def is_http3(self) -> bool:
        return self.data.http_version == b"HTTP/3"

    @property
    def headers(self) -> Headers:
        return self.data.headers

    @headers.setter
    def headers(self, h: Headers) -> None:
        self.data.headers = h

    @property
    def trailers(self) -> Headers | None:
        """Headers sent after the body (chunked HTTP/1.1, HTTP/2), or None."""
        return self.data.trailers

    @trailers.setter
    def trailers(self, h: Headers | None) -> None:
        self.data.trailers = h

    @property
    def raw_content(self) -> bytes | None:
        """The body as on the wire (still compressed); None if it was streamed."""
        return self.data.content

    @raw_content.setter
    def raw_content(self, content: bytes | None) -> None:
        self.data.content = content

    @property
    def content(self) -> bytes | None:
        """The body, decompressed according to Content-Encoding.

        Setting it compresses with the message's Content-Encoding and updates
        Content-Length.  Reading raises ``ValueError`` if the body does not decode;
        use ``get_content(strict=False)`` to get the raw body instead.
        """
        return self.get_content()

    @content.setter
    def content(self, value: bytes | None) -> None:
        self.set_content(value)

    @property
    def text(self) -> str | None:
        """The body decoded as text, with the charset from Content-Type (or sniffed).

        Raises ``ValueError`` if the body cannot be decoded; see ``get_text(strict=False)``.
        """
        return self.get_text()

    @text.setter
    def text(self, value: str | None) -> None:
        self.set_text(value)

    @property
    def timestamp_start(self) -> float:
        return self.data.timestamp_start

    @timestamp_start.setter
    def timestamp_start(self, value: float) -> None:
        self.data.timestamp_start = value

    @property
    def timestamp_end(self) -> float | None:
        return self.data.timestamp_end

    @timestamp_end.setter
    def timestamp_end(self, value: float | None) -> None:
        self.data.timestamp_end = value

    def set_content(self, value: bytes | None) -> None:
        if value is None:
            self.raw_content = None
            return
        if not isinstance(value, bytes):
            raise TypeError(
                f"Message content must be bytes, not {type(value).__name__}. "
                "Please use .text if you want to assign a str."
            )
        ce = self.headers.get("content-encoding")
        try:
            self.raw_content = encoding.encode(value, ce or "identity")
        except ValueError:
            # An encoding we cannot produce: send the body unencoded and say so.
            del self.headers["content-encoding"]
            self.raw_content = value
        if "transfer-encoding" not in self.headers:
            self.headers["content-length"] = str(len(self.raw_content))

    def get_content(self, strict: bool = True) -> bytes | None:
        """The decoded body.  ``strict=False``: the raw body if decoding fails (never raises)."""
        if self.raw_content is None:
            return None
        ce = self.headers.get("content-encoding")
        if not ce:
            return self.raw_content
        try:
            content = encoding.decode(self.raw_content, ce)
            if isinstance(content, str):
                # A charset named as Content-Encoding (e.g. "utf8") is not a content coding.
                raise ValueError(f"Invalid Content-Encoding: {ce}")
            return content
        except ValueError:
            if strict:
                raise
            return self.raw_content

    def _get_content_type_charset(self) -> str | None:
        ct = parse_content_type(self.headers.get("content-type", ""))
        if ct:
            return ct[2].get("charset")
        return None

    def _guess_encoding(self, content: bytes = b"") -> str:
        enc = self._get_content_type_charset()
        if not enc:
            ct = self.headers.get("content-type", "").lower()
            if "json" in ct:
                enc = "utf8"
            elif "html" in ct:
                m = _META_CHARSET.search(content[:4096])
                if m:
                    enc = m.group(1).decode("ascii", "ignore")
            elif "text/css" in ct:
                m = _CSS_CHARSET.match(content)
                if m:
                    enc = m.group(1).decode("ascii", "ignore")
            elif "xml" in ct:
                m = _XML_ENCODING.match(content)
                if m:
                    enc = m.group(1).decode("ascii", "ignore")
        if not enc:
            enc = "latin-1"
        # GB 18030 is a superset of GB 2312 and GBK; sites mislabel one as the other.
        if enc.lower() in ("gb2312", "gbk"):
            enc = "gb18030"
        return enc

    def get_text(self, strict: bool = True) -> str | None:
        """The body as text.  ``strict=False``: never raises, undecodable bytes are escaped."""
        content = self.get_content(strict)
        if content is None:
            return None
        enc = self._guess_encoding(content)
        try:
            return encoding.decode(content, enc)  # type: ignore[return-value]
        except ValueError:
            if strict:
                raise
            return content.decode("utf8", "surrogateescape")

    def set_text(self, text: str | None) -> None:
        if text is None:
            self.content = None
            return
        enc = self._guess_encoding()
        try:
            self.content = encoding.encode(text, enc)
        except ValueError:
            # The declared charset cannot represent the text: switch to UTF-8 and say so.
            ct = parse_content_type(self.headers.get("content-type", "")) or ("text", "plain", {})
            ct[2]["charset"] = "utf-8"
            self.headers["content-type"] = assemble_content_type(*ct)
            self.content = text.encode("utf-8", "surrogateescape")

    def decode(self, strict: bool = True) -> None:
        """Decompress the body and remove Content-Encoding."""
        decoded = self.get_content(strict)
        self.headers.pop("content-encoding", None)
        self.content = decoded

    def encode(self, encoding: str) -> None:
        """Compress the body with ``encoding`` (gzip, deflate, br, zstd) and set Content-Encoding.

        Raises ``ValueError`` for an encoding we cannot produce.
        """
        self.raw_content = self.get_content()
        self.headers["content-encoding"] = encoding
        self.content = self.raw_content
        if "content-encoding" not in self.headers:
            raise ValueError(f"Invalid content encoding {encoding!r}")

    def json(self, **kwargs: Any) -> Any:
        """The body parsed as JSON; ``kwargs`` go to ``json.loads``.

        Raises ``TypeError`` if the body was not kept (streamed), ``json.JSONDecodeError``
        (a ``ValueError``) if it is not JSON.
        """
        content = self.get_content(strict=False)
        if content is None:
            raise TypeError("Message content is not available.")
        return json.loads(content, **kwargs)


class Request(Message):
    """An HTTP request."""

    data: RequestData
    _data_class = RequestData

    def __init__(
        self,
        host: str,
        port: int,
        method: bytes,
        scheme: bytes,
        authority: bytes,
        path: bytes,
        http_version: bytes,
        headers: Headers | tuple[tuple[bytes, bytes], ...],
        content: bytes | None,
        trailers: Headers | tuple[tuple[bytes, bytes], ...] | None,
        timestamp_start: float,
        timestamp_end: float | None,
    ) -> None:
        if isinstance(host, bytes):
            host = host.decode("idna", "strict")
        if not isinstance(port, int):
            raise ValueError(f"Port must be an integer, not {port!r}.")
        if content is not None and not isinstance(content, bytes):
            raise TypeError(f"content must be bytes, not {type(content).__name__}")
        data = RequestData.__new__(RequestData)
        data.host = host
        data.port = port
        data.method = _always_bytes(method)
        data.scheme = _always_bytes(scheme)
        data.authority = _always_bytes(authority)
        data.path = _always_bytes(path)
        data.http_version = _always_bytes(http_version)
        data.headers = _headers(headers)
        data.content = content
        data.trailers = _headers(trailers) if trailers is not None else None
        data.timestamp_start = timestamp_start
        data.timestamp_end = timestamp_end
        self.data = data

    def __repr__(self) -> str:
        if self.host and self.port:
            hostport = f"{self.host}:{self.port}"
        else:
            hostport = ""
        path = self.path or ""
        return f"Request({self.method} {hostport}{path})"

    @classmethod
    def make(
        cls,
        method: str,
        url: str,
        content: bytes | str = "",
        headers: Headers | dict[str | bytes, str | bytes] | Iterable[tuple[bytes, bytes]] = (),
    ) -> Request:
        """A request for ``url``, e.g. ``Request.make("GET", "https://example.com/")``."""
        req = cls("", 0, method.encode(*_ENC), b"", b"", b"", b"HTTP/1.1", _headers(headers), b"",
                  None, time.time(), time.time())  # fmt: skip
        req.url = url
        if isinstance(content, bytes):
            req.content = content
        elif isinstance(content, str):
            req.text = content
        else:
            raise TypeError(f"Expected content to be str or bytes, but is {type(content).__name__}.")
        return req

    @property
    def first_line_format(self) -> str:
        """``"authority"`` (CONNECT), ``"absolute"`` (HTTP/1 proxy-form) or ``"relative"``.

        Unlike mitmproxy, an HTTP/2 or 3 request is ``"relative"`` even though it carries
        ``:authority``: that pseudo-header plays the Host header's role, and HTTP/2 has no
        absolute form, so code that re-serialises requests can rely on this value.
        """
        if self.method == "CONNECT":
            return "authority"
        if self.data.authority and not (self.is_http2 or self.is_http3):
            return "absolute"
        return "relative"

    @property
    def method(self) -> str:
        return self.data.method.decode("utf-8", "surrogateescape").upper()

    @method.setter
    def method(self, val: str | bytes) -> None:
        self.data.method = _always_bytes(val)

    @property
    def scheme(self) -> str:
        return self.data.scheme.decode("utf-8", "surrogateescape")

    @scheme.setter
    def scheme(self, val: str | bytes) -> None:
        self.data.scheme = _always_bytes(val)

    @property
    def authority(self) -> str:
        """The authority of the request line (HTTP/1 absolute form) or ``:authority`` (HTTP/2),
        ``""`` if none was sent."""
        try:
            return self.data.authority.decode("idna")
        except UnicodeError:
            return self.data.authority.decode(*_ENC)

    @authority.setter
    def authority(self, val: str | bytes) -> None:
        if isinstance(val, str):
            try:
                val = val.encode("idna", "strict")
            except UnicodeError:
                val = val.encode(*_ENC)
        self.data.authority = val

    @property
    def host(self) -> str:
        """The target host (an IP in transparent and packet modes; see ``pretty_host``).

        Setting it also updates the Host header and authority, when present.
        """
        return self.data.host

    @host.setter
    def host(self, val: str | bytes) -> None:
        self.data.host = val.decode("idna", "strict") if isinstance(val, bytes) else val
        self._update_host_and_authority()

    @property
    def host_header(self) -> str | None:
        """The Host header (HTTP/1) or ``:authority`` (HTTP/2 and 3, falling back to Host)."""
        if self.is_http2 or self.is_http3:
            return self.authority or self.data.headers.get("Host", None)
        return self.data.headers.get("Host", None)

    @host_header.setter
    def host_header(self, val: str | bytes | None) -> None:
        if val is None:
            if self.is_http2 or self.is_http3:
                self.data.authority = b""
            self.headers.pop("Host", None)
            return
        if self.is_http2 or self.is_http3:
            self.authority = val
            if "Host" in self.headers:
                self.headers["Host"] = val  # h2: only overwrite, :authority is the host header
        else:
            self.headers["Host"] = val

    @property
    def port(self) -> int:
        return self.data.port

    @port.setter
    def port(self, port: int) -> None:
        if not isinstance(port, int) or isinstance(port, bool):
            raise ValueError(f"Port must be an integer, not {port!r}.")
        self.data.port = port
        self._update_host_and_authority()

    def _update_host_and_authority(self) -> None:
        val = url.hostport(self.scheme, self.host, self.port)
        if "Host" in self.data.headers:
            self.data.headers["Host"] = val
        if self.data.authority:
            self.authority = val

    @property
    def path(self) -> str:
        """The request target after the authority: path, query and fragment (``*`` for OPTIONS *)."""
        return self.data.path.decode(*_ENC)

    @path.setter
    def path(self, val: str | bytes) -> None:
        self.data.path = _always_bytes(val)

    @property
    def url(self) -> str:
        """The full URL from scheme, host, port and path.  Setting it sets all four."""
        if self.first_line_format == "authority":
            return f"{self.host}:{self.port}"
        return url.unparse(self.scheme, self.host, self.port, self.path)

    @url.setter
    def url(self, val: str | bytes) -> None:
        val = val.decode(*_ENC) if isinstance(val, bytes) else val
        scheme, host, port, path = url.parse(val)
        self.scheme = scheme
        self.data.host = host
        self.port = port  # updates Host header and authority
        self.path = path

    @property
    def pretty_host(self) -> str:
        """Like ``host``, but preferring the Host header / ``:authority``.

        Useful where ``host`` is an IP address (transparent and packet modes); note the
        header is the client's claim and can be spoofed.
        """
        authority = self.host_header
        if authority:
            return url.parse_authority(authority, check=False)[0]
        return self.host

    @property
    def pretty_url(self) -> str:
        """Like ``url``, but with ``pretty_host`` (and the port from the Host header)."""
        if self.first_line_format == "authority":
            return self.authority
        host_header = self.host_header
        if not host_header:
            return self.url
        pretty_host, pretty_port = url.parse_authority(host_header, check=False)
        pretty_port = pretty_port or url.default_port(self.scheme) or 443
        return url.unparse(self.scheme, pretty_host, pretty_port, self.path)

    def _get_query(self) -> tuple[tuple[str, str], ...]:
        query = urllib.parse.urlsplit(self.path).query if self.path != "*" else ""
        return tuple(url.decode(query))

    def _set_query(self, query_data: Sequence[tuple[str, str]]) -> None:
        path, hash_mark, fragment = self.path.partition("#")
        base, question_mark, old_query = path.partition("?")
        # Keep bare keys (?flag) bare if the original query used them.
        query = url.encode(query_data, old_query if question_mark else None)
        self.path = base + ("?" + query if query else "") + hash_mark + fragment

    @property
    def query(self) -> multidict.MultiDictView[str, str]:
        """The query string as an editable multi-dict (``request.query["q"] = "x"``)."""
        return multidict.MultiDictView(self._get_query, self._set_query)

    @query.setter
    def query(self, value: Iterable[tuple[str, str]] | Mapping[str, str]) -> None:
        self._set_query(tuple(value.items()) if isinstance(value, Mapping) else tuple(value))

    def _get_cookies(self) -> tuple[tuple[str, str], ...]:
        return tuple(cookies.parse_cookie_headers(self.headers.get_all("Cookie")))

    def _set_cookies(self, value: Sequence[tuple[str, str]]) -> None:
        if value:
            self.headers["cookie"] = cookies.format_cookie_header(value)
        else:
            self.headers.pop("cookie", None)

    @property
    def cookies(self) -> multidict.MultiDictView[str, str]:
        """The Cookie header(s) as an editable multi-dict of name -> value."""
        return multidict.MultiDictView(self._get_cookies, self._set_cookies)

    @cookies.setter
    def cookies(self, value: Iterable[tuple[str, str]] | Mapping[str, str]) -> None:
        self._set_cookies(tuple(value.items()) if isinstance(value, Mapping) else tuple(value))

    @property
    def path_components(self) -> tuple[str, ...]:
        """The URL path split on ``/`` and unquoted; empty components are dropped."""
        path = urllib.parse.urlsplit(self.path).path if self.path != "*" else ""
        return tuple(url.unquote(i) for i in path.split("/") if i)

    @path_components.setter
    def path_components(self, components: Iterable[str]) -> None:
        path = "/" + "/".join(url.quote(c, safe="") for c in components)
        split = urllib.parse.urlsplit(self.path)
        self.path = urllib.parse.urlunsplit(("", "", path, split.query, split.fragment))

    def anticache(self) -> None:
        """Remove headers that let a server answer 304 Not Modified."""
        for h in ("if-modified-since", "if-none-match"):
            self.headers.pop(h, None)

    def anticomp(self) -> None:
        """Ask the server for an uncompressed response."""
        self.headers["accept-encoding"] = "identity"

    def constrain_encoding(self) -> None:
        """Limit Accept-Encoding to the encodings we can decode."""
        accept_encoding = self.headers.get("accept-encoding")
        if accept_encoding:
            self.headers["accept-encoding"] = ", ".join(
                e for e in ("gzip", "identity", "deflate", "br", "zstd") if e in accept_encoding
            )

    def _get_urlencoded_form(self) -> tuple[tuple[str, str], ...]:
        if "application/x-www-form-urlencoded" in self.headers.get("content-type", "").lower():
            return tuple(url.decode(self.get_text(strict=False) or ""))
        return ()

    def _set_urlencoded_form(self, form_data: Sequence[tuple[str, str]]) -> None:
        previous = self.get_text(strict=False) if self._get_urlencoded_form() else None
        self.headers["content-type"] = "application/x-www-form-urlencoded"
        self.content = url.encode(form_data, previous).encode()

    @property
    def urlencoded_form(self) -> multidict.MultiDictView[str, str]:
        """The body as an editable urlencoded form (empty if not ``x-www-form-urlencoded``)."""
        return multidict.MultiDictView(self._get_urlencoded_form, self._set_urlencoded_form)

    @urlencoded_form.setter
    def urlencoded_form(self, value: Iterable[tuple[str, str]] | Mapping[str, str]) -> None:
        self._set_urlencoded_form(tuple(value.items()) if isinstance(value, Mapping) else tuple(value))

    def _get_multipart_form(self) -> tuple[tuple[bytes, bytes], ...]:
        ct = self.headers.get("content-type", "")
        if "multipart/form-data" in ct.lower():
            content = self.get_content(strict=False)
            if content is not None:
                try:
                    return tuple(multipart.decode_multipart(ct, content))
                except ValueError:
                    pass
        return ()

    def _set_multipart_form(self, value: Sequence[tuple[bytes, bytes]]) -> None:
        ct = self.headers.get("content-type", "")
        if not ct.lower().startswith("multipart/form-data") or "boundary" not in ct.lower():
            boundary = "-" * 20 + binascii.hexlify(os.urandom(16)).decode()
            ct = f"multipart/form-data; boundary={boundary}"
            self.headers["content-type"] = ct
        self.content = multipart.encode_multipart(ct, value)

    @property
    def multipart_form(self) -> multidict.MultiDictView[bytes, bytes]:
        """The body as an editable multipart form of bytes names and values."""
        return multidict.MultiDictView(self._get_multipart_form, self._set_multipart_form)

    @multipart_form.setter
    def multipart_form(self, value: Iterable[tuple[bytes, bytes]] | Mapping[bytes, bytes]) -> None:
        self._set_multipart_form(tuple(value.items()) if isinstance(value, Mapping) else tuple(value))


class Response(Message):
    """An HTTP response."""

    data: ResponseData
    _data_class = ResponseData

    def __init__(
        self,
        http_version: bytes,
        status_code: int,
        reason: bytes,
        headers: Headers | tuple[tuple[bytes, bytes], ...],
        content: bytes | None,
        trailers: Headers | tuple[tuple[bytes, bytes], ...] | None,
        timestamp_start: float,
        timestamp_end: float | None,
    ) -> None:
        if content is not None and not isinstance(content, bytes):
            raise TypeError(f"content must be bytes, not {type(content).__name__}")
        data = ResponseData.__new__(ResponseData)
        data.http_version = _always_bytes(http_version)
        data.status_code = status_code
        data.reason = _always_bytes(reason)
        data.headers = _headers(headers)
        data.content = content
        data.trailers = _headers(trailers) if trailers is not None else None
        data.timestamp_start = timestamp_start
        data.timestamp_end = timestamp_end
        self.data = data

    def __repr__(self) -> str:
        if self.raw_content:
            ct = self.headers.get("content-type", "unknown content type")
            size = _pretty_size(len(self.raw_content))
            details = f"{ct}, {size}"
        else:
            details = "no content"
        return f"Response({self.status_code}, {details})"

    @classmethod
    def make(
        cls,
        status_code: int = 200,
        content: bytes | str = b"",
        headers: Headers | Mapping[str | bytes, str | bytes] | Iterable[tuple[bytes, bytes]] = (),
    ) -> Response:
        """A complete response, e.g. ``Response.make(404, "not here", {"Content-Type": "text/plain"})``."""
        now = time.time()
        resp = cls(b"HTTP/1.1", status_code, status_codes.reason_phrase(status_code).encode(),
                   _headers(headers), None, None, now, now)  # fmt: skip
        if isinstance(content, bytes):
            resp.content = content
        elif isinstance(content, str):
            resp.text = content
        else:
            raise TypeError(f"Expected content to be str or bytes, but is {type(content).__name__}.")
        return resp

    @property
    def status_code(self) -> int:
        return self.data.status_code

    @status_code.setter
    def status_code(self, status_code: int) -> None:
        self.data.status_code = status_code

    @property
    def reason(self) -> str:
        """The reason phrase (HTTP/1 only; empty in HTTP/2)."""
        return self.data.reason.decode("iso-8859-1")

    @reason.setter
    def reason(self, reason: str | bytes) -> None:
        self.data.reason = reason.encode("iso-8859-1") if isinstance(reason, str) else reason

    def _get_cookies(self) -> tuple[tuple[str, tuple[str, cookies.CookieAttrs]], ...]:
        return tuple(
            (name, (value, attrs))
            for name, value, attrs in cookies.parse_set_cookie_headers(self.headers.get_all("set-cookie"))
        )

    def _set_cookies(self, value: Sequence[tuple[str, Any]]) -> None:
        lines = []
        for name, v in value:
            if isinstance(v, str):
                lines.append(cookies.format_set_cookie_header(name, v))
            else:
                cookie_value, attrs = v
                lines.append(cookies.format_set_cookie_header(name, cookie_value, attrs))
        self.headers.set_all("set-cookie", lines)

    @property
    def cookies(self) -> multidict.MultiDictView[str, tuple[str, cookies.CookieAttrs]]:
        """Set-Cookie headers as a multi-dict: name -> ``(value, attrs)``.

        ``attrs`` is a ``CookieAttrs`` multi-dict (``Path``, ``Expires``, ``Secure``: None
        for flags).  To change a cookie, assign a new tuple:
        ``resp.cookies["id"] = ("new", attrs)``.
        """
        return multidict.MultiDictView(self._get_cookies, self._set_cookies)

    @cookies.setter
    def cookies(self, value: Any) -> None:
        self._set_cookies(tuple(value.items()) if isinstance(value, Mapping) else tuple(value))

    def refresh(self, now: float | None = None) -> None:
        """Shift date headers and cookie expiry by the time since the response was received,
        so a replayed response is as fresh as the original was."""
        now = time.time() if now is None else now
        delta = now - self.timestamp_start
        for name in ("date", "expires", "last-modified"):
            if name in self.headers:
                shifted = _shift_http_date(self.headers[name], delta)
                if shifted is not None:
                    self.headers[name] = shifted
        lines = []
        changed = False
        for line in self.headers.get_all("set-cookie"):
            parsed = cookies.parse_set_cookie_header(line)
            if parsed is not None and parsed[2].get("expires"):
                name, value, attrs = parsed
                shifted = _shift_http_date(attrs["expires"], delta)
                if shifted is not None:
                    attrs["expires"] = shifted
                    line = cookies.format_set_cookie_header(name, value, attrs)
                    changed = True
            lines.append(line)
        if changed:
            self.headers.set_all("set-cookie", lines)


def _shift_http_date(value: str | None, delta: float) -> str | None:
    if not value:
        return None
    try:
        t = email.utils.parsedate_tz(value)
        if t is None:
            return None
        return email.utils.formatdate(email.utils.mktime_tz(t) + delta, usegmt=True)
    except (OverflowError, ValueError, TypeError):
        return None


def _pretty_size(size: int) -> str:
    for unit, factor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.1f}{unit}"
    return f"{size}b"


class HTTPFlow(flow.Flow):
    """An HTTP request/response pair, plus the WebSocket conversation if it upgraded."""

    type: ClassVar[str] = "http"

    request: Request
    response: Response | None
    websocket: WebSocketData | None
    """The WebSocket messages, if this request was upgraded to one."""

    def __init__(self, client_conn: Client, server_conn: Server, live: bool = False) -> None:
        super().__init__(client_conn, server_conn, live)
        self.request = None  # type: ignore[assignment]
        self.response = None
        self.websocket = None

    def _init_empty(self) -> None:
        flow.Flow._init_empty(self)
        self.request = None
        self.response = None
        self.websocket = None

    def __repr__(self) -> str:
        s = "<HTTPFlow"
        for a in ("request", "response", "websocket", "error", "client_conn", "server_conn"):
            if getattr(self, a, False):
                s += f"\r\n  {a} = {{flow.{a}}}"
        s += ">"
        return s.format(flow=self)

    @property
    def timestamp_start(self) -> float:
        """When the request started."""
        return self.request.timestamp_start if self.request is not None else self.timestamp_created

    def _base_state(self) -> dict[str, Any]:
        state = super()._base_state()
        state["request"] = self.request.get_state() if self.request is not None else None
        state["response"] = self.response.get_state() if self.response is not None else None
        state["websocket"] = self.websocket.get_state() if self.websocket is not None else None
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.request = Request.from_state(state["request"]) if state["request"] is not None else None  # type: ignore
        self.response = Response.from_state(state["response"]) if state["response"] is not None else None  # type: ignore
        ws = state.get("websocket")
        self.websocket = WebSocketData.from_state(ws) if ws is not None else None

    def copy(self) -> HTTPFlow:
        return super().copy()  # type: ignore[return-value]
