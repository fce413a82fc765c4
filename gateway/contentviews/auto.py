"""The auto view: the registered view that rates the data highest, else raw text or hex."""

from __future__ import annotations

from typing import Any

from gateway.contentviews.base import TViewResult, View, looks_like_text


class ViewAuto(View):
    name = "Auto"

    def __init__(self, registry: list[View]) -> None:
        self.registry = registry

    def choose(self, data: bytes, **metadata: Any) -> View:
        best: View | None = None
        best_priority = 0.0
        for view in self.registry:
            if view is self:
                continue
            try:
                priority = view.render_priority(data, **metadata)
            except Exception:  # a third-party view must not break rendering
                priority = 0
            if priority > best_priority:
                best, best_priority = view, priority
        if best is not None:
            return best
        return self._fallback(data)

    def _fallback(self, data: bytes) -> View:
        name = "Raw" if looks_like_text(data) else "Hex"
        return next(v for v in self.registry if v.name == name)

    def __call__(self, data: bytes, **metadata: Any) -> TViewResult:
        return self.choose(data, **metadata)(data, **metadata)
