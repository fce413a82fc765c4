"""``anticache``: strip If-Modified-Since / If-None-Match so servers send full responses."""

from __future__ import annotations

from typing import Any

from gateway import ctx


class AntiCache:
    def load(self, loader: Any) -> None:
        loader.add_option(
            "anticache", bool, False,
            """
            Strip out request headers that might cause the server to return
            304-not-modified.
            """,
        )

    def request(self, flow: Any) -> None:
        if ctx.options.anticache:
            flow.request.anticache()
