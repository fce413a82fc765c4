"""multipart/form-data bodies: one block per part with its name, file name, type and value."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gateway.contentviews.base import TViewLine, TViewResult, View, format_pairs, looks_like_text, mime_type
from gateway.net.http.headers import parse_content_type

_PARAM = re.compile(r'\b(name|filename)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))', re.I)
_PREVIEW = 2000


def parse_parts(content_type: str | None, data: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Each part's headers (lower-case names) and body; ValueError if this is no multipart."""
    ct = parse_content_type(content_type or "")
    boundary = ct[2].get("boundary") if ct else None
    if not boundary:
        raise ValueError("no multipart boundary in the content type")
    delimiter = b"\r\n--" + boundary.encode("ascii", "replace")
    chunks = (b"\r\n" + data).split(delimiter)
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, body = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = {}
        for line in head.split(b"\r\n"):
            name, colon, value = line.partition(b":")
            if colon:
                headers[name.strip().decode("latin-1").lower()] = value.strip().decode("utf-8", "replace")
        parts.append((headers, body))
    if not parts:
        raise ValueError("no multipart parts found")
    return parts


class ViewMultipart(View):
    name = "Multipart Form"

    def __call__(self, data: bytes, *, content_type: str | None = None, **metadata: Any) -> TViewResult:
        parts = parse_parts(content_type, data)

        def lines() -> Iterator[TViewLine]:
            for i, (headers, body) in enumerate(parts):
                params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
                          for m in _PARAM.finditer(headers.get("content-disposition", ""))}  # fmt: skip
                yield [("header", f"part {i + 1}")]
                info = [("name", params.get("name", ""))]
                if "filename" in params:
                    info.append(("filename", params["filename"]))
                if "content-type" in headers:
                    info.append(("content-type", headers["content-type"]))
                info.append(("size", f"{len(body)} bytes"))
                if looks_like_text(body):
                    value = body[:_PREVIEW].decode("utf-8", "replace")
                    info.append(("value", value + (" [...]" if len(body) > _PREVIEW else "")))
                else:
                    info.append(("value", f"<{len(body)} bytes of binary data>"))
                yield from format_pairs(info)

        return f"Multipart form ({len(parts)} parts)", lines()

    def render_priority(self, data: bytes, *, content_type: str | None = None, **metadata: Any) -> float:
        return 1 if data and mime_type(content_type) == "multipart/form-data" else 0
