"""The per-client map address -> name learned from DNS answers (time injected)."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from gateway.dns import DNSMessage, ResourceRecord
from gateway.proxy.resolved_names import ResolvedNames, client_key

PHONE, OTHER = ("wireguard", "key-phone"), ("wireguard", "key-other")


def answer(question: str, *records: ResourceRecord) -> DNSMessage:
    return DNSMessage.make_query(question).succeed(list(records))


def test_the_asked_name_labels_the_address_not_the_cname_target() -> None:
    names = ResolvedNames()
    response = answer(
        "www.lab.test",
        ResourceRecord.CNAME("www.lab.test", "edge.cdn.test"),
        ResourceRecord.A("edge.cdn.test", ipaddress.IPv4Address("10.99.3.2"), ttl=300),
        ResourceRecord.AAAA("edge.cdn.test", ipaddress.IPv6Address("fd99:3::2"), ttl=300),
    )
    names.learn_message(PHONE, response, now=1000.0)
    assert names.lookup(PHONE, "10.99.3.2", 1001.0) == "www.lab.test"
    assert names.lookup(PHONE, "fd99:3:0::2", 1001.0) == "www.lab.test"  # any spelling of the IP
    assert names.lookup(PHONE, "::ffff:10.99.3.2", 1001.0) == "www.lab.test"
    assert names.lookup(PHONE, "10.99.3.3", 1001.0) is None


def test_labels_are_per_client() -> None:
    names = ResolvedNames()
    names.learn(PHONE, "a.test", [("192.0.2.1", 60)], now=0.0)
    names.learn(OTHER, "b.test", [("192.0.2.1", 60)], now=0.0)
    assert names.lookup(PHONE, "192.0.2.1", 1.0) == "a.test"
    assert names.lookup(OTHER, "192.0.2.1", 1.0) == "b.test"
    assert names.lookup(("wireguard", "stranger"), "192.0.2.1", 1.0) is None
    assert names.lookup(None, "192.0.2.1", 1.0) is None


def test_entries_expire_with_the_ttl_floored_and_capped() -> None:
    names = ResolvedNames(min_ttl=30, max_ttl=3600)
    names.learn(PHONE, "long.test", [("192.0.2.1", 600)], now=0.0)
    names.learn(PHONE, "zero.test", [("192.0.2.2", 0)], now=0.0)
    names.learn(PHONE, "huge.test", [("192.0.2.3", 10**9)], now=0.0)
    assert names.lookup(PHONE, "192.0.2.1", 599.0) == "long.test"
    assert names.lookup(PHONE, "192.0.2.1", 600.0) is None
    assert names.lookup(PHONE, "192.0.2.2", 29.0) == "zero.test"  # still there right after
    assert names.lookup(PHONE, "192.0.2.2", 30.0) is None
    assert names.lookup(PHONE, "192.0.2.3", 3599.0) == "huge.test"
    assert names.lookup(PHONE, "192.0.2.3", 3600.0) is None


def test_the_latest_answer_wins() -> None:
    names = ResolvedNames()
    names.learn(PHONE, "first.test", [("192.0.2.1", 60)], now=0.0)
    names.learn(PHONE, "Second.Test.", [("192.0.2.1", 60)], now=1.0)
    assert names.lookup(PHONE, "192.0.2.1", 2.0) == "second.test"


def test_size_bounds_drop_the_least_recently_learned() -> None:
    names = ResolvedNames(max_names=3, max_clients=2)
    for i in range(5):
        names.learn(PHONE, f"n{i}.test", [(f"192.0.2.{i}", 60)], now=0.0)
    assert [names.lookup(PHONE, f"192.0.2.{i}", 1.0) for i in range(5)] == [None, None, "n2.test", "n3.test", "n4.test"]
    names.learn(OTHER, "o.test", [("192.0.2.9", 60)], now=0.0)
    names.learn(("ip", "10.0.0.9"), "t.test", [("192.0.2.9", 60)], now=0.0)
    assert names.lookup(PHONE, "192.0.2.4", 1.0) is None  # the oldest client went
    assert names.lookup(OTHER, "192.0.2.9", 1.0) == "o.test"
    assert len(names) == 2


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 50), st.integers(0, 10**6)), max_size=200))
def test_never_more_than_the_bounds(ops: list[tuple[int, int, int]]) -> None:
    names = ResolvedNames(max_names=8, max_clients=3)
    for client, host, ttl in ops:
        names.learn(("ip", f"10.0.0.{client}"), f"h{host}.test", [(f"192.0.2.{host}", ttl)], now=0.0)
    assert len(names) <= 8 * 3


def test_queries_errors_and_non_address_records_teach_nothing() -> None:
    names = ResolvedNames()
    names.learn_message(PHONE, DNSMessage.make_query("q.test"), now=0.0)
    names.learn_message(PHONE, answer("t.test", ResourceRecord.TXT("t.test", "192.0.2.7")), now=0.0)
    broken = ResourceRecord.A("b.test", ipaddress.IPv4Address("192.0.2.8"))
    broken.data = b"\x01\x02"  # not four bytes: skipped, not raised
    names.learn_message(PHONE, answer("b.test", broken), now=0.0)
    assert len(names) == 0


def test_client_key_prefers_the_wireguard_peer() -> None:
    class C:
        wireguard_key = "abc="
        peername = ("10.0.0.2", 5000)

    class D:
        wireguard_key = None
        peername = ("::ffff:10.0.0.3", 5000, 0, 0)

    assert client_key(C()) == ("wireguard", "abc=")
    assert client_key(D()) == ("ip", "10.0.0.3")
