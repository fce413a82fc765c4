import pytest

from gateway.net import server_spec
from gateway.net.server_spec import ServerSpec, is_valid_host


@pytest.mark.parametrize(
    "spec, default, expected",
    [
        ("http://example.com", "https", ("http", ("example.com", 80))),
        ("https://example.com/", "http", ("https", ("example.com", 443))),
        ("example.com", "https", ("https", ("example.com", 443))),
        ("example.com:8443", "http", ("http", ("example.com", 8443))),
        ("tcp://10.0.0.1:5000", "http", ("tcp", ("10.0.0.1", 5000))),
        ("dns://9.9.9.9", "http", ("dns", ("9.9.9.9", 53))),
        ("http://[::1]:8080", "http", ("http", ("::1", 8080))),
        ("[2001:db8::1]", "https", ("https", ("2001:db8::1", 443))),
        ("HTTP://Example.com", "https", ("http", ("Example.com", 80))),
        ("http://bücher.example", "http", ("http", ("bücher.example", 80))),
        ("quic://example.com", "http", ("quic", ("example.com", 443))),
    ],
)
def test_parse(spec, default, expected):
    parsed = server_spec.parse(spec, default)
    assert parsed == expected
    assert isinstance(parsed, ServerSpec)
    assert (parsed.scheme, parsed.address) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "Invalid server specification"),
        ("http://example.com/path", "Invalid server specification"),
        ("ftp://example.com", "Invalid server scheme: 'ftp'"),
        ("http://exa_mple..com", "Invalid hostname"),
        ("http://-bad.example", "Invalid hostname"),
        ("http://example.com:0", "Invalid port"),
        ("http://example.com:70000", "Invalid port"),
        ("tcp://example.com", "Port specification missing"),
        ("http://[not:an:ip]", "Invalid IPv6 address"),
    ],
)
def test_invalid(spec, message):
    with pytest.raises(ValueError, match="Invalid|Port") as e:
        server_spec.parse(spec, "http")
    assert message in str(e.value)


def test_is_valid_host():
    for host in ("example.com", "a.b.c", "xn--bcher-kva.example", "bücher.example", "10.0.0.1", "::1", "localhost",
                 "example.com.", "under_score.example"):  # fmt: skip
        assert is_valid_host(host), host
    for host in ("", "a b", "-a.example", "a-.example", "a" * 64 + ".example", "x." * 130 + "com", "a..b"):
        assert not is_valid_host(host), host
