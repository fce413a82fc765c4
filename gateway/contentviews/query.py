"""The query parameters of a request URL, as aligned ``name: value`` lines."""

from __future__ import annotations

from typing import Any

from gateway.contentviews.base import TViewResult, View, format_pairs, format_text


class ViewQuery(View):
    name = "Query"

    def __call__(self, data: bytes, *, http_message: Any = None, **metadata: Any) -> TViewResult:
        query = getattr(http_message, "query", None)
        if query:
            return "Query", format_pairs(query.items(multi=True))
        return "Query (none)", format_text(data)

    def render_priority(self, data: bytes, *, http_message: Any = None, **metadata: Any) -> float:
        return 0.3 if not data and getattr(http_message, "query", None) else 0
