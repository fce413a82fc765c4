import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.net.http import multipart, status_codes
from gateway.net.http.headers import assemble_content_type, parse_content_type


def test_parse_content_type():
    assert parse_content_type("text/html; charset=UTF-8") == ("text", "html", {"charset": "UTF-8"})
    assert parse_content_type('multipart/form-data; boundary="a b;c"') == ("multipart", "form-data", {"boundary": "a b;c"})
    assert parse_content_type("Application/JSON") == ("application", "json", {})
    assert parse_content_type("text/plain; title*=utf-8''%C3%BC") == ("text", "plain", {"title": "ü"})
    for bad in ("", "text", "/html", "text/"):
        assert parse_content_type(bad) is None


def test_assemble_content_type():
    assert assemble_content_type("text", "plain", {}) == "text/plain"
    assert assemble_content_type("text", "plain", {"charset": "utf-8"}) == "text/plain; charset=utf-8"
    assert assemble_content_type("multipart", "form-data", {"boundary": "a b"}) == 'multipart/form-data; boundary="a b"'


def test_multipart_errors():
    with pytest.raises(ValueError):
        multipart.decode_multipart("text/plain", b"")
    with pytest.raises(ValueError):
        multipart.decode_multipart("multipart/form-data; boundary=x", b"no parts here")
    with pytest.raises(ValueError):
        multipart.encode_multipart("multipart/form-data", [(b"a", b"b")])
    with pytest.raises(ValueError):
        multipart.encode_multipart("multipart/form-data; boundary=x", [(b"a", b"--x inside")])


def test_multipart_quoted_and_unquoted_names():
    body = (
        b"--b\r\nContent-Disposition: form-data; name=plain\r\n\r\n1\r\n"
        b'--b\r\ncontent-disposition: form-data; name="with %22quote%22 and \\"\r\n\r\n2\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n"
        b"--b--\r\n"
    )
    assert multipart.decode_multipart("multipart/form-data; boundary=b", body) == [
        (b"plain", b"1"),
        (b"with %22quote%22 and \\", b"2"),
    ]


@given(st.lists(st.tuples(st.binary(min_size=1, max_size=10).filter(lambda b: b'"' not in b and b"\r" not in b
                                                                     and b"\n" not in b),
                          st.binary(max_size=50))))  # fmt: skip
def test_multipart_round_trip(parts):
    ct = "multipart/form-data; boundary=----gatewayboundary1234"
    assert multipart.decode_multipart(ct, multipart.encode_multipart(ct, parts)) == parts


def test_reason_phrases():
    assert status_codes.reason_phrase(200) == "OK"
    assert status_codes.reason_phrase(404) == "Not Found"
    assert status_codes.reason_phrase(599) == ""
    assert status_codes.RESPONSES[502] == "Bad Gateway"


def test_multipart_encodes_quotes_and_newlines_in_names_as_browsers_do():
    ct = "multipart/form-data; boundary=b"
    body = multipart.encode_multipart(ct, [('a"b\r\n', "ü")])
    assert b'name="a%22b%0D%0A"' in body
    assert multipart.decode_multipart(ct, body) == [(b"a%22b%0D%0A", "ü".encode())]
