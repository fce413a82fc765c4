"""Live output: one line per finished flow on stdout, like mitmdump.

::

    127.0.0.1:50312 GET https://example.com/a?b=1 200 OK 1.2k 45ms
    10.0.0.2:41000 [phone] DNS A example.com -> 93.184.216.34 NOERROR 12ms
    127.0.0.1:50400 TCP 10.0.0.1:7 3 messages, 12b up, 12b down 1.0s

``flow_detail`` adds headers (2), truncated bodies and messages (3), whole bodies (4);
0 prints nothing.  Colour (through rich) only when the output is a terminal, so that piped
output is plain text.  Logs go to stderr (TermLog), flows to stdout.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any

from gateway import ctx
from gateway.net.address_text import format_address

logger = logging.getLogger(__name__)

TRUNCATE_BODY = 1024
"""Bytes of a body shown at flow_detail 3."""
MAX_LINES = 70
"""Lines of a rendered body shown at flow_detail 3."""
SHORT_URL = 120
"""Characters of a URL shown at flow_detail 1."""
MAX_OPEN = 4096
"""Open flows remembered for their line at shutdown (the oldest are forgotten first)."""


def pretty_size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, div in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if n >= div:
            value = n / div
            return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return f"{n}b"


def pretty_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 100:
        return f"{seconds:.1f}s"
    return f"{seconds:.0f}s"


def _elapsed(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return end - start


class Dumper:
    name = "dumper"

    def __init__(self, outfile: IO[str] | None = None) -> None:
        self.outfile = outfile
        self._console: Any = None
        self._filter: Callable[[Any], bool] | None = None
        self._open: dict[str, Any] = {}
        """Flows begun and not yet printed, by id: printed at shutdown, whose cancelled
        connections report nothing in time (a download cut by Ctrl-C had no line)."""
        self._stopped = False

    # -- options -----------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option(
            "flow_detail", int, 1,
            "Live output detail: 0 nothing, 1 one line per flow, 2 with headers, 3 with "
            "truncated bodies and messages, 4 with full bodies.",
        )
        loader.add_option(
            "dumper_default_contentview", str, "auto",
            "Content view for bodies and messages at flow_detail 3 and 4 (auto, raw, hex, json, ...).",
        )
        loader.add_option(
            "dumper_filter", str | None, None,
            "Only show flows matching this filter expression (see `gateway show --help`).",
        )

    def configure(self, updated: set[str]) -> None:
        if "flow_detail" in updated and not 0 <= ctx.options.flow_detail <= 4:
            from gateway.optmanager import OptionsError

            raise OptionsError(f"flow_detail must be between 0 and 4, got {ctx.options.flow_detail}")
        if "dumper_filter" in updated:
            self._filter = _compile_filter(ctx.options.dumper_filter)
        if "dumper_default_contentview" in updated:
            from gateway import contentviews
            from gateway.optmanager import OptionsError

            name = ctx.options.dumper_default_contentview
            if contentviews.get(name) is None:
                known = ", ".join(v.name.lower() for v in contentviews.views)
                raise OptionsError(f"dumper_default_contentview: unknown view {name!r} (known: {known})")

    # -- output ------------------------------------------------------------------------

    @property
    def out(self) -> IO[str]:
        return self.outfile or sys.stdout

    def _is_tty(self) -> bool:
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty())

    def echo(self, parts: Iterable[tuple[str, str | None]], indent: int = 0) -> None:
        """Write one line made of (text, rich style) parts."""
        if self._is_tty():
            from rich.text import Text

            if self._console is None or self._console.file is not self.out:
                from rich.console import Console

                self._console = Console(file=self.out, highlight=False, soft_wrap=True)
            text = Text(" " * indent)
            for s, style in parts:
                text.append(s, style=style or "")
            self._console.print(text)
        else:
            self.out.write(" " * indent + "".join(s for s, _ in parts) + "\n")
            self.out.flush()

    def _echo_lines(self, lines: Iterable[list[tuple[str, str]]], indent: int = 4) -> None:
        """Content-view lines: lists of (style name, text)."""
        for line in lines:
            self.echo([(text, _STYLES.get(style)) for style, text in line], indent=indent)

    def _wants(self, f: Any) -> bool:
        if self._stopped or ctx.options is None or ctx.options.flow_detail == 0:
            return False
        if self._filter is not None:
            try:
                return bool(self._filter(f))
            except Exception:  # a filter must not break output
                logger.debug("dumper_filter failed", exc_info=True)
                return False
        return True

    @property
    def detail(self) -> int:
        return int(ctx.options.flow_detail) if ctx.options is not None else 1

    def _client(self, f: Any) -> list[tuple[str, str | None]]:
        client = getattr(f, "client_conn", None)
        parts: list[tuple[str, str | None]] = [(format_address(getattr(client, "peername", None)), "dim")]
        peer = getattr(client, "wireguard_peer", None) or getattr(client, "tun_interface", None)
        if peer:
            parts.append((f" [{peer}]", "cyan"))
        return parts

    # -- HTTP --------------------------------------------------------------------------

    # -- flows open at shutdown ------------------------------------------------------------

    def _begun(self, f: Any) -> None:
        if not self._stopped:
            self._open[f.id] = f
            if len(self._open) > MAX_OPEN:
                # Bounded: a flow whose end never came (a path that fires no end hook) must
                # not keep its bodies alive for the life of the process.
                del self._open[next(iter(self._open))]

    def _ended(self, f: Any) -> None:
        self._open.pop(f.id, None)

    request = tcp_start = udp_start = dns_request = _begun

    def done(self) -> None:
        """Print the flows still open, marked as cut off by the shutdown (the same words as
        the flow file); what their connections report afterwards is not printed again."""
        from gateway.addons.save import SHUTDOWN_MESSAGE
        from gateway.flow import Error

        for f in list(self._open.values()):
            own = f.error
            if own is not None:
                continue  # it ended (a killed flow fires no end hook): not cut off by us
            f.error = Error(SHUTDOWN_MESSAGE)
            try:
                if self._wants(f):
                    self._line(f)
            except Exception:  # noqa: BLE001 - a half-made flow must not break the shutdown
                logger.debug("cannot print open flow %s", f.id, exc_info=True)
            finally:
                f.error = own
        self._open.clear()
        self._stopped = True

    def _line(self, f: Any) -> None:
        kind = getattr(f, "type", None)
        if kind == "http":
            if f.websocket is not None:
                self._websocket_line(f)
            else:
                self._http_line(f)
        elif kind in ("tcp", "udp"):
            self._stream_line(f, kind.upper())
        elif kind == "dns":
            self._dns_line(f)

    # -- HTTP --------------------------------------------------------------------------

    def response(self, f: Any) -> None:
        if f.websocket is None:
            self._ended(f)
        if self._wants(f):
            self._http_line(f)

    def error(self, f: Any) -> None:
        self._ended(f)
        if self._wants(f):
            self._http_line(f)

    def _http_line(self, f: Any) -> None:
        req = f.request
        resp = f.response
        if not req.host:
            url = req.path or "?"  # refused before it had a URL (malformed): the target as sent
        else:
            url = req.pretty_url if (ctx.options is not None and ctx.options.showhost) else req.url
        if self.detail <= 1 and len(url) > SHORT_URL:
            url = url[: SHORT_URL - 1] + "…"
        parts = self._client(f)
        method_style = "bold" if req.method in ("GET", "HEAD") else "bold magenta"
        parts += [(" ", None), (req.method, method_style), (" ", None), (url, None)]
        if getattr(f, "is_replay", None) == "request":
            parts.insert(0, ("[replay] ", "yellow"))
        if resp is not None:
            code = resp.status_code
            style = "green" if code < 300 else "cyan" if code < 400 else "red" if code >= 500 else "yellow"
            reason = resp.reason or ""
            parts += [(" ", None), (f"{code}{(' ' + reason) if reason else ''}", style)]
            size = _body_size(resp, cut_off=f.error is not None)
            parts += [(" ", None), (size, None)]
            # A response that broke off has no end: the error's time is when it stopped.
            end = resp.timestamp_end or (f.error.timestamp if f.error is not None else None) or resp.timestamp_start
            took = pretty_duration(_elapsed(req.timestamp_start, end))
            if took:
                parts += [(" ", None), (took, "dim")]
        if f.error is not None:
            parts += [(" ", None), (f"<< {f.error.msg}", "bold red")]
        self.echo(parts)
        if self.detail >= 2:
            self._headers(req.headers, ">")
            if self.detail >= 3:
                self._body(req)
            if resp is not None:
                self._headers(resp.headers, "<")
                if self.detail >= 3:
                    self._body(resp)

    def _headers(self, headers: Any, arrow: str) -> None:
        for k, v in headers.items(multi=True) if hasattr(headers, "items") else []:
            self.echo([(f"{arrow} ", "dim"), (f"{k}: ", "blue"), (v, None)], indent=4)

    def _body(self, message: Any) -> None:
        if getattr(message, "raw_content", b"") is None:
            # Streamed (stream_large_bodies): not kept, so nothing to show, which must not
            # look like an empty body.
            if _may_have_body(message):
                self.echo([("(body streamed through, not recorded)", "dim")], indent=4)
            return
        try:
            content = message.get_content(strict=False) if hasattr(message, "get_content") else message.content
        except Exception:
            content = getattr(message, "raw_content", None)
        if not content:
            return
        headers = getattr(message, "headers", None)
        self._render(content, headers.get("content-type") if headers is not None else None)

    def _render(self, content: bytes, content_type: str | None = None, indent: int = 4) -> None:
        """The body through the content view; at detail 3 cut to TRUNCATE_BODY bytes and MAX_LINES."""
        cut = self.detail < 4
        shown = content[:TRUNCATE_BODY] if cut else content
        lines = _contentview(shown, content_type, _view_name())
        more_lines = cut and len(lines) > MAX_LINES
        if more_lines:
            lines = lines[:MAX_LINES]
        self._echo_lines(lines, indent=indent)
        if cut and (len(content) > TRUNCATE_BODY or more_lines):
            rest = f"{pretty_size(len(content) - TRUNCATE_BODY)} more" if len(content) > TRUNCATE_BODY else "more lines"
            self.echo([(f"(cut off, {rest}; --flow-detail 4 shows all)", "dim")], indent=indent)

    # -- WebSocket ---------------------------------------------------------------------

    def websocket_message(self, f: Any) -> None:
        if self.detail >= 3 and self._wants(f):
            m = f.websocket.messages[-1]
            self._message_line(m, getattr(m, "from_client", True), f, "WS ")

    def websocket_end(self, f: Any) -> None:
        self._ended(f)
        if self._wants(f):
            self._websocket_line(f)

    def _websocket_line(self, f: Any) -> None:
        ws = f.websocket
        parts = self._client(f) + [(" WS ", "bold"), (f.request.url, None)]
        parts += [(" ", None), (f"{len(ws.messages)} messages", None)]
        code = getattr(ws, "close_code", None)
        if code is not None:
            parts += [(f", closed {code}", "dim")]
            reason = getattr(ws, "close_reason", None)
            if reason:
                parts += [(f" {reason}", "dim")]
        if f.error is not None:
            parts += [(" ", None), (f"<< {f.error.msg}", "bold red")]
        self.echo(parts)

    # -- TCP / UDP ---------------------------------------------------------------------

    def tcp_message(self, f: Any) -> None:
        if self.detail >= 3 and self._wants(f):
            m = f.messages[-1]
            self._message_line(m, m.from_client, f)

    udp_message = tcp_message

    def tcp_end(self, f: Any) -> None:
        self._ended(f)
        if self._wants(f):
            self._stream_line(f, "TCP")

    def udp_end(self, f: Any) -> None:
        self._ended(f)
        if self._wants(f):
            self._stream_line(f, "UDP")

    def _stream_line(self, f: Any, kind: str) -> None:
        server = f.server_conn
        up = sum(len(m.content) for m in f.messages if m.from_client)
        down = sum(len(m.content) for m in f.messages if not m.from_client)
        parts = self._client(f) + [(f" {kind} ", "bold"), (format_address(server.address), None)]
        parts += [(" ", None), (f"{len(f.messages)} messages, {pretty_size(up)} up, {pretty_size(down)} down", None)]
        start = getattr(f.client_conn, "timestamp_start", None) or f.timestamp_created
        end = f.messages[-1].timestamp if f.messages else None
        took = pretty_duration(_elapsed(start, end))
        if took:
            parts += [(" ", None), (took, "dim")]
        if f.error is not None:
            parts += [(" ", None), (f"<< {f.error.msg}", "bold red")]
        self.echo(parts)

    def tcp_error(self, f: Any) -> None:
        # The error shows on the tcp_end line that follows.
        pass

    def _message_line(self, m: Any, from_client: bool, f: Any, kind: str = "") -> None:
        """A message as it passes: named by its flow's client and server, since the flow's
        own line comes only when it ends and other flows' messages interleave."""
        arrow = "->" if from_client else "<-"
        content = m.content if isinstance(m.content, bytes) else str(m.content).encode()
        server = getattr(getattr(f, "server_conn", None), "address", None)
        parts = self._client(f) + [(" ", None), (arrow, "green" if from_client else "blue"),
                                   (f" {kind}{format_address(server)} ", None),
                                   (pretty_size(len(content)), "dim")]
        self.echo(parts, indent=4)
        self._render(content, indent=6)

    # -- DNS ---------------------------------------------------------------------------

    def dns_response(self, f: Any) -> None:
        self._ended(f)
        if self._wants(f):
            self._dns_line(f)

    def dns_error(self, f: Any) -> None:
        self._ended(f)
        if self._wants(f):
            self._dns_line(f)

    def _dns_line(self, f: Any) -> None:
        parts = self._client(f) + [(" DNS ", "bold")]
        parts += [(_dns_question(f.request), None)]
        resp = f.response
        if resp is not None:
            answers = _dns_answers(resp)
            parts += [(" -> ", "dim"), (", ".join(answers) if answers else "(no answer)", None)]
            rcode = _dns_rcode(resp)
            if rcode:
                parts += [(" ", None), (rcode, "green" if rcode == "NOERROR" else "yellow")]
            took = pretty_duration(_elapsed(getattr(f.request, "timestamp", None), getattr(resp, "timestamp", None)))
            if took:
                parts += [(" ", None), (took, "dim")]
        if f.error is not None:
            parts += [(" ", None), (f"<< {f.error.msg}", "bold red")]
        self.echo(parts)


def _may_have_body(message: Any) -> bool:
    """False for a message whose head says it has no body (Content-Length 0, or a request
    with neither Content-Length nor Transfer-Encoding, which HTTP/1 reads as no body)."""
    headers = getattr(message, "headers", None)
    if headers is None:
        return True
    length = headers.get("content-length")
    if length is not None:
        return length.strip() != "0"
    is_request = hasattr(message, "method")
    return not is_request or "transfer-encoding" in headers


def _body_size(resp: Any, cut_off: bool = False) -> str:
    """The body's size; a streamed body is not kept, so its Content-Length is all we know,
    and when the flow ended in an error that length was announced, not delivered."""
    raw = getattr(resp, "raw_content", None)
    if raw is not None:
        return pretty_size(len(raw))
    length = resp.headers.get("content-length") if getattr(resp, "headers", None) is not None else None
    if length is not None and length.isdigit():
        return pretty_size(int(length)) + (" announced (streamed)" if cut_off else " (streamed)")
    return "streamed"


def _dns_question(message: Any) -> str:
    from gateway.net.dns import types

    if not message.questions:
        return "(no question)"
    q = message.questions[0]
    return f"{types.to_str(q.type)} {q.name or '.'}"


def _dns_answers(message: Any) -> list[str]:
    return [str(a) for a in message.answers]


def _dns_rcode(message: Any) -> str:
    from gateway.net.dns import response_codes

    return response_codes.to_str(message.response_code)


_STYLES = {"key": "blue", "value": "green", "offset": "dim", "header": "bold", "error": "red", "highlight": "bold"}


def _view_name() -> str:
    if ctx.options is not None and "dumper_default_contentview" in ctx.options:
        return ctx.options.dumper_default_contentview
    return "auto"


def _contentview(content: bytes, content_type: str | None, view: str = "auto") -> list[list[tuple[str, str]]]:
    """Render a body with the content views: lines of (style, text) pairs."""
    from gateway import contentviews

    try:
        _, lines = contentviews.get_content_view(view, content, content_type=content_type)
    except Exception:  # the live output must never break a flow
        logger.debug("content view failed", exc_info=True)
        _, lines = contentviews.get_content_view("hex", content)
    return [list(line) for line in lines]


def _compile_filter(expr: str | None) -> Callable[[Any], bool] | None:
    if not expr:
        return None
    from gateway.optmanager import OptionsError

    try:
        from gateway import flowfilter
    except ImportError:
        raise OptionsError("dumper_filter: filter expressions are not available in this build") from None
    try:
        filt = flowfilter.parse(expr)
    except Exception as e:
        raise OptionsError(f"dumper_filter: {e}") from None
    if filt is None:
        raise OptionsError(f"dumper_filter: invalid filter expression: {expr}")
    if callable(filt):
        return filt
    match = getattr(flowfilter, "match", None)
    if match is None:  # pragma: no cover
        raise OptionsError("dumper_filter: unsupported filter object")
    return lambda f: bool(match(filt, f))
