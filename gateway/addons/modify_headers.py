"""``modify_headers``: set or remove headers, mitmproxy's option and semantics.

Each spec is ``[/flow-filter]/name/value`` (any character not in the parts may replace
``/``): in requests and responses that match, every ``name`` header is removed, then set
to ``value`` unless it is empty; ``@path`` reads the value from a file.  The spec parser
here is shared by modify_body, map_remote and map_local, as in mitmproxy.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from gateway import ctx, flowfilter
from gateway.optmanager import OptionsError

log = logging.getLogger(__name__)


def escaped_str_to_bytes(value: str) -> bytes:
    """``"\\x00abc\\n"`` -> the bytes it spells (Python escapes), as mitmproxy's strutils."""
    return codecs.escape_decode(value.encode("utf-8", "surrogateescape"))[0]  # type: ignore[attr-defined]


def _match_all(flow: Any) -> bool:
    return True


def parse_spec(option: str) -> tuple[Any, str, str]:
    """``[/flow-filter]/subject/replacement`` -> (filter, subject, replacement)."""
    if not option:
        raise ValueError("empty spec")
    sep, rem = option[0], option[1:]
    parts = rem.split(sep, 2)
    if len(parts) == 2:
        subject, replacement = parts
        return _match_all, subject, replacement
    if len(parts) == 3:
        patt, subject, replacement = parts
        return flowfilter.parse(patt), subject, replacement
    raise ValueError("Invalid number of parameters (2 or 3 are expected)")


class ModifySpec(NamedTuple):
    matches: Any
    subject: bytes
    replacement_str: str

    def read_replacement(self) -> bytes:
        if self.replacement_str.startswith("@"):
            return Path(self.replacement_str[1:]).expanduser().read_bytes()
        return escaped_str_to_bytes(self.replacement_str)


def parse_modify_spec(option: str, subject_is_regex: bool) -> ModifySpec:
    flow_filter, subject_str, replacement = parse_spec(option)
    subject = escaped_str_to_bytes(subject_str)
    if subject_is_regex:
        try:
            re.compile(subject)
        except re.error as e:
            raise ValueError(f"Invalid regular expression {subject!r} ({e})") from None
    spec = ModifySpec(flow_filter, subject, replacement)
    try:
        spec.read_replacement()
    except OSError as e:
        raise ValueError(f"Invalid file path: {replacement[1:]} ({e})") from None
    return spec


class ModifyHeaders:
    def __init__(self) -> None:
        self.replacements: list[ModifySpec] = []

    def load(self, loader: Any) -> None:
        loader.add_option(
            "modify_headers", Sequence[str], [],
            """
            Header modify pattern of the form "[/flow-filter]/header-name/[@]header-value", where
            the separator can be any character. The @ allows to provide a file path that is used
            to read the header value string. An empty header-value removes existing header-name
            headers.
            """,
        )

    def configure(self, updated: set[str]) -> None:
        if "modify_headers" in updated:
            specs = []
            for option in ctx.options.modify_headers:
                try:
                    specs.append(parse_modify_spec(option, False))
                except ValueError as e:
                    raise OptionsError(f"Cannot parse modify_headers option {option}: {e}") from e
            self.replacements = specs

    def requestheaders(self, flow: Any) -> None:
        if flow.response or flow.error or not flow.live:
            return
        self.run(flow, flow.request.headers)

    def responseheaders(self, flow: Any) -> None:
        if flow.error or not flow.live:
            return
        self.run(flow, flow.response.headers)

    def run(self, flow: Any, hdrs: Any) -> None:
        # Check every filter against the unmodified flow first.
        matches = [spec.matches(flow) for spec in self.replacements]
        for spec, m in zip(self.replacements, matches, strict=True):
            if m:
                hdrs.pop(spec.subject.decode("utf-8", "surrogateescape"), None)
        for spec, m in zip(self.replacements, matches, strict=True):
            if m:
                try:
                    replacement = spec.read_replacement()
                except OSError as e:
                    log.warning(f"Could not read replacement file: {e}")
                    continue
                if replacement:
                    hdrs.add(spec.subject.decode("utf-8", "surrogateescape"), replacement.decode("utf-8", "surrogateescape"))
