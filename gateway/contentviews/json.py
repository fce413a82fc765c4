"""JSON, pretty-printed with two-space indents (also JSON Lines / NDJSON)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from gateway.contentviews.base import TViewLine, TViewResult, View, charset, format_text, mime_type, truncated

_JSON_TYPE = re.compile(r"^application/(.+\+)?json$|^text/json$|^application/(x-)?ndjson$|^application/jsonl?$")
_KEY_LINE = re.compile(r'^(\s*)("(?:[^"\\]|\\.)*")(: )(.*)$')


def _lines(obj: Any) -> Iterator[TViewLine]:
    for line in json.dumps(obj, indent=2, ensure_ascii=False).splitlines():
        m = _KEY_LINE.match(line)
        if m:
            yield [("text", m.group(1)), ("key", m.group(2)), ("text", m.group(3)), ("value", m.group(4))]
        else:
            yield [("value", line)]


def parse_json(data: bytes, content_type: str | None = None) -> list[Any]:
    """The JSON documents in ``data``: one, or one per line for JSON Lines. ValueError if none."""
    text = data.decode(charset(content_type))
    try:
        return [json.loads(text)]
    except ValueError:
        docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        if len(docs) < 2:
            raise
        return docs


class ViewJSON(View):
    name = "JSON"

    def __call__(self, data: bytes, *, content_type: str | None = None, **metadata: Any) -> TViewResult:
        shown, note = truncated(data)
        if note:
            return "JSON (too large to parse, shown raw)" + note, format_text(shown)
        docs = parse_json(data, content_type)
        if len(docs) == 1:
            return "JSON", _lines(docs[0])

        def all_lines() -> Iterator[TViewLine]:
            for i, doc in enumerate(docs):
                yield [("comment", f"# line {i + 1}")]
                yield from _lines(doc)

        return f"JSON Lines ({len(docs)} documents)", all_lines()

    def render_priority(self, data: bytes, *, content_type: str | None = None, **metadata: Any) -> float:
        if not data:
            return 0
        if _JSON_TYPE.match(mime_type(content_type)):
            return 1
        if data.lstrip()[:1] in (b"{", b"[") and len(data) <= 1 << 20:
            try:
                parse_json(data, content_type)
            except (ValueError, UnicodeDecodeError, LookupError):
                return 0
            return 0.5
        return 0
