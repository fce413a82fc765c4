"""The view interface and the line format every view produces.

A rendered body is a description (what the view made of the data, e.g. "JSON" or
"PNG image") and a list of lines; a line is a list of ``(style, text)`` fragments, so a
terminal front end can colour keys, offsets or errors without re-parsing anything. The
styles used are: text, key, value, header, offset, error, comment, tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

TViewLine = list[tuple[str, str]]
TViewResult = tuple[str, Iterator[TViewLine]]

# A view renders at most this many bytes: bodies can be huge and the terminal is not.
MAX_RENDER_BYTES = 512 * 1024


class View:
    """A body renderer. Subclasses set ``name`` and implement ``__call__`` and, to take
    part in the auto view, ``render_priority``."""

    name: str = ""

    def __call__(
        self,
        data: bytes,
        *,
        content_type: str | None = None,
        flow: Any = None,
        http_message: Any = None,
        **unknown_metadata: Any,
    ) -> TViewResult:
        raise NotImplementedError

    def render_priority(
        self,
        data: bytes,
        *,
        content_type: str | None = None,
        flow: Any = None,
        http_message: Any = None,
        **unknown_metadata: Any,
    ) -> float:
        """How well this view suits the data: 0 not at all, 1 made for it (the auto view
        picks the highest)."""
        return 0

    def __repr__(self) -> str:
        return f"<View {self.name}>"


def mime_type(content_type: str | None) -> str:
    """``"Text/HTML; charset=utf-8"`` -> ``"text/html"``."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def charset(content_type: str | None, default: str = "utf-8") -> str:
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            name = value.strip().strip('"')
            try:
                "".encode(name)
                return name
            except LookupError:
                break
    return default


def format_text(text: str | bytes) -> Iterator[TViewLine]:
    """One line per line of text; bytes are decoded as UTF-8 with replacement.

    Lines end at LF (CRLF too) only: other characters str.splitlines() would split on
    (form feed, U+2028...) are shown escaped instead, as they are in the data.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if text.endswith("\n"):
        text = text[:-1]
    if not text:
        return
    for line in text.split("\n"):
        yield [("text", _printable(line[:-1] if line.endswith("\r") else line))]


def format_pairs(items: Iterable[tuple[str, str]]) -> Iterator[TViewLine]:
    """Aligned ``key: value`` lines; multi-line values continue under the value column."""
    items = list(items)
    width = min(max((len(k) for k, _ in items), default=0), 40)
    for key, value in items:
        lines = str(value).splitlines() or [""]
        yield [("key", f"{_printable(key) + ':':<{width + 1}} "), ("value", _printable(lines[0]))]
        for more in lines[1:]:
            yield [("text", " " * (width + 2)), ("value", _printable(more))]


def format_dict(d: Mapping[str, Any]) -> Iterator[TViewLine]:
    return format_pairs((str(k), str(v)) for k, v in d.items())


def looks_like_text(data: bytes) -> bool:
    """True if ``data`` is UTF-8 with few control characters (a heuristic for raw vs hex)."""
    sample = data[:4096]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as e:
        # A multi-byte character cut at the end of the sample is fine.
        if e.start < len(sample) - 3:
            return False
        text = sample[: e.start].decode("utf-8")
    if not text:
        return True
    control = sum(1 for c in text if (ord(c) < 32 and c not in "\t\r\n\f") or ord(c) == 127)
    return control / len(text) < 0.05


_CONTROL = {i: f"\\x{i:02x}" for i in [*range(32), 127, *range(0x80, 0xA0)] if chr(i) != "\t"}


def _printable(s: str) -> str:
    """Escape control characters so a body cannot drive the terminal."""
    return s.translate(_CONTROL)


def truncated(data: bytes) -> tuple[bytes, str]:
    """``data`` cut to MAX_RENDER_BYTES, and a note to add to the description if it was cut."""
    if len(data) > MAX_RENDER_BYTES:
        return data[:MAX_RENDER_BYTES], f" (first {MAX_RENDER_BYTES // 1024} KiB of {len(data)} bytes)"
    return data, ""
