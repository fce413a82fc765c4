"""Every kind of bad or unwanted packet is dropped, never raises, and is counted exactly once
under its own reason (issue 6: "counters for everything dropped and why").  Packets are
built with scapy, then broken where scapy would not break them.
"""

from __future__ import annotations

import struct

import pytest
from scapy.all import (
    ICMP,
    IP,
    TCP,
    UDP,
    HBHOptUnknown,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6MLQuery,
    ICMPv6ND_NA,
    ICMPv6ND_RA,
    ICMPv6ND_Redirect,
    ICMPv6ND_RS,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    raw,
)

from netstack.config import StackConfig
from netstack.stack import Stack

C4, S4 = "10.9.0.2", "198.51.100.20"
C6, S6 = "fd00::2", "2001:db8::20"


def _fix_ip_checksum(pkt: bytes) -> bytes:
    """Recompute an IPv4 header checksum after editing the header by hand."""
    from netstack.checksum import checksum

    ihl = (pkt[0] & 0x0F) * 4
    hdr = bytearray(pkt[:ihl])
    hdr[10:12] = b"\x00\x00"
    hdr[10:12] = struct.pack("!H", checksum(bytes(hdr)))
    return bytes(hdr) + pkt[ihl:]


def _set(pkt: bytes, offset: int, value: bytes) -> bytes:
    return pkt[:offset] + value + pkt[offset + len(value) :]


udp4 = raw(IP(src=C4, dst=S4) / UDP(sport=1000, dport=53) / b"query")
tcp4_ack = raw(IP(src=C4, dst=S4) / TCP(sport=1000, dport=80, flags="A", seq=1, ack=1))
udp6 = raw(IPv6(src=C6, dst=S6) / UDP(sport=1000, dport=53) / b"query")

CASES = [
    # IP
    pytest.param(b"", "ip.empty", id="empty"),
    pytest.param(b"\x50" + bytes(39), "ip.bad_version", id="version-5"),
    pytest.param(udp4[:15], "ipv4.truncated", id="ipv4-truncated"),
    pytest.param(_fix_ip_checksum(_set(udp4, 0, b"\x44")), "ipv4.bad_ihl", id="ipv4-ihl-4"),
    pytest.param(
        _fix_ip_checksum(_set(udp4, 2, struct.pack("!H", 16))), "ipv4.bad_total_length", id="ipv4-len"
    ),
    pytest.param(_set(udp4, 10, b"\x00\x01"), "ipv4.bad_checksum", id="ipv4-checksum"),
    pytest.param(raw(IP(src=C4, dst=S4, flags="evil") / UDP()), "ipv4.reserved_flag", id="ipv4-evil-bit"),
    pytest.param(raw(IP(src="127.0.0.1", dst=S4) / UDP()), "ipv4.bad_source", id="ipv4-loopback-src"),
    pytest.param(raw(IP(src=C4, dst=S4, proto=99) / b"x"), "ipv4.unknown_protocol", id="ipv4-proto-99"),
    pytest.param(
        raw(IP(src=C4, dst=S4, frag=8190, flags="MF") / (b"x" * 64)), "frag4.too_big", id="frag-past-64k"
    ),
    pytest.param(raw(IPv6(src=C6, dst=S6) / UDP())[:30], "ipv6.truncated", id="ipv6-truncated"),
    pytest.param(raw(IPv6(src="::1", dst=S6) / UDP()), "ipv6.bad_source", id="ipv6-loopback-src"),
    pytest.param(raw(IPv6(src=C6, dst=S6, nh=59)), "ipv6.no_next_header", id="ipv6-nh-59"),
    pytest.param(raw(IPv6(src=C6, dst=S6, nh=99) / b"x"), "ipv6.unknown_protocol", id="ipv6-nh-99"),
    pytest.param(
        raw(IPv6(src=C6, dst=S6) / IPv6ExtHdrHopByHop() / UDP())[:42], "ipv6.truncated", id="ipv6-cut-in-ext"
    ),
    pytest.param(
        raw(
            IPv6(src=C6, dst=S6)
            / IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x40, optdata=b"ab")])
            / UDP()
        ),
        "ipv6.unknown_option",
        id="ipv6-unknown-option-discard",
    ),
    # TCP
    pytest.param(raw(IP(src=C4, dst=S4, proto=6) / (b"\x00" * 10)), "tcp.truncated", id="tcp-truncated"),
    pytest.param(_set(tcp4_ack, 36, b"\x00\x01"), "tcp.bad_checksum", id="tcp-checksum"),
    pytest.param(
        raw(IP(src=C4, dst=S4) / TCP(sport=1, dport=80, dataofs=3)), "tcp.bad_data_offset", id="tcp-doff-3"
    ),
    pytest.param(
        raw(IP(src=C4, dst=S4) / TCP(sport=1, dport=80, flags="SF")), "tcp.syn_fin", id="tcp-syn-fin"
    ),
    pytest.param(
        raw(IP(src=C4, dst=S4) / TCP(sport=1, dport=0, flags="S")), "tcp.port_zero", id="tcp-port-0"
    ),
    pytest.param(
        raw(IP(src=C4, dst="224.0.0.5") / TCP(sport=1, dport=80, flags="S")),
        "tcp.syn_not_unicast",
        id="tcp-syn-mc",
    ),
    pytest.param(tcp4_ack, "tcp.no_connection", id="tcp-ack-no-conn"),
    pytest.param(
        raw(IP(src=C4, dst=S4) / TCP(sport=1, dport=80, flags="R")),
        "tcp.no_connection_rst",
        id="tcp-rst-no-conn",
    ),
    # UDP
    pytest.param(raw(IP(src=C4, dst=S4, proto=17) / b"\x00\x01\x00"), "udp.truncated", id="udp-truncated"),
    pytest.param(
        raw(IP(src=C4, dst=S4) / UDP(sport=1, dport=2, len=4) / b"x"), "udp.bad_length", id="udp-len"
    ),
    pytest.param(_set(udp4, 26, b"\x00\x01"), "udp.bad_checksum", id="udp-checksum"),
    pytest.param(_set(udp6, 46, b"\x00\x00"), "udp.zero_checksum_ipv6", id="udp6-zero-checksum"),
    pytest.param(raw(IP(src=C4, dst=S4) / UDP(sport=53, dport=0)), "udp.port_zero", id="udp-port-0"),
    pytest.param(
        raw(IP(src=C4, dst="224.0.0.251") / UDP(sport=5353, dport=5353)), "udp.not_unicast", id="udp-mc"
    ),
    # ICMP
    pytest.param(raw(IP(src=C4, dst=S4, proto=1) / b"\x08\x00"), "icmp.truncated", id="icmp-truncated"),
    pytest.param(raw(IP(src=C4, dst=S4) / ICMP(type=8, chksum=1)), "icmp.bad_checksum", id="icmp-checksum"),
    pytest.param(
        raw(IP(src=C4, dst="255.255.255.255") / ICMP(type=8)),
        "icmp.echo_not_unicast",
        id="icmp-echo-broadcast",
    ),
    pytest.param(raw(IP(src=C4, dst=S4) / ICMP(type=0)), "icmp.unexpected_echo_reply", id="icmp-echo-reply"),
    pytest.param(raw(IP(src=C4, dst=S4) / ICMP(type=42)), "icmp.unhandled_type", id="icmp-type-42"),
    pytest.param(
        raw(
            IP(src=C4, dst=S4) / ICMP(type=3, code=4, nexthopmtu=1280) / raw(IP(src=S4, dst=C4) / TCP())[:24]
        ),
        "icmp.pmtu_short_quote",
        id="icmp-frag-needed-short-quote",
    ),
    pytest.param(raw(IPv6(src=C6, dst=S6, nh=58) / b"\x80"), "icmp6.truncated", id="icmp6-truncated"),
    pytest.param(
        raw(IPv6(src=C6, dst=S6) / ICMPv6EchoRequest(cksum=1)), "icmp6.bad_checksum", id="icmp6-checksum"
    ),
    pytest.param(
        raw(IPv6(src=C6, dst="ff02::1") / ICMPv6EchoRequest()),
        "icmp6.echo_not_unicast",
        id="icmp6-echo-multicast",
    ),
    pytest.param(
        raw(IPv6(src=C6, dst=S6) / ICMPv6EchoReply()), "icmp6.unexpected_echo_reply", id="icmp6-echo-reply"
    ),
    pytest.param(
        raw(IPv6(src="fe80::1", dst="ff02::1", hlim=255) / ICMPv6ND_RA()), "icmp6.ndp_ignored", id="nd-ra"
    ),
    pytest.param(
        raw(IPv6(src="fe80::1", dst="ff02::2", hlim=255) / ICMPv6ND_RS()), "icmp6.ndp_ignored", id="nd-rs"
    ),
    pytest.param(
        raw(IPv6(src="fe80::1", dst="ff02::1", hlim=255) / ICMPv6ND_NA(tgt="fe80::1")),
        "icmp6.ndp_ignored",
        id="nd-na",
    ),
    pytest.param(
        raw(IPv6(src="fe80::1", dst=C6, hlim=255) / ICMPv6ND_Redirect(tgt="fe80::2", dst=S6)),
        "icmp6.ndp_ignored",
        id="nd-redirect",
    ),
    pytest.param(
        raw(IPv6(src="fe80::1", dst="ff02::1", hlim=1) / ICMPv6MLQuery()), "icmp6.mld_ignored", id="mld-query"
    ),
]


@pytest.mark.parametrize(("packet", "reason"), CASES)
def test_each_bad_packet_is_counted_once_under_its_reason(packet: bytes, reason: str) -> None:
    st = Stack()
    st.receive_packet(packet, 1.0)
    assert st.counters.drops() == {reason: 1}
    assert st.counters["stack.internal_error"] == 0
    # nothing was delivered to the owner
    assert st.next_event() is None


def test_ttl_and_hop_limit_exceeded_are_counted_when_acting_as_a_router_hop() -> None:
    st = Stack(StackConfig(router_hop=True))
    st.receive_packet(raw(IP(src=C4, dst=S4, ttl=1) / UDP(sport=1, dport=2)), 1.0)
    st.receive_packet(raw(IPv6(src=C6, dst=S6, hlim=1) / UDP(sport=1, dport=2)), 1.0)
    assert st.counters.drops() == {"ipv4.ttl_exceeded": 1, "ipv6.hop_limit_exceeded": 1}


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(_set(tcp4_ack, 36, b"\x00\x01"), id="tcp"),
        pytest.param(_set(udp4, 26, b"\x00\x01"), id="udp"),
        pytest.param(raw(IP(src=C4, dst=S4) / ICMP(type=8, chksum=1)), id="icmp"),
        pytest.param(raw(IPv6(src=C6, dst=S6) / ICMPv6EchoRequest(cksum=1)), id="icmp6"),
    ],
)
def test_upper_layer_checksums_are_verified_unless_the_link_vouches(packet: bytes) -> None:
    untrusted = Stack()
    untrusted.receive_packet(packet, 1.0)
    assert [k for k in untrusted.counters.drops() if k.endswith("bad_checksum")]
    trusted = Stack()
    trusted.receive_packet(packet, 1.0, trusted=True)
    assert not [k for k in trusted.counters.drops() if k.endswith("bad_checksum")]
    # and it was handled: an answer (RST, echo reply) or a datagram for the owner
    assert trusted.packets_to_send() or trusted.next_event() is not None


def test_the_ipv4_header_checksum_is_verified_even_on_a_trusted_link() -> None:
    """Trust covers what the link's integrity check covers: the inner checksums only."""
    st = Stack()
    st.receive_packet(_set(udp4, 10, b"\x00\x01"), 1.0, trusted=True)
    assert st.counters.drops() == {"ipv4.bad_checksum": 1}


def test_withheld_answers_do_not_count_the_same_packet_twice() -> None:
    st = Stack(StackConfig(icmp_error_rate=1.0, icmp_error_burst=1.0, rst_rate=1.0, rst_burst=1.0))
    for _ in range(3):
        st.receive_packet(raw(IP(src=C4, dst=S4, proto=99) / b"x"), 1.0)  # protocol unreachable
        st.receive_packet(tcp4_ack, 1.0)  # RST
    assert len(st.packets_to_send()) == 2  # one of each, the rest rate-limited
    assert st.counters["icmp.rate_limited"] == 2 and st.counters["tcp.rst_rate_limited"] == 2
    assert st.counters.drops() == {"ipv4.unknown_protocol": 3, "tcp.no_connection": 3}
    assert st.counters.total_drops() == 6
