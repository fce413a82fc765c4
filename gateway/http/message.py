"""What requests and responses share: the raw ``data`` that is saved, and ``Message``'s decoded views
(headers, body de/compressed by Content-Encoding, text by charset, trailers, timestamps)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from gateway import encoding
from gateway.coretypes.serializable import Serializable
from gateway.http.headers import Headers, _always_bytes
from gateway.net.http.headers import assemble_content_type, parse_content_type


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

    def _set_made_body(self, content: bytes | str) -> None:
        """The body given to ``Request.make`` / ``Response.make``: bytes as content, str as text."""
        if isinstance(content, bytes):
            self.content = content
        elif isinstance(content, str):
            self.text = content
        else:
            raise TypeError(f"Expected content to be str or bytes, but is {type(content).__name__}.")

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

