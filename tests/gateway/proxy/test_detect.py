"""Next-layer choice from first bytes, and host matching for ignore/allow/tcp hosts."""

from hypothesis import given
from hypothesis import strategies as st

from gateway.proxy.detect import Protocol, classify, host_matches, should_ignore


def test_classify():
    assert classify(b"\x16\x03\x01\x02\x00\x01") is Protocol.TLS
    assert classify(b"GET / HTTP/1.1\r\n") is Protocol.HTTP
    assert classify(b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n") is Protocol.HTTP
    assert classify(b"M-SEARCH * HTTP/1.1\r\n") is Protocol.HTTP
    assert classify(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") is Protocol.HTTP
    assert classify(b"GE") is Protocol.UNDECIDED
    assert classify(b"PRI * HTTP/2") is Protocol.UNDECIDED
    assert classify(b"\x16") is Protocol.UNDECIDED
    assert classify(b"\x16\x03") is Protocol.UNDECIDED
    assert classify(b"\x16\n") is Protocol.RAW
    assert classify(b"SSH-2.0-OpenSSH") is Protocol.RAW
    assert classify(b"\x00\x01") is Protocol.RAW


def test_raw_lines_that_begin_like_a_request_are_raw():
    # The lab's bulk server protocol, and other almost-HTTP first lines.
    assert classify(b"GET 1000\n") is Protocol.RAW
    assert classify(b"PUT 30000000\n" + bytes(100)) is Protocol.RAW
    assert classify(b"GET / HTTP/1.1\n") is Protocol.RAW  # no CR
    assert classify(b"GET / HTTP/2.0\r\n") is Protocol.RAW
    assert classify(b"GET / HTTP/1.12") is Protocol.RAW
    assert classify(b"GET  / HTTP/1.1\r\n") is Protocol.RAW
    assert classify(b"GET /a b HTTP/1.1\r\n") is Protocol.RAW
    assert classify(b"get / HTTP/1.1\r\n") is Protocol.RAW
    assert classify(b"GET /\r\n") is Protocol.RAW  # HTTP/0.9 is not spoken here
    assert classify(b"GET / HTTP/1.1\rX") is Protocol.RAW
    assert classify(b"GET /" + b"a" * 20000) is Protocol.RAW  # no line end within the bound


_methods = st.from_regex(rb"\A[A-Z][A-Z_-]{0,15}\Z", fullmatch=True)
_targets = st.from_regex(rb"\A[\x21-\x7e]{1,40}\Z", fullmatch=True)


@given(_methods, _targets, st.sampled_from([b"0", b"1"]), st.binary(max_size=20))
def test_every_prefix_of_a_request_line_waits_and_the_line_is_http(method, target, minor, rest):
    line = method + b" " + target + b" HTTP/1." + minor + b"\r\n"
    assert classify(line + rest) is Protocol.HTTP
    for i in range(1, len(line)):
        assert classify(line[:i]) is Protocol.UNDECIDED, line[:i]


@given(st.binary(min_size=1, max_size=40))
def test_classify_total(data):
    assert classify(data) in Protocol


@given(st.binary(max_size=40).filter(lambda d: b"\n" not in d), st.binary(max_size=20))
def test_a_complete_first_line_always_decides(head, rest):
    data = head + b"\n" + rest
    if b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".startswith(data):
        return  # still on its way to being the HTTP/2 preface
    assert classify(data) is not Protocol.UNDECIDED


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
