"""``block_list``: answer matching requests with a fixed status code, or kill them
(status 444, nginx's "no response"), as mitmproxy's option.

Specs are ``/flow-filter/status-code`` (any separator character).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from gateway import ctx, flowfilter
from gateway.optmanager import OptionsError

NO_RESPONSE = 444


class BlockSpec(NamedTuple):
    matches: Any
    status_code: int


def parse_spec(option: str) -> BlockSpec:
    if not option:
        raise ValueError("empty spec")
    sep, rem = option[0], option[1:]
    parts = rem.split(sep, 2)
    if len(parts) != 2:
        raise ValueError("Invalid number of parameters (2 are expected)")
    flow_patt, status = parts
    try:
        status_code = int(status)
    except ValueError:
        raise ValueError(f"Invalid HTTP status code: {status}") from None
    if not 100 <= status_code <= 599 and status_code != NO_RESPONSE:
        raise ValueError(f"Invalid HTTP status code: {status}")
    return BlockSpec(flowfilter.parse(flow_patt), status_code)


class BlockList:
    def __init__(self) -> None:
        self.items: list[BlockSpec] = []

    def load(self, loader: Any) -> None:
        loader.add_option(
            "block_list", Sequence[str], [],
            """
            Block matching requests and return an empty response with the specified HTTP status.
            Option syntax is "/flow-filter/status-code", where flow-filter describes
            which requests this rule should be applied to and status-code is the HTTP status code to return for
            blocked requests. The separator ("/" in the example) can be any character.
            Setting a non-standard status code of 444 will close the connection without sending a response.
            """,
        )

    def configure(self, updated: set[str]) -> None:
        if "block_list" in updated:
            items = []
            for option in ctx.options.block_list:
                try:
                    items.append(parse_spec(option))
                except ValueError as e:
                    raise OptionsError(f"Cannot parse block_list option {option}: {e}") from e
            self.items = items

    def request(self, flow: Any) -> None:
        if flow.response or flow.error or not flow.live:
            return
        for spec in self.items:
            if spec.matches(flow):
                flow.metadata["blocklisted"] = True
                if spec.status_code == NO_RESPONSE:
                    flow.kill()
                else:
                    from gateway.http import Response

                    flow.response = Response.make(spec.status_code)
                return
