"""Choosing the resolver for DNS that LAN hosts send to the gateway itself."""

from __future__ import annotations

from gateway.links.tun.lan_dns import pick_resolver


def test_the_first_nameserver_that_is_not_ourselves() -> None:
    assert pick_resolver(["10.0.0.1"], ["10.0.0.1", "192.0.2.53", "198.51.100.53"]) == ("192.0.2.53", 53)


def test_ipv6_spellings_of_our_own_address_are_recognised() -> None:
    assert pick_resolver(["fd00::1"], ["fd00:0:0::0001"]) is None
    assert pick_resolver(["fd00::1"], ["fd00:0:0::0001", "::1"]) == ("::1", 53)


def test_no_usable_nameserver() -> None:
    assert pick_resolver(["10.0.0.1"], []) is None
    assert pick_resolver(["10.0.0.1"], ["not-an-address", "10.0.0.1"]) is None
