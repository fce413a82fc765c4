"""IPv6 fixed header and extension header walking (RFC 8200), scapy-built packets."""

from __future__ import annotations

import pytest
from scapy.all import (
    UDP,
    HBHOptUnknown,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    Raw,
    raw,
)

from netstack.errors import PacketError
from netstack.ipv6 import NH_FRAGMENT, build_ipv6, is_unicast_source, parse_ipv6

SRC = "fd00::2"
DST = "2001:db8::10"


def parse(pkt) -> object:
    return parse_ipv6(memoryview(raw(pkt)))


def test_fixed_header_fields() -> None:
    data = raw(IPv6(src=SRC, dst=DST, hlim=9, tc=0x20, fl=0x12345) / UDP(sport=5, dport=6) / b"abc")
    p = parse_ipv6(memoryview(data))
    assert (p.proto, p.hop_limit, p.tclass, p.flow, p.frag) == (17, 9, 0x20, 0x12345, None)
    assert bytes(p.payload) == data[40:]


def test_trailing_bytes_beyond_payload_length_are_cut() -> None:
    data = raw(IPv6(src=SRC, dst=DST) / UDP() / b"abc")
    p = parse_ipv6(memoryview(data + b"\xff" * 7))
    assert bytes(p.payload) == data[40:] and len(p.packet) == len(data)


def test_extension_chain_is_walked_to_the_upper_layer() -> None:
    pkt = (
        IPv6(src=SRC, dst=DST)
        / IPv6ExtHdrHopByHop()
        / IPv6ExtHdrDestOpt()
        / IPv6ExtHdrRouting(segleft=0)
        / IPv6ExtHdrDestOpt()
        / UDP(sport=7, dport=8)
        / b"data"
    )
    p = parse(pkt)
    assert p.proto == 17
    assert bytes(p.payload[:4]) == b"\x00\x07\x00\x08" and bytes(p.payload[8:]) == b"data"


def test_routing_header_with_segments_left_draws_parameter_problem() -> None:
    pkt = IPv6(src=SRC, dst=DST) / IPv6ExtHdrRouting(addresses=["2001:db8::99"], segleft=1) / UDP()
    with pytest.raises(PacketError) as e:
        parse(pkt)
    assert e.value.reason == "ipv6.routing_header"
    assert e.value.icmp == (4, 0, 42)  # pointer at the routing type field


def test_hop_by_hop_after_another_header_is_refused() -> None:
    pkt = IPv6(src=SRC, dst=DST) / IPv6ExtHdrDestOpt() / IPv6ExtHdrHopByHop() / UDP()
    with pytest.raises(PacketError) as e:
        parse(pkt)
    assert e.value.reason == "ipv6.misplaced_hop_by_hop" and e.value.icmp[:2] == (4, 1)


@pytest.mark.parametrize(
    ("otype", "reason", "icmp"),
    [
        (0x1E, None, None),  # 00: skip
        (0x5E, "ipv6.unknown_option", None),  # 01: discard silently
        (0x9E, "ipv6.unknown_option", (4, 2, 42)),  # 10: discard + parameter problem
        (0xDE, "ipv6.unknown_option", (4, 2, 42)),  # 11: discard + PP unless multicast
    ],
)
def test_unknown_option_actions(otype: int, reason: str | None, icmp) -> None:
    pkt = (
        IPv6(src=SRC, dst=DST)
        / IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=otype, optdata=b"\x00\x00\x00\x00")])
        / UDP()
    )
    if reason is None:
        assert parse(pkt).proto == 17
        return
    with pytest.raises(PacketError) as e:
        parse(pkt)
    assert e.value.reason == reason and e.value.icmp == icmp


def test_unknown_option_of_type_11_to_multicast_is_discarded_without_icmp() -> None:
    pkt = (
        IPv6(src=SRC, dst="ff02::1")
        / IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0xDE, optdata=b"\x00" * 4)])
        / UDP()
    )
    with pytest.raises(PacketError) as e:
        parse(pkt)
    assert e.value.icmp is None


def test_fragment_header_hands_the_rest_to_reassembly() -> None:
    pkt = IPv6(src=SRC, dst=DST) / IPv6ExtHdrFragment(id=0xABCDEF, offset=2, m=1, nh=17) / Raw(b"x" * 32)
    p = parse(pkt)
    assert p.proto == NH_FRAGMENT
    assert p.frag == (16, True, 0xABCDEF, 17)
    assert bytes(p.payload) == b"x" * 32 and len(p.unfragmentable) == 40


def test_atomic_fragment_is_processed_at_once() -> None:
    pkt = IPv6(src=SRC, dst=DST) / IPv6ExtHdrFragment(id=1, offset=0, m=0) / UDP(sport=1, dport=2) / b"z"
    p = parse(pkt)
    assert p.proto == 17 and p.frag is None and bytes(p.payload)[8:] == b"z"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x60" + b"\x00" * 30, "ipv6.truncated"),
        (raw(IPv6(src=SRC, dst=DST, plen=100) / UDP()), "ipv6.truncated"),
        (b"\x40" + raw(IPv6(src=SRC, dst=DST) / UDP())[1:], "ipv6.bad_version"),
        (raw(IPv6(src=SRC, dst=DST, plen=0, nh=0)) + b"\x00" * 8, "ipv6.jumbogram"),
        (raw(IPv6(src=SRC, dst=DST, nh=60, plen=4)) + b"\x11\x00\x00\x00", "ipv6.truncated_extension"),
        (
            raw(IPv6(src=SRC, dst=DST, nh=60, plen=8)) + b"\x11\x05\x00\x00\x00\x00\x00\x00",
            "ipv6.truncated_extension",
        ),
        (raw(IPv6(src=SRC, dst=DST, nh=60, plen=8)) + b"\x11\x00\x01\x09\x00\x00\x00\x00", "ipv6.bad_option"),
        (raw(IPv6(src=SRC, dst=DST, nh=44, plen=4)) + b"\x11\x00\x00\x08", "ipv6.truncated_extension"),
    ],
)
def test_malformed_packets(data: bytes, reason: str) -> None:
    with pytest.raises(PacketError) as e:
        parse_ipv6(memoryview(data))
    assert e.value.reason == reason


def test_built_packet_matches_scapy() -> None:
    import socket

    s = socket.inet_pton(socket.AF_INET6, SRC)
    d = socket.inet_pton(socket.AF_INET6, DST)
    built = build_ipv6(s, d, 17, raw(UDP(sport=1, dport=2)), hop_limit=3)
    ref = IPv6(built)
    assert (ref.version, ref.plen, ref.nh, ref.hlim, ref.src, ref.dst) == (6, 8, 17, 3, SRC, DST)


@pytest.mark.parametrize(
    ("ip", "ok"),
    [("fe80::1", True), ("::", False), ("::1", False), ("ff02::1", False), ("2001:db8::1", True)],
)
def test_sources(ip: str, ok: bool) -> None:
    import socket

    assert is_unicast_source(socket.inet_pton(socket.AF_INET6, ip)) is ok
