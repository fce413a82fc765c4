"""``map_remote``: rewrite request URLs with a regex (mitmproxy's option and semantics).

Specs are ``[/flow-filter]/url-regex/replacement``; the regex is applied to the full
``pretty_url`` and, if that changes it, the request goes to the new URL (scheme, host,
port, path; the Host header follows).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from gateway import ctx
from gateway.addons.modify_headers import parse_spec
from gateway.optmanager import OptionsError


class MapRemoteSpec(NamedTuple):
    matches: Any
    subject: str
    replacement: str


def parse_map_remote_spec(option: str) -> MapRemoteSpec:
    spec = MapRemoteSpec(*parse_spec(option))
    try:
        re.compile(spec.subject)
    except re.error as e:
        raise ValueError(f"Invalid regular expression {spec.subject!r} ({e})") from None
    return spec


class MapRemote:
    def __init__(self) -> None:
        self.replacements: list[MapRemoteSpec] = []

    def load(self, loader: Any) -> None:
        loader.add_option(
            "map_remote", Sequence[str], [],
            """
            Map remote resources to another remote URL using a pattern of the form
            "[/flow-filter]/url-regex/replacement", where the separator can
            be any character.
            """,
        )

    def configure(self, updated: set[str]) -> None:
        if "map_remote" in updated:
            specs = []
            for option in ctx.options.map_remote:
                try:
                    specs.append(parse_map_remote_spec(option))
                except ValueError as e:
                    raise OptionsError(f"Cannot parse map_remote option {option}: {e}") from e
            self.replacements = specs

    def request(self, flow: Any) -> None:
        if flow.response or flow.error or not flow.live:
            return
        for spec in self.replacements:
            if spec.matches(flow):
                url = flow.request.pretty_url
                new_url = re.sub(spec.subject, spec.replacement, url)
                # Setting .url also rewrites the Host header: only do it on a change.
                if url != new_url:
                    flow.request.url = new_url
