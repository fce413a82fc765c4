"""Filter expressions: pick flows by host, method, status, headers, body, type...

A subset of mitmproxy's filter language, with the same operators::

    ~d example.com & ~m POST          POSTs to example.com
    ~c 404 | ~e                       not-found responses and failed flows
    !(~tcp | ~udp) "api/v[12]"        everything but raw TCP/UDP whose URL matches the regex
    ~h "user-agent: .*curl"           a header line (name: value)

Expressions are made of filters (``~x`` with or without an argument), ``!`` (not),
``&`` (and; also implied between two filters written side by side), ``|`` (or) and
parentheses. ``!`` binds tightest, then ``&``, then ``|``. A word that is not a filter is a
regex matched against the URL. Regexes are Python regexes, case-insensitive; quote them
("..." or '...', with backslash escapes) when they contain spaces, parentheses, ``&`` or ``|``.
The full table is ``help`` below and in docs/flow-format.md.

Why hand-written: the grammar is tiny, and a recursive-descent parser gives error messages
that point at the exact position of the mistake.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["parse", "match", "FilterSyntaxError", "TFilter", "help"]


class FilterSyntaxError(ValueError):
    """The expression is not a valid filter; the message points at the position."""


class TFilter:
    """A compiled filter: call it with a flow to get True or False."""

    pattern: str = ""

    def __call__(self, f: Any) -> bool:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<filter {self.pattern!r}>"


# ---------------------------------------------------------------------------------------
# What flows look like to the filters. Attribute access is duck-typed so the filters work
# on every flow type without importing them all.


def _is(f: Any, type_: str) -> bool:
    return getattr(f, "type", None) == type_


def _http_messages(f: Any, request: bool, response: bool) -> Iterator[Any]:
    if _is(f, "http"):
        if request and f.request is not None:
            yield f.request
        if response and f.response is not None:
            yield f.response


def _header_lines(message: Any) -> Iterator[str]:
    for name, value in message.headers.items(multi=True):
        yield f"{name}: {value}"


def _bodies(f: Any, client: bool, server: bool) -> Iterator[bytes]:
    """Every payload of the flow from the given sides: HTTP bodies, WebSocket, TCP, UDP, DNS."""
    for m in _http_messages(f, client, server):
        content = m.get_content(strict=False)
        if content:
            yield content
    ws = getattr(f, "websocket", None)
    if ws is not None:
        for msg in ws.messages:
            if (client and msg.from_client) or (server and not msg.from_client):
                yield msg.content
    if _is(f, "tcp") or _is(f, "udp"):
        for msg in f.messages:
            if (client and msg.from_client) or (server and not msg.from_client):
                yield msg.content
    if _is(f, "dns"):
        for msg, side in ((f.request, client), (f.response, server)):
            if side and msg is not None:
                yield msg.packed
                yield str(msg).encode("utf-8", "surrogateescape")


def _content_types(f: Any, request: bool, response: bool) -> Iterator[str]:
    for m in _http_messages(f, request, response):
        ct = m.headers.get("content-type")
        if ct:
            yield ct


def _dns_names(f: Any) -> Iterator[str]:
    for msg in (f.request, f.response):
        if msg is not None:
            for q in msg.questions:
                yield q.name


def _address_text(address: Any) -> str:
    if not address:
        return ""
    return f"{address[0]}:{address[1]}" if len(address) > 1 else str(address[0])


# ---------------------------------------------------------------------------------------
# Filters without an argument


class _Simple(TFilter):
    code = ""
    help = ""

    def __init__(self) -> None:
        self.pattern = f"~{self.code}"


class FAll(_Simple):
    code, help = "all", "Match all flows"

    def __call__(self, f: Any) -> bool:
        return True


class FHTTP(_Simple):
    code, help = "http", "Match HTTP flows (WebSocket flows included)"

    def __call__(self, f: Any) -> bool:
        return _is(f, "http")


class FWebSocket(_Simple):
    code, help = "websocket", "Match WebSocket flows"

    def __call__(self, f: Any) -> bool:
        return _is(f, "http") and f.websocket is not None


class FTCP(_Simple):
    code, help = "tcp", "Match TCP flows"

    def __call__(self, f: Any) -> bool:
        return _is(f, "tcp")


class FUDP(_Simple):
    code, help = "udp", "Match UDP flows"

    def __call__(self, f: Any) -> bool:
        return _is(f, "udp")


class FDNS(_Simple):
    code, help = "dns", "Match DNS flows"

    def __call__(self, f: Any) -> bool:
        return _is(f, "dns")


class FReq(_Simple):
    code, help = "q", "Match a request with no response (HTTP, DNS)"

    def __call__(self, f: Any) -> bool:
        return (_is(f, "http") or _is(f, "dns")) and f.request is not None and f.response is None


class FResp(_Simple):
    code, help = "s", "Match a flow with a response (HTTP, DNS)"

    def __call__(self, f: Any) -> bool:
        return (_is(f, "http") or _is(f, "dns")) and f.response is not None


class FErr(_Simple):
    code, help = "e", "Match a flow with an error"

    def __call__(self, f: Any) -> bool:
        return f.error is not None


class FMarked(_Simple):
    code, help = "marked", "Match marked flows"

    def __call__(self, f: Any) -> bool:
        return bool(f.marked)


class FReplay(_Simple):
    code, help = "replay", "Match replayed flows"

    def __call__(self, f: Any) -> bool:
        return bool(f.is_replay)


class FReplayClient(_Simple):
    code, help = "replayq", "Match replayed client requests"

    def __call__(self, f: Any) -> bool:
        return f.is_replay == "request"


class FReplayServer(_Simple):
    code, help = "replays", "Match replayed server responses"

    def __call__(self, f: Any) -> bool:
        return f.is_replay == "response"


_ASSET = re.compile(r"javascript|ecmascript|text/css|^image/|^font/|application/font|application/x-font", re.I)


class FAsset(_Simple):
    code, help = "a", "Match asset responses: CSS, JavaScript, images, fonts"

    def __call__(self, f: Any) -> bool:
        return any(_ASSET.search(ct) for ct in _content_types(f, False, True))


# ---------------------------------------------------------------------------------------
# Filters with a regex argument


class _Rex(TFilter):
    code = ""
    help = ""
    is_binary = False

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.pattern = f"~{self.code} {_quote(expr)}"
        try:
            if self.is_binary:
                self.re: re.Pattern = re.compile(expr.encode("utf-8", "surrogateescape"), re.I | re.DOTALL)
            else:
                self.re = re.compile(expr, re.I | re.DOTALL)
        except re.error as e:
            raise FilterSyntaxError(f"invalid regex for ~{self.code} {expr!r} ({e.msg})") from None


class FDomain(_Rex):
    code, help = "d", "Domain: request host, Host header, DNS question, server address or SNI"

    def __call__(self, f: Any) -> bool:
        if _is(f, "http") and f.request is not None:
            return bool(self.re.search(f.request.host) or self.re.search(f.request.pretty_host))
        if _is(f, "dns"):
            return any(self.re.search(n) for n in _dns_names(f))
        server = f.server_conn
        if server is not None:
            if server.address and self.re.search(str(server.address[0])):
                return True
            if server.sni and self.re.search(server.sni):
                return True
        return False


class FMethod(_Rex):
    code, help = "m", "HTTP method"

    def __call__(self, f: Any) -> bool:
        return _is(f, "http") and f.request is not None and bool(self.re.search(f.request.method))


class FUrl(_Rex):
    code, help = "u", "URL (DNS flows: the question names)"

    def __call__(self, f: Any) -> bool:
        if _is(f, "http") and f.request is not None:
            return bool(self.re.search(f.request.pretty_url))
        if _is(f, "dns"):
            return any(self.re.search(n) for n in _dns_names(f))
        return False


class FHead(_Rex):
    code, help = "h", "Header line, request or response (matched as 'name: value')"
    request, response = True, True

    def __call__(self, f: Any) -> bool:
        return any(
            self.re.search(line) for m in _http_messages(f, self.request, self.response) for line in _header_lines(m)
        )


class FHeadRequest(FHead):
    code, help = "hq", "Request header line"
    request, response = True, False


class FHeadResponse(FHead):
    code, help = "hs", "Response header line"
    request, response = False, True


class FBody(_Rex):
    code, help = "b", "Body: HTTP bodies (decoded), WebSocket/TCP/UDP messages, DNS messages"
    is_binary = True
    client, server = True, True

    def __call__(self, f: Any) -> bool:
        return any(self.re.search(body) for body in _bodies(f, self.client, self.server))


class FBodyRequest(FBody):
    code, help = "bq", "Request body, or messages from the client"
    client, server = True, False


class FBodyResponse(FBody):
    code, help = "bs", "Response body, or messages from the server"
    client, server = False, True


class FContentType(_Rex):
    code, help = "t", "Content-Type header, request or response"
    request, response = True, True

    def __call__(self, f: Any) -> bool:
        return any(self.re.search(ct) for ct in _content_types(f, self.request, self.response))


class FContentTypeRequest(FContentType):
    code, help = "tq", "Request Content-Type header"
    request, response = True, False


class FContentTypeResponse(FContentType):
    code, help = "ts", "Response Content-Type header"
    request, response = False, True


class FSrc(_Rex):
    code, help = "src", "Client address (host:port)"

    def __call__(self, f: Any) -> bool:
        return f.client_conn is not None and bool(self.re.search(_address_text(f.client_conn.peername)))


class FDst(_Rex):
    code, help = "dst", "Server address (host:port)"

    def __call__(self, f: Any) -> bool:
        return f.server_conn is not None and bool(self.re.search(_address_text(f.server_conn.address)))


class FComment(_Rex):
    code, help = "comment", "Flow comment"

    def __call__(self, f: Any) -> bool:
        return bool(self.re.search(f.comment))


class FMarker(_Rex):
    code, help = "marker", "Flow marker (the text a flow is marked with)"

    def __call__(self, f: Any) -> bool:
        return bool(f.marked) and bool(self.re.search(str(f.marked)))


class FMeta(_Rex):
    code, help = "meta", "Flow metadata (matched against 'key: value' lines)"

    def __call__(self, f: Any) -> bool:
        return any(self.re.search(f"{k}: {v}") for k, v in f.metadata.items())


class FCode(TFilter):
    code, help = "c", "HTTP response status code"

    def __init__(self, arg: str) -> None:
        try:
            self.status = int(arg)
        except ValueError:
            raise FilterSyntaxError(f"~c needs a status code (an integer), not {arg!r}") from None
        self.pattern = f"~c {self.status}"

    def __call__(self, f: Any) -> bool:
        return _is(f, "http") and f.response is not None and f.response.status_code == self.status


# ---------------------------------------------------------------------------------------
# Combinators


class FNot(TFilter):
    def __init__(self, inner: TFilter) -> None:
        self.inner = inner
        self.pattern = f"!{_group(inner)}"

    def __call__(self, f: Any) -> bool:
        return not self.inner(f)


class FAnd(TFilter):
    def __init__(self, parts: list[TFilter]) -> None:
        self.parts = parts
        self.pattern = " & ".join(_group(p) for p in parts)

    def __call__(self, f: Any) -> bool:
        return all(p(f) for p in self.parts)


class FOr(TFilter):
    def __init__(self, parts: list[TFilter]) -> None:
        self.parts = parts
        self.pattern = " | ".join(_group(p) for p in parts)

    def __call__(self, f: Any) -> bool:
        return any(p(f) for p in self.parts)


def _group(t: TFilter) -> str:
    return f"({t.pattern})" if isinstance(t, FAnd | FOr) else t.pattern


def _quote(s: str) -> str:
    if s and not re.search(r"[\s()&|!~\"']", s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


_SIMPLE: dict[str, type[_Simple]] = {
    c.code: c
    for c in (FAll, FHTTP, FWebSocket, FTCP, FUDP, FDNS, FReq, FResp, FErr, FMarked, FReplay,
              FReplayClient, FReplayServer, FAsset)  # fmt: skip
}
_WITH_ARG: dict[str, Callable[[str], TFilter]] = {
    c.code: c
    for c in (FDomain, FMethod, FUrl, FHead, FHeadRequest, FHeadResponse, FBody, FBodyRequest,
              FBodyResponse, FContentType, FContentTypeRequest, FContentTypeResponse, FSrc, FDst,
              FComment, FMarker, FMeta, FCode)  # fmt: skip
}

help: list[tuple[str, str]] = (
    [(f"~{c.code}", c.help) for c in _SIMPLE.values()]
    + [(f"~{code} {'int' if code == 'c' else 'regex'}", c.help) for code, c in _WITH_ARG.items()]  # type: ignore[attr-defined]
    + [("!", "unary not"), ("&", "and (also implied between filters)"), ("|", "or"), ("(...)", "grouping"),
       ("regex", "a bare word or quoted string: URL regex")]  # fmt: skip
)
help.sort(key=lambda x: (not x[0].startswith("~"), x[0]))


# ---------------------------------------------------------------------------------------
# Parser


class _Token:
    __slots__ = ("kind", "text", "pos")

    def __init__(self, kind: str, text: str, pos: int) -> None:
        self.kind = kind  # "filter", "word", "op" (one of ! & | ( )), "end"
        self.text = text
        self.pos = pos


def _tokenize(s: str) -> list[_Token]:
    tokens = []
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c.isspace():
            i += 1
        elif c in "!&|()":
            tokens.append(_Token("op", c, i))
            i += 1
        elif c in "\"'":
            start = i
            i += 1
            out = []
            while True:
                if i >= n:
                    raise FilterSyntaxError(f"unterminated quoted string starting at position {start}")
                ch = s[i]
                if ch == "\\" and i + 1 < n:
                    nxt = s[i + 1]
                    # Keep backslashes the regex needs (\d, \.); unescape only the quote and itself.
                    out.append(nxt if nxt in (c, "\\") else "\\" + nxt)
                    i += 2
                elif ch == c:
                    i += 1
                    break
                else:
                    out.append(ch)
                    i += 1
            tokens.append(_Token("word", "".join(out), start))
        else:
            start = i
            while i < n and not s[i].isspace() and s[i] not in "()&|":
                i += 1
            text = s[start:i]
            if text.startswith("~") and len(text) > 1:
                tokens.append(_Token("filter", text[1:], start))
            else:
                tokens.append(_Token("word", text, start))
    tokens.append(_Token("end", "", n))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def error(self, msg: str, tok: _Token | None = None) -> FilterSyntaxError:
        pos = (tok or self.tok).pos
        return FilterSyntaxError(f"{msg} at position {pos}: {self.text[:pos]}>>>{self.text[pos:]}")

    def parse(self) -> TFilter:
        if self.tok.kind == "end":
            raise FilterSyntaxError("empty filter expression")
        result = self.or_expr()
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.tok.text!r}")
        return result

    def or_expr(self) -> TFilter:
        parts = [self.and_expr()]
        while self.tok.kind == "op" and self.tok.text == "|":
            self.i += 1
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else FOr(parts)

    def and_expr(self) -> TFilter:
        parts = [self.unary()]
        while True:
            t = self.tok
            if t.kind == "op" and t.text == "&":
                self.i += 1
                parts.append(self.unary())
            elif t.kind in ("filter", "word") or (t.kind == "op" and t.text in "!("):
                parts.append(self.unary())  # two filters side by side: implicit and
            else:
                break
        return parts[0] if len(parts) == 1 else FAnd(parts)

    def unary(self) -> TFilter:
        t = self.tok
        if t.kind == "op" and t.text == "!":
            self.i += 1
            return FNot(self.unary())
        if t.kind == "op" and t.text == "(":
            self.i += 1
            inner = self.or_expr()
            if not (self.tok.kind == "op" and self.tok.text == ")"):
                raise self.error("missing ')'" if self.tok.kind == "end" else f"expected ')', found {self.tok.text!r}")
            self.i += 1
            return inner
        if t.kind == "filter":
            self.i += 1
            code = t.text
            if code in _SIMPLE:
                return _SIMPLE[code]()
            if code in _WITH_ARG:
                arg = self.tok
                if arg.kind == "filter":
                    # "~d ~foo" is ambiguous enough to refuse, but "~u ~user" is a fine regex
                    # once quoted; say so.
                    raise self.error(f"~{code} needs an argument (quote it if it starts with '~')", arg)
                if arg.kind != "word":
                    raise self.error(f"~{code} needs an argument", arg)
                self.i += 1
                try:
                    return _WITH_ARG[code](arg.text)
                except FilterSyntaxError as e:
                    raise self.error(str(e), arg) from None
            raise self.error(f"unknown filter ~{code}", t)
        if t.kind == "word":
            self.i += 1
            return FUrl(t.text)
        if t.kind == "end":
            raise self.error("expression ends too early")
        raise self.error(f"unexpected {t.text!r}")


def parse(expr: str) -> TFilter:
    """Compile a filter expression; ``FilterSyntaxError`` (a ValueError) explains a bad one."""
    return _Parser(expr).parse()


def match(flt: str | TFilter | None, flow: Any) -> bool:
    """True if ``flow`` matches ``flt`` (an expression or a compiled filter; None matches all)."""
    if flt is None:
        return True
    if isinstance(flt, str):
        flt = parse(flt)
    return bool(flt(flow))
