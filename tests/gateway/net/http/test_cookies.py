import email.utils

from gateway.net.http import cookies
from gateway.net.http.cookies import CookieAttrs


def test_cookie_header():
    assert cookies.parse_cookie_header("a=1; b=2;c=3") == [("a", "1"), ("b", "2"), ("c", "3")]
    assert cookies.parse_cookie_header('q="quoted; value"') == [("q", '"quoted'), ("value\"", "")]
    assert cookies.parse_cookie_header("flag; x=") == [("flag", ""), ("x", "")]
    assert cookies.parse_cookie_headers(["a=1", "b=2; c=3"]) == [("a", "1"), ("b", "2"), ("c", "3")]
    assert cookies.format_cookie_header([("a", "1"), ("b", "ü")]) == "a=1; b=ü"
    assert cookies.parse_cookie_header("") == []


def test_set_cookie_header():
    name, value, attrs = cookies.parse_set_cookie_header(
        "SID=31d4d96e407aad42; Path=/; Domain=example.com; Expires=Wed, 09 Jun 2021 10:18:14 GMT; Secure; HttpOnly"
    )
    assert (name, value) == ("SID", "31d4d96e407aad42")
    assert attrs["domain"] == "example.com" and attrs["Expires"] == "Wed, 09 Jun 2021 10:18:14 GMT"
    assert attrs["secure"] is None and attrs["HTTPONLY"] is None
    assert cookies.format_set_cookie_header(name, value, attrs) == (
        "SID=31d4d96e407aad42; Path=/; Domain=example.com; Expires=Wed, 09 Jun 2021 10:18:14 GMT; Secure; HttpOnly"
    )
    assert cookies.parse_set_cookie_header("") is None
    assert cookies.parse_set_cookie_header("nameless")[:2] == ("", "nameless")
    assert cookies.format_set_cookie_header("", "nameless") == "nameless"
    assert [c[0] for c in cookies.parse_set_cookie_headers(["a=1", "", "b=2"])] == ["a", "b"]
    assert cookies.format_set_cookie_header("a", "1", [("Path", "/"), ("Secure", None)]) == "a=1; Path=/; Secure"


def test_cookie_attrs_last_value_wins_case_insensitive():
    attrs = CookieAttrs([("Path", "/a"), ("path", "/b")])
    assert attrs["PATH"] == "/b"
    assert attrs.get_all("path") == ["/a", "/b"]


def test_expiration():
    now = 1_000_000_000.0
    assert cookies.get_expiration_ts(CookieAttrs([("Max-Age", "60")]), now) == now + 60
    expires = email.utils.formatdate(now + 3600, usegmt=True)
    attrs = CookieAttrs([("Expires", expires), ("Max-Age", "10")])
    assert cookies.get_expiration_ts(attrs, now) == now + 10  # Max-Age wins
    assert cookies.get_expiration_ts(CookieAttrs([("Expires", expires)]), now) == now + 3600
    assert cookies.get_expiration_ts(CookieAttrs(), now) is None
    assert cookies.get_expiration_ts(CookieAttrs([("Expires", "garbage")]), now) is None
    assert cookies.get_expiration_ts(CookieAttrs([("Max-Age", "x"), ("Expires", expires)]), now) == now + 3600
    assert cookies.is_expired(CookieAttrs([("Max-Age", "0")]), now)
    assert not cookies.is_expired(CookieAttrs([("Max-Age", "1")]), now)
    assert not cookies.is_expired(CookieAttrs(), now)
