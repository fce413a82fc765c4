import dataclasses

import pytest

from gateway.proxy.mode_specs import (
    ProxyMode,
    RegularMode,
    ReverseMode,
    Socks5Mode,
    TransparentMode,
    TunMode,
    UpstreamMode,
    WireGuardMode,
)


@pytest.mark.parametrize(
    "spec, cls, data, host, port, transport",
    [
        ("regular", RegularMode, "", "", 8080, "tcp"),
        ("regular@8081", RegularMode, "", "", 8081, "tcp"),
        ("regular@127.0.0.1:8081", RegularMode, "", "127.0.0.1", 8081, "tcp"),
        ("regular@[::1]:8081", RegularMode, "", "::1", 8081, "tcp"),
        ("REGULAR", RegularMode, "", "", 8080, "tcp"),
        ("transparent", TransparentMode, "", "", 8080, "tcp"),
        ("socks5", Socks5Mode, "", "", 1080, "tcp"),
        ("socks5@0.0.0.0:1081", Socks5Mode, "", "0.0.0.0", 1081, "tcp"),
        ("upstream:http://proxy.local:3128", UpstreamMode, "http://proxy.local:3128", "", 8080, "tcp"),
        ("reverse:https://example.com", ReverseMode, "https://example.com", "", 8080, "tcp"),
        ("reverse:example.com@443", ReverseMode, "example.com", "", 443, "tcp"),
        ("reverse:dns://9.9.9.9", ReverseMode, "dns://9.9.9.9", "", 53, "both"),
        ("reverse:udp://10.0.0.1:9000", ReverseMode, "udp://10.0.0.1:9000", "", 8080, "udp"),
        ("wireguard", WireGuardMode, "", "", 51820, "udp"),
        ("wireguard:/etc/gateway/wg.conf@51821", WireGuardMode, "/etc/gateway/wg.conf", "", 51821, "udp"),
        ("tun", TunMode, "", "", None, "both"),
        ("tun:gw0", TunMode, "gw0", "", None, "both"),
    ],
)
def test_parse(spec, cls, data, host, port, transport):
    mode = ProxyMode.parse(spec)
    assert type(mode) is cls
    assert mode.full_spec == spec
    assert mode.data == data
    assert mode.listen_host() == host
    assert mode.listen_port() == port
    assert mode.transport_protocol == transport
    assert isinstance(mode.description, str) and mode.description
    assert repr(mode) == f"ProxyMode.parse({spec!r})"
    assert ProxyMode.from_state(mode.get_state()) == mode


def test_type_names():
    assert [m.type_name for m in (RegularMode, TransparentMode, Socks5Mode, UpstreamMode, ReverseMode,
                                  WireGuardMode, TunMode)] == [
        "regular", "transparent", "socks5", "upstream", "reverse", "wireguard", "tun",
    ]  # fmt: skip


def test_server_spec_modes_expose_scheme_and_address():
    up = ProxyMode.parse("upstream:https://proxy.local")
    assert (up.scheme, up.address) == ("https", ("proxy.local", 443))
    rev = ProxyMode.parse("reverse:example.com:8443")
    assert (rev.scheme, rev.address) == ("https", ("example.com", 8443))  # reverse defaults to https
    rev6 = ProxyMode.parse("reverse:http://[2001:db8::1]:8080")
    assert rev6.address == ("2001:db8::1", 8080)


def test_listen_defaults():
    mode = ProxyMode.parse("regular")
    assert mode.listen_host("127.0.0.1") == "127.0.0.1"
    assert mode.listen_port(9999) == 9999
    custom = ProxyMode.parse("regular@10.0.0.1:8000")
    assert custom.listen_host("127.0.0.1") == "10.0.0.1" and custom.listen_port(9999) == 8000
    assert ProxyMode.parse("regular@0").listen_port() == 0  # port 0: pick a free one


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "unknown mode ''"),
        ("nonsense", "unknown mode 'nonsense'"),
        ("regular:data", "regular mode takes no data"),
        ("socks5:x", "socks5 mode takes no data"),
        ("regular@", "nothing after '@'"),
        ("regular@port", "invalid port 'port'"),
        ("regular@65536", "invalid port '65536'"),
        ("regular@127.0.0.1:-1", "invalid port '-1'"),
        ("upstream", "upstream mode needs a server"),
        ("upstream:ftp://x", "Invalid server scheme: 'ftp'"),
        ("upstream:dns://x", "does not support scheme 'dns'"),
        ("reverse:", "reverse mode needs a server"),
        ("reverse:http://exa mple.com", "Invalid hostname"),
        ("reverse:tcp://example.com", "Port specification missing"),
        ("tun@8080", "tun mode does not listen on a port"),
        ("tun:way-too-long-interface-name", "not a valid interface name"),
        ("tun:bad/name", "not a valid interface name"),
    ],
)
def test_bad_specs_raise_clear_valueerrors(spec, message):
    with pytest.raises(ValueError, match="invalid mode spec|Invalid|unknown") as e:
        ProxyMode.parse(spec)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_parse_on_a_subclass_checks_the_kind():
    assert isinstance(RegularMode.parse("regular@1"), RegularMode)
    with pytest.raises(ValueError, match="not a spec for a regular mode"):
        RegularMode.parse("socks5")
    with pytest.raises(ValueError):
        ProxyMode.parse(None)  # type: ignore[arg-type]


def test_modes_are_immutable_and_cached():
    mode = ProxyMode.parse("regular@8080")
    assert ProxyMode.parse("regular@8080") is mode
    with pytest.raises(dataclasses.FrozenInstanceError):
        mode.data = "x"  # type: ignore[misc]
    mode.set_state("regular@8080")
    with pytest.raises(dataclasses.FrozenInstanceError):
        mode.set_state("regular@8081")
    assert hash(mode) == hash(ProxyMode.parse("regular@8080"))
    assert mode != ProxyMode.parse("regular@8081")
