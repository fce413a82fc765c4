"""``modify_body``: regex replacements in request and response bodies (mitmproxy's option).

Specs are ``[/flow-filter]/regex/[@]replacement``.  Streamed bodies (``content is None``)
cannot be changed and are left alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from gateway import ctx
from gateway.addons.modify_headers import ModifySpec, parse_modify_spec
from gateway.optmanager import OptionsError

log = logging.getLogger(__name__)


class ModifyBody:
    def __init__(self) -> None:
        self.replacements: list[ModifySpec] = []
        self._warned: tuple[Any, ...] | None = None

    def load(self, loader: Any) -> None:
        loader.add_option(
            "modify_body", Sequence[str], [],
            """
            Replacement pattern of the form "[/flow-filter]/regex/[@]replacement", where
            the separator can be any character. The @ allows to provide a file path that
            is used to read the replacement string.
            """,
        )

    def configure(self, updated: set[str]) -> None:
        if "modify_body" in updated:
            specs = []
            for option in ctx.options.modify_body:
                try:
                    specs.append(parse_modify_spec(option, True))
                except ValueError as e:
                    raise OptionsError(f"Cannot parse modify_body option {option}: {e}") from e
            self.replacements = specs
        if updated & {"modify_body", "stream_large_bodies"}:
            stream = getattr(ctx.options, "stream_large_bodies", None)
            warning = (tuple(ctx.options.modify_body), stream) if self.replacements and stream else None
            # Once per setting: configure runs when the option is set and again at startup.
            if warning is not None and warning != self._warned:
                log.warning(
                    "modify_body is not applied to bodies larger than stream_large_bodies (%s).", stream
                )
            self._warned = warning

    def request(self, flow: Any) -> None:
        if flow.response or flow.error or not flow.live:
            return
        self.run(flow)

    def response(self, flow: Any) -> None:
        if flow.error or not flow.live:
            return
        self.run(flow)

    def run(self, flow: Any) -> None:
        for spec in self.replacements:
            if not spec.matches(flow):
                continue
            try:
                replacement = spec.read_replacement()
            except OSError as e:
                log.warning(f"Could not read replacement file: {e}")
                continue
            message = flow.response if flow.response else flow.request
            if message.raw_content is None:
                continue
            message.content = re.sub(spec.subject, replacement, message.content, flags=re.DOTALL)
