"""``Request``: method, URL parts, query, cookies, forms, as mitmproxy names them."""

from __future__ import annotations

import binascii
import os
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence

from gateway.coretypes import multidict
from gateway.http.headers import _ENC, Headers, _always_bytes, _headers
from gateway.http.message import Message, RequestData
from gateway.net.http import cookies, multipart, url


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
        req._set_made_body(content)
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

