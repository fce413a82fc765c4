"""XML and HTML, re-indented one element per line (malformed markup is shown, never refused).

A small regex tokenizer rather than an XML parser: bodies in the wild are often broken
HTML, and the view must show them as they are, with the tag case and attributes intact.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from gateway.contentviews.base import TViewLine, TViewResult, View, charset, mime_type, truncated

_TOKEN = re.compile(
    r"""
      (?P<comment><!--.*?(?:-->|\Z))
    | (?P<cdata><!\[CDATA\[.*?(?:\]\]>|\Z))
    | (?P<decl><![^>]*>?)
    | (?P<pi><\?.*?(?:\?>|\Z))
    | (?P<end></\s*(?P<endname>[^\s>]*)[^>]*>?)
    | (?P<start><(?P<name>[A-Za-z_][^\s/>]*)(?:"[^"]*"|'[^']*'|[^'">])*>)
    | (?P<text>[^<]+|<[^<]*)
    """,
    re.S | re.X,
)
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_RAW_TEXT = frozenset(("script", "style", "textarea", "pre"))
_INDENT = "  "
_INLINE_MAX = 80

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_XML_TYPE = re.compile(r"^(application|text)/(.+\+)?xml$|^image/svg\+xml$")


def _collapse(text: str) -> str:
    return " ".join(text.split())


def pretty(text: str, html: bool) -> Iterator[TViewLine]:
    tokens = list(_TOKEN.finditer(text))
    stack: list[str] = []
    i = 0
    while i < len(tokens):
        m = tokens[i]
        depth = _INDENT * len(stack)
        kind = m.lastgroup if m.lastgroup not in ("name", "endname") else None
        if m.group("start") is not None:
            tag = m.group("start")
            name = m.group("name")
            key = name.lower() if html else name
            self_closing = tag.endswith("/>") or (html and key in _VOID)
            if not self_closing and html and key in _RAW_TEXT:
                # Script and style bodies are not markup: show them as they are, indented.
                close = re.compile(r"</\s*" + re.escape(name) + r"\s*>", re.I).search(text, m.end())
                inner_end = close.start() if close else len(text)
                yield [("text", depth), ("tag", tag)]
                for line in _dedent(text[m.end() : inner_end]):
                    yield [("text", depth + _INDENT + line)]
                if close:
                    yield [("text", depth), ("tag", close.group())]
                while i < len(tokens) and tokens[i].start() < (close.end() if close else len(text)):
                    i += 1
                continue
            if self_closing:
                yield [("text", depth), ("tag", tag)]
                i += 1
                continue
            # <b>short text</b> stays on one line.
            if i + 2 < len(tokens) and tokens[i + 1].group("text") is not None and tokens[i + 2].group("end") is not None:
                inner = _collapse(tokens[i + 1].group())
                end_name = tokens[i + 2].group("endname")
                if (end_name.lower() if html else end_name) == key and len(tag) + len(inner) < _INLINE_MAX:
                    yield [("text", depth), ("tag", tag), ("text", inner), ("tag", tokens[i + 2].group())]
                    i += 3
                    continue
            yield [("text", depth), ("tag", tag)]
            stack.append(key)
            i += 1
            continue
        if m.group("end") is not None:
            name = m.group("endname")
            key = name.lower() if html else name
            if key in stack:
                while stack and stack.pop() != key:
                    pass
            yield [("text", _INDENT * len(stack)), ("tag", m.group())]
        elif m.group("text") is not None:
            collapsed = _collapse(m.group())
            if collapsed:
                yield [("text", depth + collapsed)]
        elif kind in ("comment", "cdata", "decl", "pi"):
            lines = m.group().splitlines() or [""]
            style = "comment" if kind == "comment" else "tag"
            yield [("text", depth), (style, lines[0].strip())]
            for line in lines[1:]:
                yield [("text", depth + _INDENT), (style, line.strip())]
        i += 1


def _dedent(block: str) -> list[str]:
    lines = [line.rstrip() for line in block.splitlines()]
    lines = [line for line in lines if line.strip()] if len(lines) > 1 else [line.strip() for line in lines if line.strip()]
    if not lines:
        return []
    common = min(len(line) - len(line.lstrip()) for line in lines)
    return [line[common:] for line in lines]


def _is_html(data: bytes, content_type: str | None) -> bool:
    mt = mime_type(content_type)
    if mt in _HTML_TYPES:
        return True
    if _XML_TYPE.match(mt):
        return False
    head = data[:512].lstrip().lower()
    return head.startswith(b"<!doctype html") or head.startswith(b"<html")


class ViewXmlHtml(View):
    name = "XML/HTML"

    def __call__(self, data: bytes, *, content_type: str | None = None, **metadata: Any) -> TViewResult:
        data, note = truncated(data)
        html = _is_html(data, content_type)
        text = data.decode(charset(content_type), "replace")
        return ("HTML" if html else "XML") + note, pretty(text, html)

    def render_priority(self, data: bytes, *, content_type: str | None = None, **metadata: Any) -> float:
        if not data:
            return 0
        mt = mime_type(content_type)
        if mt in _HTML_TYPES or _XML_TYPE.match(mt):
            return 1
        head = data[:512].lstrip().lower()
        if head.startswith((b"<?xml", b"<!doctype html", b"<html", b"<svg")):
            return 0.4
        return 0
