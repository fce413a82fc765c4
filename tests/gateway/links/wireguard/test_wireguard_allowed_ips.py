"""Longest-prefix matching of the allowed-IPs table, against Python's ipaddress as the model."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.links.wireguard.allowed_ips import AllowedIPs


def test_longest_prefix_wins_and_families_are_separate() -> None:
    table: AllowedIPs[str] = AllowedIPs()
    table.insert("0.0.0.0/0", "default")
    table.insert("10.0.0.0/8", "ten")
    table.insert("10.0.0.2/32", "phone")
    table.insert("fd00::/64", "ula")
    table.insert("fd00::2/128", "phone6")
    assert table.lookup("10.0.0.2") == "phone"
    assert table.lookup("10.0.0.3") == "ten"
    assert table.lookup("192.0.2.1") == "default"
    assert table.lookup("fd00::2") == "phone6"
    assert table.lookup("fd00::3") == "ula"
    assert table.lookup("2001:db8::1") is None
    table.remove_value("ten")
    assert table.lookup("10.0.0.3") == "default"
    assert [str(n) for n in table.prefixes_of("phone")] == ["10.0.0.2/32"]


def test_host_bits_are_ignored_and_reinsert_moves_a_prefix() -> None:
    table: AllowedIPs[str] = AllowedIPs()
    table.insert("10.1.2.3/16", "a")
    assert table.lookup("10.1.255.255") == "a"
    table.insert("10.1.0.0/16", "b")
    assert table.lookup("10.1.0.1") == "b"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)), min_size=1, max_size=20),
       st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20))
def test_matches_a_linear_scan(prefixes: list[tuple[int, int]], probes: list[int]) -> None:
    table: AllowedIPs[int] = AllowedIPs()
    nets = []
    for i, (addr, length) in enumerate(prefixes):
        net = ipaddress.IPv4Network((addr, length), strict=False)
        table.insert(net, i)
        nets = [(n, v) for n, v in nets if n != net] + [(net, i)]
    for probe in probes:
        address = ipaddress.IPv4Address(probe)
        matches = [(n.prefixlen, v) for n, v in nets if address in n]
        expected = max(matches)[1] if matches else None
        assert table.lookup(address.packed) == expected
