"""``anticomp``: ask servers for uncompressed responses (Accept-Encoding: identity)."""

from __future__ import annotations

from typing import Any

from gateway import ctx


class AntiComp:
    def load(self, loader: Any) -> None:
        loader.add_option("anticomp", bool, False, "Try to convince servers to send us un-compressed data.")

    def request(self, flow: Any) -> None:
        if ctx.options.anticomp:
            flow.request.anticomp()
