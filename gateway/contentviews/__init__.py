"""Readable renderings of message bodies for the terminal, as ``mitmproxy.contentviews``.

::

    description, lines = contentviews.get_content_view("auto", body, content_type="application/json")
    for line in lines:
        print("".join(text for style, text in line))

Views: Auto (picks by content type, then by sniffing the data), Raw, Hex, JSON,
URL-encoded, Multipart Form, XML/HTML, Image (metadata only), Query. A view that cannot
parse the data never fails the caller: the result falls back to Raw (or Hex for binary)
and the description says so. Addons can register their own ``View`` with ``add``.
"""

from __future__ import annotations

import re
from typing import Any

from gateway.contentviews.auto import ViewAuto
from gateway.contentviews.base import (
    TViewLine,
    TViewResult,
    View,
    format_dict,
    format_pairs,
    format_text,
    looks_like_text,
)
from gateway.contentviews.contentview import (
    Contentview,
    ContentviewAdapter,
    InteractiveContentview,
    Metadata,
    SyntaxHighlight,
)
from gateway.contentviews.hex import ViewHex
from gateway.contentviews.image import ViewImage
from gateway.contentviews.json import ViewJSON
from gateway.contentviews.multipart import ViewMultipart
from gateway.contentviews.query import ViewQuery
from gateway.contentviews.raw import ViewRaw
from gateway.contentviews.urlencoded import ViewURLEncoded
from gateway.contentviews.xml_html import ViewXmlHtml

__all__ = [
    "View", "TViewLine", "TViewResult", "views", "get", "add", "remove", "get_content_view",
    "get_message_content_view", "format_text", "format_dict", "format_pairs",
    "Contentview", "InteractiveContentview", "Metadata", "SyntaxHighlight",
]  # fmt: skip

views: list[View] = []


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_ALIASES = {"xml": "xmlhtml", "html": "xmlhtml", "multipart": "multipartform", "form": "urlencoded",
            "image": "image", "img": "image"}  # fmt: skip


def get(name: str) -> View | None:
    """The view called ``name`` (case and punctuation ignored: "json", "XML/HTML", "xml")."""
    key = _key(name)
    key = _ALIASES.get(key, key)
    for view in views:
        if _key(view.name) == key:
            return view
    return None


def _as_view(view: View | Contentview | type[Contentview]) -> View:
    if isinstance(view, type) and issubclass(view, Contentview):
        view = view()
    if isinstance(view, Contentview):
        return ContentviewAdapter(view)
    return view


def add(view: View | Contentview | type[Contentview]) -> None:
    """Register a view (a ``View``, or a mitmproxy-style ``Contentview`` class or instance);
    a view with the same name is replaced."""
    view = _as_view(view)
    existing = get(view.name)
    if existing is not None:
        views.remove(existing)
    views.append(view)


def remove(view: View | Contentview | type[Contentview]) -> None:
    """Unregister a view (or the view with that one's name)."""
    if view in views:
        views.remove(view)  # type: ignore[arg-type]
        return
    name = view.name if not isinstance(view, type) else _as_view(view).name
    existing = get(name)  # type: ignore[arg-type]
    if existing is None:
        raise ValueError(f"content view {name!r} is not registered")
    views.remove(existing)


def get_content_view(
    viewmode: View | str,
    data: bytes,
    *,
    content_type: str | None = None,
    flow: Any = None,
    http_message: Any = None,
    **metadata: Any,
) -> tuple[str, list[TViewLine]]:
    """Render ``data`` with a view (or its name): ``(description, lines)``. Never raises for
    bad data: a view that fails gives way to Raw or Hex, and the description says why."""
    view = get(viewmode) if isinstance(viewmode, str) else viewmode
    if view is None:
        raise ValueError(f"unknown content view {viewmode!r}; known: {', '.join(v.name for v in views)}")
    meta = dict(metadata, content_type=content_type, flow=flow, http_message=http_message)
    if isinstance(view, ViewAuto):
        view = view.choose(data, **meta)
    try:
        description, lines = view(data, **meta)
        return description, list(lines)
    except Exception as e:
        fallback = get("Raw") if looks_like_text(data) else get("Hex")
        assert fallback is not None
        description, lines = fallback(data, **meta)
        return f"Couldn't parse as {view.name} ({e}): {description}", list(lines)


def get_message_content_view(viewmode: View | str, message: Any, flow: Any = None) -> tuple[str, list[TViewLine]]:
    """Render an HTTP request/response body (decoded if it can be) or a TCP/UDP/WebSocket message."""
    headers = getattr(message, "headers", None)
    content_type = headers.get("content-type") if headers is not None else None
    get_content = getattr(message, "get_content", None)
    note = ""
    if get_content is not None:
        data = get_content(strict=False) or b""
        if headers is not None and headers.get("content-encoding") and data == (message.raw_content or b""):
            note = f" [cannot decode {headers['content-encoding']}: shown as received]"
    else:
        data = message.content
    description, lines = get_content_view(
        viewmode, data, content_type=content_type, flow=flow, http_message=message if headers is not None else None
    )
    return description + note, lines


for _view in (ViewRaw(), ViewHex(), ViewJSON(), ViewURLEncoded(), ViewMultipart(), ViewXmlHtml(), ViewImage(),
              ViewQuery()):  # fmt: skip
    add(_view)
add(ViewAuto(views))
