import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.net.http import url


def test_parse():
    assert url.parse("https://Example.com:8443/a?b=c#d") == ("https", "example.com", 8443, "/a?b=c#d")
    assert url.parse("http://example.com") == ("http", "example.com", 80, "/")
    assert url.parse("https://a.example?x=1") == ("https", "a.example", 443, "/?x=1")
    assert url.parse(b"http://[::1]/x") == (b"http", b"::1", 80, b"/x")
    assert url.parse("http://bücher.example/ü") == ("http", "bücher.example", 80, "/ü")
    assert url.parse("http://user:pw@example.com/")[1] == "example.com"


@pytest.mark.parametrize("bad", ["foo", "http://", "//example.com/", "http://a:99999/", "ftp://x/", "http://a b/"])
def test_parse_invalid(bad):
    with pytest.raises(ValueError):
        url.parse(bad)


def test_hostport_unparse_default_port():
    assert url.hostport("https", "example.com", 443) == "example.com"
    assert url.hostport("http", "example.com", 443) == "example.com:443"
    assert url.hostport("http", "::1", 8080) == "[::1]:8080"
    assert url.hostport(b"http", b"example.com", 81) == b"example.com:81"
    assert url.unparse("https", "example.com", 443, "/x") == "https://example.com/x"
    assert url.unparse("http", "example.com", 80, "*") == "http://example.com"
    assert url.default_port("HTTPS") == 443 and url.default_port(b"http") == 80 and url.default_port("x") is None


def test_parse_authority():
    assert url.parse_authority("example.com:8080", check=True) == ("example.com", 8080)
    assert url.parse_authority("Example.COM", check=True) == ("example.com", None)
    assert url.parse_authority("[::1]:443", check=True) == ("::1", 443)
    assert url.parse_authority(b"[::1]", check=True) == ("::1", None)
    with pytest.raises(ValueError):
        url.parse_authority("bad host!", check=True)
    with pytest.raises(ValueError):
        url.parse_authority("example.com:99999", check=True)
    assert url.parse_authority("bad host!", check=False) == ("bad host!", None)


def test_query_encode_decode():
    assert url.decode("a=1&b=&c&d=%C3%BC+x") == [("a", "1"), ("b", ""), ("c", ""), ("d", "ü x")]
    assert url.encode([("a", "b c"), ("ü", "&")]) == "a=b+c&%C3%BC=%26"
    assert url.encode([("flag", ""), ("b", "1")], similar_to="flag&b=0") == "flag&b=1"
    assert url.encode([("flag", ""), ("b", "1")], similar_to="flag=&b=0") == "flag=&b=1"
    assert url.quote("a b/c") == "a%20b/c" and url.quote("a/b", safe="") == "a%2Fb"
    assert url.unquote("%C3%BC%2F") == "ü/"


@given(st.lists(st.tuples(st.text(min_size=1), st.text())))
def test_query_round_trip(pairs):
    assert url.decode(url.encode(pairs)) == pairs
