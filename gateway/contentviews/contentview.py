"""The class-based view API of current mitmproxy (``Contentview.prettify``), so custom views
written for it port by changing the import::

    from gateway import contentviews

    class SwapCase(contentviews.Contentview):
        def prettify(self, data: bytes, metadata: contentviews.Metadata) -> str:
            return data.swapcase().decode()

        def render_priority(self, data: bytes, metadata: contentviews.Metadata) -> float:
            return 2 if metadata.content_type == "text/example" else 0

    contentviews.add(SwapCase)

``add`` wraps such a view in a ``View`` (the line-based interface every view here speaks).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from gateway.contentviews.base import TViewResult, View, format_text


class SyntaxHighlight(enum.Enum):
    """What the prettified text is, for front ends that colour it (the terminal does not)."""

    NONE = "none"
    CSS = "css"
    JAVASCRIPT = "javascript"
    XML = "xml"
    YAML = "yaml"
    ERROR = "error"


@dataclass
class Metadata:
    """What a view may know about the data besides the bytes."""

    content_type: str | None = None
    flow: Any = None
    http_message: Any = None
    tcp_message: Any = None
    udp_message: Any = None
    websocket_message: Any = None
    dns_message: Any = None
    original_data: bytes | None = None


class Contentview:
    """Base of class-based views: implement ``prettify`` and, for the auto view, ``render_priority``."""

    syntax_highlight: SyntaxHighlight = SyntaxHighlight.NONE

    @property
    def name(self) -> str:
        return type(self).__name__.removesuffix("Contentview").lower() or "contentview"

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        raise NotImplementedError

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        return 0


class InteractiveContentview(Contentview):
    """A view whose prettified text can be edited and turned back into bytes."""

    def reencode(self, prettified: str, metadata: Metadata) -> bytes:
        raise NotImplementedError


def _metadata(data: bytes, meta: dict[str, Any]) -> Metadata:
    fields = {k: meta.get(k) for k in Metadata.__dataclass_fields__ if k != "original_data"}
    return Metadata(**fields, original_data=data)


class ContentviewAdapter(View):
    """Presents a ``Contentview`` as a ``View``."""

    def __init__(self, view: Contentview) -> None:
        self.view = view
        self.name = view.name

    def __call__(self, data: bytes, **metadata: Any) -> TViewResult:
        text = self.view.prettify(data, _metadata(data, metadata))
        return self.view.name, format_text(text)

    def render_priority(self, data: bytes, **metadata: Any) -> float:
        return float(self.view.render_priority(data, _metadata(data, metadata)))
