"""application/x-www-form-urlencoded bodies as aligned ``name: value`` lines."""

from __future__ import annotations

import urllib.parse
from typing import Any

from gateway.contentviews.base import TViewResult, View, format_pairs, mime_type


class ViewURLEncoded(View):
    name = "URL-encoded"

    def __call__(self, data: bytes, **metadata: Any) -> TViewResult:
        text = data.decode("ascii", "surrogateescape")
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, errors="surrogateescape")
        if not pairs:
            raise ValueError("not a URL-encoded form")
        shown = [(k.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
                  v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")) for k, v in pairs]  # fmt: skip
        return "URL-encoded form", format_pairs(shown)

    def render_priority(self, data: bytes, *, content_type: str | None = None, **metadata: Any) -> float:
        return 1 if data and mime_type(content_type) == "application/x-www-form-urlencoded" else 0
