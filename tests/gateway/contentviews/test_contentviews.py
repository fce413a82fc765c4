"""Every content view on real data, the auto view's choices, and fallbacks on bad data."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import httpx
import pytest

from gateway import contentviews, http
from gateway.contentviews.base import MAX_RENDER_BYTES
from gateway.test import tflow

DATA = Path(__file__).parent / "data"


def render(view, data, **meta) -> tuple[str, list[str]]:
    description, lines = contentviews.get_content_view(view, data, **meta)
    return description, ["".join(text for _, text in line) for line in lines]


def png(width: int, height: int, color_type: int = 6, interlace: int = 0, text: dict | None = None) -> bytes:
    """A complete, valid PNG (every pixel transparent black), written from the spec."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    raw = b"".join(b"\x00" + b"\x00" * (width * channels) for _ in range(height))
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, interlace))
    for k, v in (text or {}).items():
        out += chunk(b"tEXt", k.encode() + b"\x00" + v.encode())
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


# --- JSON ---------------------------------------------------------------------------


def test_json_is_pretty_printed_with_unicode_kept():
    body = json.dumps({"user": {"name": "Zoë", "roles": ["admin", "dev"]}, "n": 1.5, "ok": True}).encode()
    description, lines = render("json", body)
    assert description == "JSON"
    assert lines == [
        "{",
        '  "user": {',
        '    "name": "Zoë",',
        '    "roles": [',
        '      "admin",',
        '      "dev"',
        "    ]",
        "  },",
        '  "n": 1.5,',
        '  "ok": true',
        "}",
    ]


def test_json_lines_show_each_document():
    body = b'{"a": 1}\n{"a": 2}\n\n{"a": 3}\n'
    description, lines = render("json", body, content_type="application/x-ndjson")
    assert description == "JSON Lines (3 documents)"
    assert lines.count("# line 1") == 1 and '  "a": 3' in lines


def test_json_keys_are_styled_as_keys():
    _, lines = contentviews.get_content_view("json", b'{"key": "value"}')
    assert ("key", '"key"') in lines[1] and ("value", '"value"') in lines[1]


def test_json_in_another_charset():
    body = json.dumps({"k": "é"}, ensure_ascii=False).encode("latin-1")
    _, lines = render("json", body, content_type="application/json; charset=ISO-8859-1")
    assert '  "k": "é"' in lines


# --- forms -------------------------------------------------------------------------


def test_urlencoded_form():
    description, lines = render(
        "auto", b"user=ann&pass=s%C3%A9cret+word&empty=&user=bob", content_type="application/x-www-form-urlencoded"
    )
    assert description == "URL-encoded form"
    assert lines == ["user:  ann", "pass:  sécret word", "empty: ", "user:  bob"]


def test_multipart_form_built_by_httpx():
    req = httpx.Request(
        "POST",
        "https://example.com/upload",
        data={"title": "holiday ✓"},
        files={"photo": ("beach.png", png(3, 2), "image/png")},
    )
    body = req.read()
    description, lines = render("auto", body, content_type=req.headers["content-type"])
    assert description == "Multipart form (2 parts)"
    text = "\n".join(lines)
    assert "name:  title" in text and "value: holiday ✓" in text  # aligned per part
    assert "filename:     beach.png" in text and "content-type: image/png" in text
    assert f"<{len(png(3, 2))} bytes of binary data>" in text


def test_multipart_without_boundary_falls_back():
    description, lines = render("multipart", b"--x\r\n\r\nhi", content_type="multipart/form-data")
    assert description.startswith("Couldn't parse as Multipart Form (no multipart boundary")
    assert lines == ["--x", "", "hi"]


# --- XML / HTML ------------------------------------------------------------------------

HTML = b"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Welcome to nginx!</title>
<style>
    body { width: 35em; }
    p { margin: 0 }
</style></head><body><!-- a comment --><h1>Welcome</h1><p>If you see this page, the <a href="http://nginx.org/">nginx</a>
web server is installed.<br/>Thank you.</p><script>if (a < b && c) { go(); }</script></body></html>"""


def test_html_is_reindented():
    description, lines = render("auto", HTML, content_type="text/html; charset=utf-8")
    assert description == "HTML"
    assert lines == [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "  <head>",
        '    <meta charset="utf-8">',
        "    <title>Welcome to nginx!</title>",
        "    <style>",
        "      body { width: 35em; }",
        "      p { margin: 0 }",
        "    </style>",
        "  </head>",
        "  <body>",
        "    <!-- a comment -->",
        "    <h1>Welcome</h1>",
        "    <p>",
        "      If you see this page, the",
        '      <a href="http://nginx.org/">nginx</a>',
        "      web server is installed.",
        "      <br/>",
        "      Thank you.",
        "    </p>",
        "    <script>",
        "      if (a < b && c) { go(); }",
        "    </script>",
        "  </body>",
        "</html>",
    ]


def test_xml_keeps_case_and_is_sniffed_without_content_type():
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><g id="L1"><rect x="1" y="1"/><Text>Hi &amp; bye</Text></g><![CDATA[raw <stuff>]]></svg>'
    description, lines = render("auto", svg)
    assert description == "XML"
    assert lines == [
        '<?xml version="1.0"?>',
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">',
        '  <g id="L1">',
        '    <rect x="1" y="1"/>',
        "    <Text>Hi &amp; bye</Text>",
        "  </g>",
        "  <![CDATA[raw <stuff>]]>",
        "</svg>",
    ]


def test_broken_markup_is_shown_not_refused():
    description, lines = render("xml", b"<a><b>unclosed <c attr='x>text</a></zzz> < lone")
    assert description == "XML"
    assert "".join(lines).replace(" ", "").startswith("<a><b>unclosed")
    assert lines[-1].strip() == "< lone"


# --- images ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, description, facts",
    [
        # Dimensions as reported by file(1) for these files from CPython's test suite.
        ("python.png", "PNG image", {"Size": "16 x 16 px", "Color type": "palette", "Bit depth": "8"}),
        ("python.jpg", "JPEG image", {"Size": "16 x 16 px", "Components": "3", "JFIF": "1.01"}),
        ("python.gif", "GIF image", {"Size": "16 x 16 px", "Version": "89a"}),
        ("python.webp", "WebP image", {"Size": "16 x 16 px", "Alpha": "yes"}),
        ("python.bmp", "BMP image", {"Size": "16 x 16 px", "Bit depth": "32"}),
    ],
)
def test_real_image_files(name, description, facts):
    data = (DATA / name).read_bytes()
    got_description, lines = render("auto", data, content_type="application/octet-stream")
    assert got_description == description
    shown = dict(line.split(":", 1) for line in lines)
    shown = {k.strip(): v.strip() for k, v in shown.items()}
    assert shown["Format"] == description.split()[0]
    assert shown["Bytes"] == str(len(data))
    for k, v in facts.items():
        assert shown[k] == v


def test_non_square_images_report_width_then_height():
    _, lines = render("image", png(37, 23, color_type=2, interlace=1, text={"Software": "gateway tests"}))
    assert "Size:       37 x 23 px" in lines
    assert "Color type: RGB" in lines and "Interlaced: yes (Adam7)" in lines
    assert "Software:   gateway tests" in lines
    gif = bytearray((DATA / "python.gif").read_bytes())
    gif[6:10] = struct.pack("<HH", 37, 23)
    assert "Size:    37 x 23 px" in render("image", bytes(gif))[1]
    jpg = bytearray((DATA / "python.jpg").read_bytes())
    sof = jpg.index(b"\xff\xc0")
    jpg[sof + 5 : sof + 9] = struct.pack(">HH", 23, 37)  # SOF stores height first
    assert any(line.startswith("Size:") and "37 x 23 px" in line for line in render("image", bytes(jpg))[1])
    webp = bytearray((DATA / "python.webp").read_bytes())
    webp[24:30] = (36).to_bytes(3, "little") + (22).to_bytes(3, "little")  # VP8X stores size - 1
    assert any("37 x 23 px" in line for line in render("image", bytes(webp))[1])


def test_damaged_or_unknown_images_fall_back():
    description, _ = render("image", b"\x89PNG\r\n\x1a\n\x00\x00")
    assert description.startswith("Couldn't parse as Image (PNG without an IHDR chunk): Hex")
    description, lines = render("image", b"just text")
    assert description.startswith("Couldn't parse as Image") and lines == ["just text"]
    truncated_jpeg = (DATA / "python.jpg").read_bytes()[:30]
    assert render("auto", truncated_jpeg)[0].startswith(("Couldn't parse", "Hex"))


# --- raw, hex, query, auto -----------------------------------------------------------


def test_hex_dump_layout():
    description, lines = render("hex", bytes(range(20)) + b"ABC")
    assert description == "Hex"
    assert lines == [
        "00000000  00 01 02 03 04 05 06 07  08 09 0a 0b 0c 0d 0e 0f  ................",
        "00000010  10 11 12 13 41 42 43                              ....ABC",
    ]


def test_raw_escapes_terminal_control_characters():
    _, lines = render("raw", b"red \x1b[31mtext\x1b[0m\r\nbell\x07 \xc2\x9b csi\n")
    assert lines == ["red \\x1b[31mtext\\x1b[0m", "bell\\x07 \\x9b csi"]


def test_query_view_shows_request_parameters():
    req = tflow.treq(path=b"/search?q=caf%C3%A9+au+lait&page=2&q=tea", content=b"")
    description, lines = render("auto", b"", http_message=req)
    assert description == "Query"
    assert lines == ["q:    café au lait", "page: 2", "q:    tea"]


@pytest.mark.parametrize(
    "data, content_type, expected",
    [
        (b'{"a": 1}', "application/json", "JSON"),
        (b'{"a": 1}', "application/vnd.api+json", "JSON"),
        (b'[1, 2, 3]', None, "JSON"),  # sniffed
        (b'{"a": 1', "text/plain", "Raw"),  # looks like JSON but is not
        (b"<html><body>x</body></html>", None, "HTML"),
        (b"<feed><entry/></feed>", "application/atom+xml", "XML"),
        (b"a=1&b=2", "application/x-www-form-urlencoded", "URL-encoded form"),
        (b"plain words\nsecond line", "text/plain", "Raw"),
        (bytes(range(256)), "application/octet-stream", "Hex"),
        (b"", None, "Raw"),
    ],
)
def test_auto_picks_by_content_type_then_sniffing(data, content_type, expected):
    assert render("auto", data, content_type=content_type)[0] == expected


def test_auto_picks_image_by_magic_even_with_a_wrong_content_type():
    assert render("auto", png(5, 5), content_type="text/plain")[0] == "PNG image"


def test_large_bodies_are_cut_for_display():
    description, lines = render("raw", b"x" * (MAX_RENDER_BYTES + 10))
    assert "first 512 KiB" in description and len(lines[0]) == MAX_RENDER_BYTES
    description, _ = render("json", b"[" + b"1," * MAX_RENDER_BYTES + b"1]")
    assert description.startswith("JSON (too large to parse, shown raw)")


def test_message_content_view_decodes_content_encoding():
    f = tflow.tflow(resp=True)
    f.response.headers["Content-Type"] = "application/json"
    f.response.headers["Content-Encoding"] = "gzip"
    f.response.content = b'{"compressed": true}'
    assert f.response.raw_content != f.response.content
    description, lines = contentviews.get_message_content_view("auto", f.response, f)
    assert description == "JSON"
    assert ["".join(t for _, t in line) for line in lines] == ["{", '  "compressed": true', "}"]


def test_message_content_view_on_undecodable_body_says_so():
    resp = http.Response.make(200, b"", {"Content-Type": "text/plain", "Content-Encoding": "gzip"})
    resp.raw_content = b"not gzip at all"
    description, lines = contentviews.get_message_content_view("auto", resp)
    assert description == "Raw [cannot decode gzip: shown as received]"
    assert lines == [[("text", "not gzip at all")]]


def test_message_content_view_on_tcp_and_websocket_messages():
    tcp = tflow.ttcpflow()
    assert contentviews.get_message_content_view("auto", tcp.messages[3])[0] == "Hex"
    ws = tflow.twebsocketflow()
    assert contentviews.get_message_content_view("auto", ws.websocket.messages[1])[0] == "Raw"


def test_registry_lookup_add_and_remove():
    for name, expected in [("json", "JSON"), ("XML/HTML", "XML/HTML"), ("html", "XML/HTML"), ("hex", "Hex"),
                           ("urlencoded", "URL-encoded"), ("multipart", "Multipart Form"), ("image", "Image"),
                           ("query", "Query"), ("raw", "Raw"), ("auto", "Auto")]:  # fmt: skip
        view = contentviews.get(name)
        assert view is not None and view.name == expected
    assert contentviews.get("nosuch") is None
    with pytest.raises(ValueError, match="unknown content view 'nosuch'"):
        contentviews.get_content_view("nosuch", b"")

    class Shout(contentviews.View):
        name = "Shout"

        def __call__(self, data, **metadata):
            return "SHOUT", contentviews.format_text(data.upper())

        def render_priority(self, data, *, content_type=None, **metadata):
            return 2 if content_type == "text/x-shout" else 0

    view = Shout()
    contentviews.add(view)
    try:
        assert render("auto", b"hi", content_type="text/x-shout") == ("SHOUT", ["HI"])
    finally:
        contentviews.remove(view)
    assert render("auto", b"hi", content_type="text/x-shout")[0] == "Raw"


def test_a_view_that_crashes_does_not_break_rendering():
    class Broken(contentviews.View):
        name = "Broken"

        def __call__(self, data, **metadata):
            raise RuntimeError("boom")

        def render_priority(self, data, **metadata):
            raise RuntimeError("boom")

    view = Broken()
    contentviews.add(view)
    try:
        assert render("auto", b'{"a": 1}', content_type="application/json")[0] == "JSON"
        description, lines = render("broken", b"text")
        assert description == "Couldn't parse as Broken (boom): Raw" and lines == ["text"]
    finally:
        contentviews.remove(view)


def test_mitmproxy_style_contentview_classes_port_unchanged():
    class SwapCase(contentviews.Contentview):
        def prettify(self, data: bytes, metadata: contentviews.Metadata) -> str:
            return data.swapcase().decode()

        def render_priority(self, data: bytes, metadata: contentviews.Metadata) -> float:
            if metadata.content_type and metadata.content_type.startswith("text/example"):
                return 2
            return 0

    contentviews.add(SwapCase)
    try:
        assert contentviews.get("swapcase") is not None
        assert render("auto", b"Hello\nWorld", content_type="text/example") == ("swapcase", ["hELLO", "wORLD"])
        assert render("swapcase", b"abc") == ("swapcase", ["ABC"])
        assert render("auto", b"Hello", content_type="text/plain")[0] == "Raw"
    finally:
        contentviews.remove(SwapCase)
    assert contentviews.get("swapcase") is None


def test_contentview_metadata_carries_the_message():
    seen = {}

    class Spy(contentviews.Contentview):
        def prettify(self, data, metadata):
            seen.update(vars(metadata))
            return "ok"

    view = Spy()
    contentviews.add(view)
    try:
        resp = tflow.tresp()
        contentviews.get_message_content_view("spy", resp)
    finally:
        contentviews.remove(view)
    assert seen["http_message"] is resp and seen["content_type"] == "text/plain; charset=utf-8"
    assert seen["original_data"] == b"message"
