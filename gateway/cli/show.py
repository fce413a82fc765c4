"""``gateway show FILE [FILTER]``: list, inspect and export the flows of a flow file.

The listing is the live output of ``gateway up`` (the same dumper addon renders it), so a
saved session reads exactly like it looked while running. ``--curl``, ``--raw`` and
``--har`` export the matching flows instead of listing them.

A file that is not a flow file, or of another format version, is refused with one line
and exit status 1. A damaged file lists every flow before the damage, then says where the
damage is and exits with status 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import IO, Any

EXIT_OK = 0
EXIT_BAD_FILE = 1
EXIT_USAGE = 2


def _epilog() -> str:
    from gateway import flowfilter

    width = max(len(token) for token, _ in flowfilter.help)
    table = "\n".join(f"  {token:<{width}}  {text}" for token, text in flowfilter.help)
    return f"""\
filter expressions (regexes are case-insensitive; quote the whole filter for the shell):
{table}

examples:
  gateway show flows.gwf                            every flow, one line each
  gateway show flows.gwf '~d example.com & ~c 404'  not-found answers from example.com
  gateway show flows.gwf '~tcp | ~udp' --detail 3   raw TCP/UDP flows with their messages
  gateway show flows.gwf '~m POST' --curl           curl commands that send the POSTs again
  gateway show flows.gwf --har session.har          every HTTP flow as a HAR 1.2 file
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "show",
        help="list, filter and export the flows of a saved flow file (gateway up -w FILE)",
        description=(
            "List the flows of a flow file written by 'gateway up --save FILE', one line per "
            "flow, optionally only those matching a filter expression; or export them as curl "
            "commands, raw HTTP or HAR."
        ),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="the flow file ('-' reads standard input)")
    p.add_argument("filter", metavar="FILTER", nargs="*", help="filter expression (words are joined with spaces)")
    p.add_argument(
        "-d", "--detail", type=int, default=1, choices=range(5), metavar="N",
        help="0 only the count, 1 one line per flow (default), 2 with headers, 3 with bodies "
             "and messages (cut short), 4 with whole bodies",
    )  # fmt: skip
    p.add_argument("--view", default="auto", metavar="NAME",
                   help="content view for bodies at --detail 3 and 4 (auto, raw, hex, json, xml, ...)")
    export = p.add_mutually_exclusive_group()
    export.add_argument("--curl", action="store_true", help="print a curl command for each HTTP flow")
    export.add_argument("--raw", action="store_true", help="print each HTTP flow as raw HTTP/1 request and response")
    export.add_argument("--har", metavar="OUT", help="write the HTTP flows as HAR 1.2 to OUT ('-' for stdout)")
    return p


class _CountingWriter:
    """Passes writes through to ``out`` and counts them, to tell whether a flow printed."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return self.out.write(s)

    def flush(self) -> None:
        self.out.flush()

    def isatty(self) -> bool:
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.out, name)


def _error(message: str) -> None:
    print(f"gateway show: error: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from gateway import contentviews, flowfilter
    from gateway.io import FlowReader, FlowReadException

    expr = " ".join(args.filter).strip()
    try:
        flt = flowfilter.parse(expr) if expr else None
    except ValueError as e:
        _error(f"bad filter: {e}")
        return EXIT_USAGE
    if contentviews.get(args.view) is None:
        known = ", ".join(v.name.lower() for v in contentviews.views)
        _error(f"unknown content view {args.view!r} (known: {known})")
        return EXIT_USAGE

    try:
        fo: IO[bytes] = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    except OSError as e:
        _error(f"{args.file}: {e.strerror or e}")
        return EXIT_BAD_FILE

    total = 0
    shown: list[Any] = []
    damage: str | None = None

    def matching() -> Iterator[Any]:
        nonlocal total, damage
        try:
            for f in FlowReader(fo).stream():
                total += 1
                if flt is None or flt(f):
                    shown.append(None)
                    yield f
        except FlowReadException as e:
            damage = str(e)

    try:
        if args.har:
            status = _har(args.har, matching())
        elif args.curl or args.raw:
            status = _export(matching(), "curl" if args.curl else "raw")
        else:
            status = _list(matching(), args.detail, args.view)
    finally:
        if fo is not sys.stdin.buffer:
            fo.close()

    if damage is not None:
        _error(f"{args.file}: {damage}")
        return EXIT_BAD_FILE
    if status:
        return status
    what = "flow" if total == 1 else "flows"
    if flt is not None:
        print(f"{len(shown)} of {total} {what} match {flt.pattern}", file=sys.stderr)
    elif args.detail == 0 and not (args.har or args.curl or args.raw):
        print(f"{total} {what}", file=sys.stderr)
    return EXIT_OK


def _list(flows: Iterator[Any], detail: int, view: str) -> int:
    from gateway import hooks
    from gateway.addons.dumper import Dumper
    from gateway.master import Master
    from gateway.options import Options

    out = _CountingWriter(sys.stdout)
    master = Master(Options())
    dumper = Dumper(out)  # type: ignore[arg-type]
    master.addons.add(dumper)
    master.options.update(flow_detail=max(detail, 1), dumper_default_contentview=view)
    fallback = {"http": "response", "dns": "dns_response", "tcp": "tcp_end", "udp": "udp_end"}
    for f in flows:
        if detail == 0:
            continue
        before = out.writes
        seen: set[str] = set()
        for event in hooks.event_sequence(f):
            if event.name in ("tcp_end", "udp_end") and f.error is not None and seen:
                continue  # the error hook already printed this flow's line
            if event.name == "response" and f.error is not None and not getattr(f, "websocket", None):
                continue  # the error hook prints the line, response included (live output does too)
            method = getattr(dumper, event.name, None)
            if method is None:
                continue
            if event.name == "response" and getattr(f, "websocket", None) is not None and f.error is not None:
                # The upgrade's line, as live output printed it when the 101 came: the error
                # belongs to the WebSocket and shows on its end line.
                error, f.error = f.error, None
                try:
                    method(*event.args())
                finally:
                    f.error = error
            else:
                method(*event.args())
            seen.add(event.name)
        if out.writes == before and getattr(f, "type", None) in fallback:
            # A flow that never finished (no response yet): list it anyway.
            getattr(dumper, fallback[f.type])(f)
    return EXIT_OK


def _export(flows: Iterator[Any], kind: str) -> int:
    from gateway import export

    skipped = unrecorded = 0
    for f in flows:
        if getattr(f, "type", None) != "http" or f.request is None:
            skipped += 1
            continue
        unrecorded += export.bodies_not_recorded(f)
        if kind == "curl":
            print(export.curl_command(f))
        else:
            sys.stdout.buffer.write(export.raw(f) + b"\n\n")
            sys.stdout.flush()
    if skipped:
        print(f"({skipped} non-HTTP flows have no {kind} form and were left out)", file=sys.stderr)
    if unrecorded:
        print(f"({unrecorded} flow{' had a body' if unrecorded == 1 else 's had bodies'} streamed through "
              f"unrecorded: {'its export has' if unrecorded == 1 else 'their exports have'} no body)",
              file=sys.stderr)
    return EXIT_OK


def _har(path: str, flows: Iterator[Any]) -> int:
    from gateway import export

    try:
        if path == "-":
            n = export.write_har(flows, sys.stdout)
        else:
            with open(path, "w", encoding="utf-8") as out:
                n = export.write_har(flows, out)
    except OSError as e:
        _error(f"cannot write {path}: {e.strerror or e}")
        return EXIT_BAD_FILE
    if path != "-":
        print(f"wrote {n} HAR {'entry' if n == 1 else 'entries'} to {path}", file=sys.stderr)
    return EXIT_OK
