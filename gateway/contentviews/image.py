"""Images by their metadata (format, dimensions, depth...) read from the file header.

Only headers are parsed, with bounds checked at every step, so no image library is
needed and a hostile image costs nothing to describe.
"""

from __future__ import annotations

import struct
from typing import Any

from gateway.contentviews.base import TViewResult, View, format_pairs

_PNG_COLOR = {0: "grayscale", 2: "RGB", 3: "palette", 4: "grayscale + alpha", 6: "RGBA"}
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_MAX_CHUNKS = 256


def _png(data: bytes) -> tuple[str, list[tuple[str, str]]]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ValueError("PNG without an IHDR chunk")
    width, height, depth, color, _, _, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    info = [("Size", f"{width} x {height} px"), ("Bit depth", str(depth)),
            ("Color type", _PNG_COLOR.get(color, f"unknown ({color})")),
            ("Interlaced", "yes (Adam7)" if interlace else "no")]  # fmt: skip
    pos = 8
    chunks = 0
    frames = None
    while pos + 8 <= len(data) and chunks < _MAX_CHUNKS:
        length, ctype = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        if ctype == b"tEXt" and b"\x00" in body:
            key, _, value = body.partition(b"\x00")
            info.append((key.decode("latin-1"), value[:200].decode("latin-1")))
        elif ctype == b"acTL" and len(body) >= 4:
            frames = struct.unpack_from(">I", body)[0]
        elif ctype == b"IEND":
            break
        pos += 12 + length
        chunks += 1
    if frames is not None:
        info.append(("Animation", f"{frames} frames (APNG)"))
    return "PNG image", info


def _gif(data: bytes) -> tuple[str, list[tuple[str, str]]]:
    if len(data) < 10:
        raise ValueError("GIF header cut short")
    width, height = struct.unpack_from("<HH", data, 6)
    return "GIF image", [("Size", f"{width} x {height} px"), ("Version", data[3:6].decode("ascii", "replace"))]


def _jpeg(data: bytes) -> tuple[str, list[tuple[str, str]]]:
    pos = 2
    extras = []
    for _ in range(_MAX_CHUNKS):
        while pos < len(data) and data[pos] == 0xFF and pos + 1 < len(data) and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 4 > len(data) or data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        length = struct.unpack_from(">H", data, pos + 2)[0]
        if marker in _SOF and pos + 10 <= len(data):
            precision, height, width, components = struct.unpack_from(">BHHB", data, pos + 4)
            info = [("Size", f"{width} x {height} px"), ("Components", str(components)),
                    ("Bit depth", str(precision)),
                    ("Encoding", "progressive" if marker in (0xC2, 0xC6, 0xCA, 0xCE) else "baseline")]  # fmt: skip
            return "JPEG image", info + extras
        if marker == 0xE0 and data[pos + 4 : pos + 9] == b"JFIF\x00":
            extras.append(("JFIF", f"{data[pos + 9]}.{data[pos + 10]:02d}" if pos + 11 <= len(data) else "yes"))
        elif marker == 0xE1 and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
            extras.append(("Exif", f"{length - 8} bytes"))
        elif marker == 0xDA:  # start of scan before any frame header
            break
        pos += 2 + length
    raise ValueError("JPEG without a frame header")


def _webp(data: bytes) -> tuple[str, list[tuple[str, str]]]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack_from("<HH", data, 26)
        return "WebP image", [("Size", f"{width & 0x3FFF} x {height & 0x3FFF} px"), ("Encoding", "lossy")]
    if chunk == b"VP8L" and len(data) >= 25:
        b0, b1, b2, b3 = data[21:25]
        width = 1 + (b0 | (b1 & 0x3F) << 8)
        height = 1 + (b1 >> 6 | b2 << 2 | (b3 & 0x0F) << 10)
        return "WebP image", [("Size", f"{width} x {height} px"), ("Encoding", "lossless")]
    if chunk == b"VP8X" and len(data) >= 30:
        flags = data[20]
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        info = [("Size", f"{width} x {height} px"), ("Encoding", "extended")]
        if flags & 0x02:
            info.append(("Animation", "yes"))
        if flags & 0x10:
            info.append(("Alpha", "yes"))
        return "WebP image", info
    raise ValueError("WebP without a known image chunk")


def _bmp(data: bytes) -> tuple[str, list[tuple[str, str]]]:
    if len(data) < 30:
        raise ValueError("BMP header cut short")
    width, height, _, bpp = struct.unpack_from("<iiHH", data, 18)
    return "BMP image", [("Size", f"{width} x {abs(height)} px"), ("Bit depth", str(bpp))]


def _ico(data: bytes) -> tuple[str, list[tuple[str, str]]]:
    count = struct.unpack_from("<H", data, 4)[0]
    sizes = []
    for i in range(min(count, 16)):
        off = 6 + 16 * i
        if off + 2 > len(data):
            break
        w, h = data[off] or 256, data[off + 1] or 256
        sizes.append(f"{w}x{h}")
    return "ICO image", [("Images", str(count)), ("Sizes", ", ".join(sizes))]


def identify(data: bytes) -> tuple[str, list[tuple[str, str]]] | None:
    """(description, metadata) for a known image format, None if the magic is unknown.

    Raises ValueError if the magic is known but the header is damaged.
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(data)
    if data.startswith((b"GIF87a", b"GIF89a")):
        return _gif(data)
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    if data.startswith(b"BM") and len(data) >= 26:
        return _bmp(data)
    if data.startswith(b"\x00\x00\x01\x00") and len(data) >= 6:
        return _ico(data)
    return None


class ViewImage(View):
    name = "Image"

    def __call__(self, data: bytes, **metadata: Any) -> TViewResult:
        found = identify(data)
        if found is None:
            raise ValueError("not an image format this view knows (PNG, JPEG, GIF, WebP, BMP, ICO)")
        description, info = found
        return description, format_pairs([("Format", description.split()[0]), *info, ("Bytes", str(len(data)))])

    def render_priority(self, data: bytes, **metadata: Any) -> float:
        try:
            return 1 if identify(data) is not None else 0
        except (ValueError, struct.error):
            return 0
