"""Next-layer choice from first bytes, and host matching for ignore/allow/tcp hosts."""

from hypothesis import given
from hypothesis import strategies as st

from gateway.proxy.detect import Protocol, classify, host_matches, should_ignore


def test_classify():
    assert classify(b"\x16\x03\x01\x02\x00\x01") is Protocol.TLS
    assert classify(b"GET / HTTP/1.1\r\n") is Protocol.HTTP
    assert classify(b"CONNECT x:443 HTTP/1.1") is Protocol.HTTP
    assert classify(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") is Protocol.HTTP
    assert classify(b"GE") is Protocol.UNDECIDED
    assert classify(b"\x16") is Protocol.UNDECIDED
    assert classify(b"SSH-2.0-OpenSSH") is Protocol.RAW
    assert classify(b"GETX") is Protocol.RAW
    assert classify(b"\x00\x01") is Protocol.RAW


@given(st.binary(min_size=1, max_size=40))
def test_classify_total(data):
    assert classify(data) in Protocol


def test_host_matching():
    assert host_matches([r"example\.com"], ("www.example.com", 443))
    assert host_matches([r"^example\.com:443$"], ("example.com", 443))
    assert not host_matches([r"^example\.com:443$"], ("example.com", 8443))
    assert host_matches([r"^pinned\.app$"], ("1.2.3.4", 443), "pinned.app")
    assert host_matches([r"^\[::1\]:443$"], ("::1", 443))
    assert not host_matches([], ("x", 1))
    assert should_ignore([r"bank"], [], ("mybank.test", 443))
    assert not should_ignore([], [r"^intercept\.me"], ("intercept.me", 443))
    assert should_ignore([], [r"^intercept\.me"], ("other.test", 443))
    assert not should_ignore([], [r"^intercept\.me"], ("10.0.0.1", 443), "intercept.me")
