import email.utils
import gzip
import json
import zlib

import brotli
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from gateway import http
from gateway.flow import Flow
from gateway.http import Headers, HTTPFlow, Request, Response
from gateway.net.http.cookies import CookieAttrs
from gateway.test import tflow

# -- Headers ------------------------------------------------------------------------------


def test_headers_are_case_insensitive_and_join_repeats():
    h = Headers([(b"Accept", b"text/html"), (b"accept", b"application/json"), (b"Host", b"example.com")])
    assert h["ACCEPT"] == "text/html, application/json"
    assert h.get_all("accept") == ["text/html", "application/json"]
    assert h["host"] == "example.com"
    assert "HOST" in h and b"host" in h and "x" not in h and 5 not in h
    assert list(h) == ["Accept", "Host"]
    assert len(h) == 2


def test_headers_kwargs_turn_underscores_into_dashes():
    h = Headers(content_type="text/plain", x_custom=b"1")
    assert h.fields == ((b"content-type", b"text/plain"), (b"x-custom", b"1"))


def test_headers_fields_must_be_bytes():
    with pytest.raises(TypeError):
        Headers([("host", "example.com")])
    h = Headers()
    with pytest.raises(TypeError):
        h["content-length"] = 5


def test_headers_set_all_add_insert_delete():
    h = Headers([(b"Set-Cookie", b"a=1"), (b"Other", b"x"), (b"set-cookie", b"b=2")])
    h.set_all("set-cookie", ["c=3", "d=4", "e=5"])
    assert h.fields == (
        (b"Set-Cookie", b"c=3"),
        (b"Other", b"x"),
        (b"set-cookie", b"d=4"),
        (b"set-cookie", b"e=5"),
    )
    h.add("Via", "1.1 gateway")
    h.insert(0, "First", "yes")
    assert h.fields[0] == (b"First", b"yes") and h.fields[-1] == (b"Via", b"1.1 gateway")
    del h["SET-COOKIE"]
    assert "set-cookie" not in h
    h["other"] = "y"
    assert h.fields[1] == (b"Other", b"y")  # original name spelling kept
    assert h.pop("via") == "1.1 gateway"
    with pytest.raises(KeyError):
        del h["via"]


def test_headers_items_and_bytes():
    h = Headers([(b"A", b"1"), (b"b", b"2"), (b"a", b"3")])
    assert list(h.items()) == [("A", "1, 3"), ("b", "2")]
    assert list(h.items(multi=True)) == [("A", "1"), ("b", "2"), ("a", "3")]
    assert bytes(h) == b"A: 1\r\nb: 2\r\na: 3\r\n"
    assert bytes(Headers()) == b""


def test_headers_unicode_and_invalid_utf8_survive():
    h = Headers()
    h["X-Name"] = "Grüße ✓"
    assert h.fields == ((b"X-Name", "Grüße ✓".encode()),)
    assert h["x-name"] == "Grüße ✓"
    raw = Headers([(b"X-Bin", b"\xff\xfe")])
    assert raw["x-bin"] == "\udcff\udcfe"  # surrogate-escaped, not lost
    raw["x-bin"] = raw["x-bin"]
    assert raw.fields == ((b"X-Bin", b"\xff\xfe"),)


def test_headers_from_other_headers():
    h = Headers([(b"A", b"1"), (b"a", b"2")])
    assert Headers(h) == h and Headers(h.fields) == h


def test_headers_state_and_copy():
    h = Headers([(b"A", b"1"), (b"A", b"2")])
    assert h.get_state() == ((b"A", b"1"), (b"A", b"2"))
    assert Headers.from_state([[b"A", b"1"], [b"A", b"2"]]) == h
    c = h.copy()
    assert isinstance(c, Headers) and c == h
    c["a"] = "x"
    assert h.get_all("a") == ["1", "2"]


header_names = st.text("abcdefghijklmnopqrstuvwxyz-ABCXYZ0123456789", min_size=1, max_size=12)
header_values = st.binary(max_size=30).filter(lambda b: b"\r" not in b and b"\n" not in b and b.strip() == b)


@given(st.lists(st.tuples(header_names.map(str.encode), header_values), max_size=12))
def test_headers_round_trip_through_bytes_and_state(fields):
    h = Headers(fields)
    block = bytes(h)
    parsed = [tuple(line.split(b": ", 1)) for line in block.split(b"\r\n") if line]
    assert Headers(parsed) == h
    assert Headers.from_state(h.get_state()) == h
    for name, _ in fields:
        expected = [v for n, v in fields if n.lower() == name.lower()]
        assert [x.encode("utf-8", "surrogateescape") for x in h.get_all(name.decode())] == expected
        # str and bytes spellings agree
        assert h[name.decode()] == ", ".join(x.decode("utf-8", "surrogateescape") for x in expected)


# -- Request attributes --------------------------------------------------------------------


def test_request_attributes():
    r = tflow.treq()
    assert r.method == "GET"
    assert r.scheme == "https"
    assert r.host == "example.com"
    assert r.port == 443
    assert r.authority == ""
    assert r.path == "/path?q=1"
    assert r.url == "https://example.com/path?q=1"
    assert r.pretty_host == "example.com"
    assert r.pretty_url == "https://example.com/path?q=1"
    assert r.http_version == "HTTP/1.1"
    assert r.is_http11 and not (r.is_http10 or r.is_http2 or r.is_http3)
    assert r.first_line_format == "relative"
    assert r.content == b"content" and r.raw_content == b"content"
    assert r.timestamp_start == tflow.T0 and r.timestamp_end == tflow.T0 + 1
    assert r.trailers is None
    assert r.stream is False
    assert r.host_header == "example.com"
    assert repr(r) == "Request(GET example.com:443/path?q=1)"


def test_request_setters_write_raw_bytes():
    r = tflow.treq()
    r.method = "post"
    assert r.data.method == b"post" and r.method == "POST"
    r.scheme = "http"
    r.path = "/ünï"
    assert r.data.path == "/ünï".encode()
    r.http_version = "HTTP/1.0"
    assert r.is_http10
    r.timestamp_start, r.timestamp_end = 1.0, 2.0
    assert (r.data.timestamp_start, r.data.timestamp_end) == (1.0, 2.0)


def test_host_and_port_update_host_header_and_authority():
    r = tflow.treq(authority=b"example.com")
    r.host = "other.org"
    assert r.headers["Host"] == "other.org"
    assert r.authority == "other.org"
    r.port = 8443
    assert r.headers["Host"] == "other.org:8443"
    assert r.authority == "other.org:8443"
    assert r.url == "https://other.org:8443/path?q=1"
    with pytest.raises(ValueError):
        r.port = "80"  # type: ignore[assignment]
    r.host = b"xn--bcher-kva.example"
    assert r.host == "bücher.example"


def test_host_update_without_host_header_adds_none():
    r = tflow.treq(headers=Headers())
    r.host = "x.org"
    assert "host" not in r.headers


def test_url_setter_and_invalid_url():
    r = tflow.treq()
    r.url = "http://[::1]:8080/a/b?c=d#frag"
    assert (r.scheme, r.host, r.port, r.path) == ("http", "::1", 8080, "/a/b?c=d#frag")
    assert r.headers["host"] == "[::1]:8080"
    assert r.url == "http://[::1]:8080/a/b?c=d#frag"
    for bad in ("not a url", "http://", "http://exa mple.com/", "http://a:99999/"):
        with pytest.raises(ValueError):
            r.url = bad


def test_pretty_host_prefers_host_header_in_transparent_mode():
    r = tflow.treq(host="93.184.216.34", headers=Headers(host="example.com:8443"))
    assert r.host == "93.184.216.34"
    assert r.pretty_host == "example.com"
    assert r.url == "https://93.184.216.34/path?q=1"
    assert r.pretty_url == "https://example.com:8443/path?q=1"
    r.headers.clear()
    assert r.pretty_host == "93.184.216.34"
    assert r.pretty_url == r.url


def test_http2_host_header_is_authority():
    r = tflow.treq(http_version=b"HTTP/2.0", authority=b"h2.example", headers=Headers())
    assert r.host_header == "h2.example"
    assert r.first_line_format == "relative"  # :authority is HTTP/2's Host header, not absolute-form
    r.host_header = "new.example"
    assert r.authority == "new.example" and "host" not in r.headers
    r.host_header = None
    assert r.authority == "" and r.host_header is None
    h1 = tflow.treq()
    h1.host_header = "h1.example"
    assert h1.headers["Host"] == "h1.example"
    h1.host_header = None
    assert "Host" not in h1.headers


def test_connect_and_absolute_form():
    r = tflow.treq(method=b"CONNECT", authority=b"example.com:443", path=b"", headers=Headers())
    assert r.first_line_format == "authority"
    assert r.url == "example.com:443"
    assert r.pretty_url == "example.com:443"
    absolute = tflow.treq(authority=b"example.com")
    assert absolute.first_line_format == "absolute"


def test_authority_idna():
    r = tflow.treq()
    r.authority = "bücher.example"
    assert r.data.authority == b"xn--bcher-kva.example"
    assert r.authority == "bücher.example"


def test_query_view_reads_and_writes_the_path():
    r = tflow.treq(path=b"/search?q=a+b&tag=1&tag=2&empty=#top")
    assert r.query["q"] == "a b"
    assert r.query.get_all("tag") == ["1", "2"]
    assert r.query["empty"] == ""
    r.query["q"] = "grüße & more"
    assert r.path.startswith("/search?q=gr%C3%BC%C3%9Fe+%26+more&tag=1&tag=2")
    assert r.path.endswith("#top")
    assert r.query["q"] == "grüße & more"
    r.query = [("only", "one")]
    assert r.path == "/search?only=one#top"
    r.query.clear()
    assert r.path == "/search#top"
    r.query = {"a": "1"}
    assert r.path == "/search?a=1#top"


def test_cookies_view_on_request():
    r = tflow.treq(headers=Headers([(b"Cookie", b"a=1; b=2"), (b"cookie", b"c=3")]))
    assert r.cookies["a"] == "1"
    assert list(r.cookies.items(multi=True)) == [("a", "1"), ("b", "2"), ("c", "3")]
    r.cookies["b"] = "two"
    assert r.headers.get_all("cookie") == ["a=1; b=two; c=3"]
    r.cookies = [("x", "y")]
    assert r.headers["cookie"] == "x=y"
    r.cookies.clear()
    assert "cookie" not in r.headers


def test_path_components():
    r = tflow.treq(path=b"/a/b%2Fc/d%20e?x=1#f")
    assert r.path_components == ("a", "b/c", "d e")
    r.path_components = ["x y", "ü", "z/w"]
    assert r.path == "/x%20y/%C3%BC/z%2Fw?x=1#f"


def test_anticache_anticomp_constrain_encoding():
    r = tflow.treq(
        headers=Headers(if_modified_since="x", if_none_match="y", accept_encoding="gzip, compress, br, sdch")
    )
    r.anticache()
    assert "if-modified-since" not in r.headers and "if-none-match" not in r.headers
    r.constrain_encoding()
    assert r.headers["accept-encoding"] == "gzip, br"
    r.anticomp()
    assert r.headers["accept-encoding"] == "identity"


def test_urlencoded_form():
    r = tflow.treq(
        method=b"POST",
        headers=Headers(content_type="application/x-www-form-urlencoded"),
        content=b"name=J%C3%BCrgen&tags=a&tags=b",
    )
    assert r.urlencoded_form["name"] == "Jürgen"
    assert r.urlencoded_form.get_all("tags") == ["a", "b"]
    r.urlencoded_form["name"] = "Zoë"
    assert r.content == b"name=Zo%C3%AB&tags=a&tags=b"
    assert r.headers["content-length"] == str(len(r.content))
    plain = tflow.treq(headers=Headers(content_type="text/plain"), content=b"a=b")
    assert plain.urlencoded_form.fields == ()
    plain.urlencoded_form = [("k", "v")]
    assert plain.headers["content-type"] == "application/x-www-form-urlencoded"
    assert plain.content == b"k=v"


def test_multipart_form_decode_and_encode():
    body = (
        b"--BOUNDARY\r\n"
        b'Content-Disposition: form-data; name="field"\r\n\r\n'
        b"value with\r\nnewline\r\n"
        b"--BOUNDARY\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
        b"\x00\x01\xff\r\n"
        b"--BOUNDARY--\r\n"
    )
    r = tflow.treq(method=b"POST", headers=Headers(content_type="multipart/form-data; boundary=BOUNDARY"),
                   content=body)  # fmt: skip
    assert r.multipart_form.fields == ((b"field", b"value with\r\nnewline"), (b"file", b"\x00\x01\xff"))
    r.multipart_form[b"field"] = b"new"
    again = tflow.treq(headers=r.headers.copy(), content=r.content)
    assert again.multipart_form.fields == ((b"field", b"new"), (b"file", b"\x00\x01\xff"))
    assert r.headers["content-type"] == "multipart/form-data; boundary=BOUNDARY"

    fresh = tflow.treq(headers=Headers(), content=b"")
    assert fresh.multipart_form.fields == ()
    fresh.multipart_form = [(b"a", b"1"), (b"b", "ü".encode())]
    ct = fresh.headers["content-type"]
    assert ct.startswith("multipart/form-data; boundary=")
    assert fresh.multipart_form.fields == ((b"a", b"1"), (b"b", "ü".encode()))

    broken = tflow.treq(headers=Headers(content_type="multipart/form-data"), content=b"garbage")
    assert broken.multipart_form.fields == ()


def test_request_make():
    r = Request.make("POST", "https://example.com:8443/p?x=1", "grüße", {"Content-Type": "text/plain; charset=utf-8"})
    assert (r.method, r.scheme, r.host, r.port, r.path) == ("POST", "https", "example.com", 8443, "/p?x=1")
    assert r.content == "grüße".encode()
    assert r.headers["content-length"] == str(len("grüße".encode()))
    assert r.http_version == "HTTP/1.1"
    r2 = Request.make("GET", "http://a.example/", b"\x00", [(b"X", b"1")])
    assert r2.headers["x"] == "1" and r2.content == b"\x00"
    r3 = Request.make("GET", "http://a.example/", headers=Headers(y="2"))
    assert r3.headers["y"] == "2"
    with pytest.raises(TypeError):
        Request.make("GET", "http://a.example/", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Request.make("GET", "http://a.example/", headers=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Request.make("GET", "nope")


def test_request_constructor_checks():
    with pytest.raises(ValueError):
        tflow.treq(port="443")
    with pytest.raises(TypeError):
        tflow.treq(content="text")
    r = tflow.treq(host=b"xn--bcher-kva.example", headers=((b"a", b"b"),), trailers=((b"t", b"1"),))
    assert r.host == "bücher.example"
    assert isinstance(r.headers, Headers) and isinstance(r.trailers, Headers)


# -- Message bodies ----------------------------------------------------------------------

PLAIN = "Grüße aus dem Netz — ✓".encode() * 20
COMPRESSORS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda d: zstandard.ZstdCompressor().compress(d),
}
DECOMPRESSORS = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "br": brotli.decompress,
    "zstd": lambda d: zstandard.ZstdDecompressor().decompress(d),
}


@pytest.mark.parametrize("ce", sorted(COMPRESSORS))
def test_content_is_transparently_decoded(ce):
    raw = COMPRESSORS[ce](PLAIN)
    resp = tflow.tresp(headers=Headers(content_encoding=ce, content_type="text/plain; charset=utf-8"), content=raw)
    assert resp.raw_content == raw
    assert resp.content == PLAIN
    assert resp.text == PLAIN.decode()


@pytest.mark.parametrize("ce", sorted(COMPRESSORS))
def test_setting_content_reencodes_and_sets_length(ce):
    resp = tflow.tresp(headers=Headers(content_encoding=ce), content=b"")
    resp.content = PLAIN
    assert resp.raw_content != PLAIN
    assert DECOMPRESSORS[ce](resp.raw_content) == PLAIN
    assert resp.headers["content-length"] == str(len(resp.raw_content))
    resp.text = "neu"
    assert DECOMPRESSORS[ce](resp.raw_content) == b"neu"


def test_invalid_compressed_body_strict_raises_lenient_returns_raw():
    resp = tflow.tresp(headers=Headers(content_encoding="gzip", content_type="text/plain"), content=b"not gzip")
    with pytest.raises(ValueError):
        _ = resp.content
    with pytest.raises(ValueError):
        _ = resp.text
    assert resp.get_content(strict=False) == b"not gzip"
    assert resp.get_text(strict=False) == "not gzip"
    with pytest.raises(ValueError):
        resp.decode()
    resp.decode(strict=False)
    assert "content-encoding" not in resp.headers and resp.content == b"not gzip"


def test_unknown_or_charset_content_encoding():
    resp = tflow.tresp(headers=Headers(content_encoding="utf8"), content=b"abc")
    with pytest.raises(ValueError):
        _ = resp.content
    assert resp.get_content(strict=False) == b"abc"
    unknown = tflow.tresp(headers=Headers(content_encoding="x-custom"), content=b"abc")
    with pytest.raises(ValueError):
        _ = unknown.content
    unknown.content = b"new"  # cannot produce x-custom: sent unencoded, header dropped
    assert "content-encoding" not in unknown.headers
    assert unknown.raw_content == b"new"


def test_decode_and_encode():
    resp = tflow.tresp(headers=Headers(content_encoding="gzip"), content=gzip.compress(PLAIN))
    resp.decode()
    assert "content-encoding" not in resp.headers
    assert resp.raw_content == PLAIN
    resp.encode("br")
    assert resp.headers["content-encoding"] == "br"
    assert brotli.decompress(resp.raw_content) == PLAIN
    assert resp.content == PLAIN
    with pytest.raises(ValueError):
        resp.encode("nonsense")
    assert "content-encoding" not in resp.headers
    assert resp.raw_content == PLAIN


def test_transfer_encoding_suppresses_content_length():
    resp = tflow.tresp(headers=Headers(transfer_encoding="chunked"), content=b"")
    resp.content = b"abc"
    assert "content-length" not in resp.headers


def test_content_none_when_streamed_and_type_checks():
    resp = tflow.tresp(content=None)
    assert resp.content is None and resp.text is None and resp.raw_content is None
    with pytest.raises(TypeError):
        resp.json()
    with pytest.raises(TypeError):
        resp.content = "text"  # type: ignore[assignment]
    resp.content = b"x"
    resp.content = None
    assert resp.raw_content is None
    resp.text = None
    assert resp.raw_content is None


@pytest.mark.parametrize(
    "content_type, body, expected",
    [
        ("text/plain; charset=utf-8", "Grüße".encode(), "Grüße"),
        ("text/plain; charset=ISO-8859-1", "Grüße".encode("latin-1"), "Grüße"),
        ("application/json", '{"a": "ü"}'.encode(), '{"a": "ü"}'),
        ("text/html", b'<html><meta charset="utf-8"><p>\xc3\xbc</p>', '<html><meta charset="utf-8"><p>ü</p>'),
        ("text/html", b"<meta http-equiv=Content-Type content='text/html; charset=windows-1251'>\xc4",
         "<meta http-equiv=Content-Type content='text/html; charset=windows-1251'>Д"),
        ("text/css", b'@charset "utf-8"; a{content:"\xc3\xbc"}', '@charset "utf-8"; a{content:"ü"}'),
        ("application/xml", b'<?xml version="1.0" encoding="utf-8"?><a>\xc3\xbc</a>',
         '<?xml version="1.0" encoding="utf-8"?><a>ü</a>'),
        ("text/plain", "Grüße".encode(), "Grüße".encode().decode("latin-1")),  # no charset: latin-1
        ("text/plain; charset=gb2312", "中文".encode("gb18030"), "中文"),
    ],
)  # fmt: skip
def test_text_charset_detection(content_type, body, expected):
    resp = tflow.tresp(headers=Headers(content_type=content_type), content=body)
    assert resp.text == expected


def test_text_with_wrong_charset_strict_and_lenient():
    resp = tflow.tresp(headers=Headers(content_type="text/plain; charset=utf-8"), content=b"\xff\xfe ok")
    with pytest.raises(ValueError):
        _ = resp.text
    assert resp.get_text(strict=False) == "\udcff\udcfe ok"
    bogus = tflow.tresp(headers=Headers(content_type="text/plain; charset=no-such"), content=b"abc")
    with pytest.raises(ValueError):
        _ = bogus.text
    assert bogus.get_text(strict=False) == "abc"


def test_set_text_uses_charset_and_falls_back_to_utf8():
    resp = tflow.tresp(headers=Headers(content_type="text/plain; charset=latin-1"), content=b"")
    resp.text = "Grüße"
    assert resp.raw_content == "Grüße".encode("latin-1")
    resp.text = "✓ check"  # not representable in latin-1
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert resp.raw_content == "✓ check".encode()
    assert resp.text == "✓ check"
    nohdr = tflow.tresp(headers=Headers(), content=b"")
    nohdr.text = "✓"
    assert nohdr.headers["content-type"] == "text/plain; charset=utf-8"


def test_json():
    resp = tflow.tresp(headers=Headers(content_type="application/json", content_encoding="gzip"),
                       content=gzip.compress(json.dumps({"ü": [1, 2.5, None]}).encode()))  # fmt: skip
    assert resp.json() == {"ü": [1, 2.5, None]}
    assert resp.json(parse_float=str) == {"ü": [1, "2.5", None]}
    bad = tflow.tresp(content=b"{not json")
    with pytest.raises(json.JSONDecodeError):
        bad.json()


def test_trailers():
    resp = tflow.tresp(trailers=Headers(grpc_status="0"))
    assert resp.trailers["grpc-status"] == "0"
    resp.trailers = None
    assert resp.trailers is None
    resp.trailers = Headers(x="1")
    assert resp.data.trailers == Headers(x="1")


def test_stream_attribute_is_per_message():
    resp = tflow.tresp()
    assert resp.stream is False
    resp.stream = True
    assert tflow.tresp().stream is False

    def upper(chunk: bytes) -> bytes:
        return chunk.upper()

    resp.stream = upper
    assert resp.stream(b"ab") == b"AB"


# -- Response --------------------------------------------------------------------------------


def test_response_attributes_and_setters():
    resp = tflow.tresp()
    assert resp.status_code == 200 and resp.reason == "OK"
    assert resp.http_version == "HTTP/1.1"
    assert resp.content == b"message"
    assert resp.timestamp_start == tflow.T0 + 2 and resp.timestamp_end == tflow.T0 + 3
    resp.status_code = 404
    resp.reason = "Nicht gefunden"
    assert resp.data.reason == b"Nicht gefunden"
    resp.reason = b"Raw"
    assert resp.reason == "Raw"
    assert repr(resp) == "Response(404, text/plain; charset=utf-8, 7b)"
    assert repr(tflow.tresp(content=b"")) == "Response(200, no content)"


def test_response_make():
    r = Response.make(404, "not here", {"Content-Type": "text/plain"})
    assert (r.status_code, r.reason, r.http_version) == (404, "Not Found", "HTTP/1.1")
    assert r.content == b"not here" and r.headers["content-length"] == "8"
    assert r.timestamp_start <= r.timestamp_end
    assert Response.make().status_code == 200
    assert Response.make(299).reason == ""
    assert Response.make(418).reason == "I'm a Teapot"
    j = Response.make(200, json.dumps({"a": 1}), [(b"Content-Type", b"application/json")])
    assert j.json() == {"a": 1}
    with pytest.raises(TypeError):
        Response.make(200, 5)  # type: ignore[arg-type]


def test_response_cookies_with_attributes():
    resp = tflow.tresp(headers=Headers([
        (b"Set-Cookie", b"id=a3fWa; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/; Secure; HttpOnly"),
        (b"Set-Cookie", b"lang=de-DE; Max-Age=3600; SameSite=Lax"),
        (b"Content-Type", b"text/plain"),
    ]))  # fmt: skip
    value, attrs = resp.cookies["id"]
    assert value == "a3fWa"
    assert isinstance(attrs, CookieAttrs)
    assert attrs["expires"] == "Wed, 21 Oct 2037 07:28:00 GMT"  # comma inside a value survives
    assert attrs["PATH"] == "/"
    assert attrs["secure"] is None and "httponly" in attrs
    assert resp.cookies["lang"][1]["max-age"] == "3600"
    assert list(resp.cookies) == ["id", "lang"]

    resp.cookies["lang"] = ("en-US", CookieAttrs([("Path", "/docs")]))
    assert resp.headers.get_all("set-cookie")[1] == "lang=en-US; Path=/docs"
    v, a = resp.cookies["id"]
    a["Domain"] = "example.com"
    resp.cookies["id"] = (v, a)
    assert resp.headers.get_all("set-cookie")[0] == (
        "id=a3fWa; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/; Secure; HttpOnly; Domain=example.com"
    )
    resp.cookies = [("only", "1")]
    assert resp.headers.get_all("set-cookie") == ["only=1"]
    del resp.cookies["only"]
    assert "set-cookie" not in resp.headers


def test_response_refresh_shifts_dates_and_cookie_expiry():
    date = "Sat, 01 Jan 2000 00:00:00 GMT"
    resp = tflow.tresp(headers=Headers([
        (b"Date", date.encode()), (b"Expires", date.encode()),
        (b"Set-Cookie", b"a=1; Expires=Sat, 01 Jan 2000 00:00:00 GMT; Path=/"),
        (b"Set-Cookie", b"b=2"),
    ]))  # fmt: skip
    resp.timestamp_start = email.utils.parsedate_to_datetime(date).timestamp()
    resp.refresh(now=resp.timestamp_start + 86400)
    assert resp.headers["date"] == "Sun, 02 Jan 2000 00:00:00 GMT"
    assert resp.headers["expires"] == "Sun, 02 Jan 2000 00:00:00 GMT"
    assert resp.headers.get_all("set-cookie") == ["a=1; Expires=Sun, 02 Jan 2000 00:00:00 GMT; Path=/", "b=2"]


# -- state -----------------------------------------------------------------------------------


def test_message_state_round_trip_and_copy():
    req = tflow.treq(trailers=Headers(t="1"))
    state = req.get_state()
    assert state["method"] == b"GET" and state["headers"][0] == (b"Host", b"example.com")
    again = Request.from_state(state)
    assert again.data == req.data
    again.headers["x"] = "y"
    assert "x" not in req.headers
    c = req.copy()
    assert c.data == req.data and c is not req
    c.path = "/other"
    assert req.path == "/path?q=1"
    resp = tflow.tresp()
    r2 = Response.from_state(resp.get_state())
    assert r2.get_state() == resp.get_state()
    r2.set_state(tflow.tresp(status_code=500).get_state())
    assert r2.status_code == 500


def test_httpflow_attributes_and_state():
    f = tflow.tflow(resp=True, err=True, ws=True)
    assert f.type == "http"
    assert f.timestamp_start == f.request.timestamp_start
    state = f.get_state()
    assert state["type"] == "http"
    assert state["websocket"]["messages"][0][2] == b"hello"
    g = Flow.from_state(state)
    assert isinstance(g, HTTPFlow)
    assert g.get_state() == state
    assert g.response.cookies["id"][0] == "a3fWa"
    assert g.websocket.messages[0].text == "hello"
    assert str(g.error) == "error"
    assert "request = Request(GET example.com:443/path?q=1)" in repr(f)


def test_httpflow_without_request_or_response():
    f = HTTPFlow(tflow.tclient_conn(), tflow.tserver_conn())
    assert f.request is None and f.response is None and f.websocket is None
    assert f.timestamp_start == f.timestamp_created
    g = HTTPFlow.from_state(f.get_state())
    assert g.get_state() == f.get_state()


def test_httpflow_copy_is_deep_and_not_live():
    f = tflow.tflow(resp=True)
    c = f.copy()
    assert c.id != f.id and not c.live and f.live
    c.request.headers["x"] = "1"
    c.response.content = b"changed"
    assert "x" not in f.request.headers and f.response.content == b"message"


def test_module_exports_match_mitmproxy_names():
    for name in ("Headers", "Message", "Request", "Response", "HTTPFlow"):
        assert hasattr(http, name)
