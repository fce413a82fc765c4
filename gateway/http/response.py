"""``Response``: status, reason, cookies, and ``refresh`` for replay."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gateway.coretypes import multidict
from gateway.http.headers import Headers, _always_bytes, _headers
from gateway.http.message import Message, ResponseData
from gateway.net.http import cookies, status_codes


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
        resp._set_made_body(content)
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
