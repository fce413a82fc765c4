"""The body as it is: text lines (control characters escaped)."""

from __future__ import annotations

from typing import Any

from gateway.contentviews.base import TViewResult, View, format_text, looks_like_text, truncated


class ViewRaw(View):
    name = "Raw"

    def __call__(self, data: bytes, **metadata: Any) -> TViewResult:
        data, note = truncated(data)
        return "Raw" + note, format_text(data)

    def render_priority(self, data: bytes, **metadata: Any) -> float:
        return 0.1 if data and looks_like_text(data) else 0
