"""A classic hex dump (the layout of ``hexdump -C``): offset, 16 bytes in hex, the ASCII beside them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gateway.contentviews.base import TViewLine, TViewResult, View, looks_like_text, truncated

_ASCII = bytes(c if 32 <= c < 127 else ord(".") for c in range(256))


def hexdump(data: bytes) -> Iterator[TViewLine]:
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        hexpart = "  ".join(chunk[i : i + 8].hex(" ") for i in range(0, len(chunk), 8))
        yield [
            ("offset", f"{offset:08x}  "),
            ("text", f"{hexpart:<48}  "),
            ("text", chunk.translate(_ASCII).decode("ascii")),
        ]


class ViewHex(View):
    name = "Hex"

    def __call__(self, data: bytes, **metadata: Any) -> TViewResult:
        data, note = truncated(data)
        return "Hex" + note, hexdump(data)

    def render_priority(self, data: bytes, **metadata: Any) -> float:
        return 0.05 if data and not looks_like_text(data) else 0
