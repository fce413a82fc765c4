"""ICMP / ICMPv6: echo policies, errors and where they must not be sent, NDP ignored."""

from __future__ import annotations

import pytest
from scapy.all import (
    ICMP,
    IP,
    TCP,
    UDP,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6MLReport,
    ICMPv6ND_NS,
    ICMPv6ND_RS,
    ICMPv6ParamProblem,
    ICMPv6TimeExceeded,
    IPv6,
    IPv6ExtHdrRouting,
    raw,
)

from netstack.config import StackConfig
from netstack.events import IcmpEchoAnswered, IcmpEchoRequest
from netstack.stack import Stack

C4, S4, OWN4 = "10.9.0.2", "198.51.100.20", "10.9.0.1"
C6, S6, OWN6 = "fd00::2", "2001:db8::20", "fd00::1"


def events(st: Stack) -> list:
    out = []
    while (ev := st.next_event()) is not None:
        out.append(ev)
    return out


def test_echo_reply_v4_mirrors_request() -> None:
    st = Stack()
    st.receive_packet(raw(IP(src=C4, dst=S4, ttl=3) / ICMP(type=8, id=0x1234, seq=9) / b"ping data"), 0.0)
    (pkt,) = st.packets_to_send()
    got = IP(pkt)
    assert (got.src, got.dst, got[ICMP].type, got[ICMP].id, got[ICMP].seq) == (S4, C4, 0, 0x1234, 9)
    assert bytes(got[ICMP].payload) == b"ping data" and got.ttl == 64
    chk = got[ICMP].chksum
    del got[ICMP].chksum
    assert IP(raw(got))[ICMP].chksum == chk
    assert events(st) == [IcmpEchoAnswered(C4, S4, 4)]


def test_echo_reply_v6_mirrors_request() -> None:
    st = Stack()
    st.receive_packet(raw(IPv6(src=C6, dst=S6) / ICMPv6EchoRequest(id=7, seq=8, data=b"hello")), 0.0)
    (pkt,) = st.packets_to_send()
    got = IPv6(pkt)
    rep = got[ICMPv6EchoReply]
    assert (got.src, got.dst, rep.id, rep.seq, rep.data) == (S6, C6, 7, 8, b"hello")
    chk = rep.cksum
    del got[ICMPv6EchoReply].cksum
    assert IPv6(raw(got))[ICMPv6EchoReply].cksum == chk


@pytest.mark.parametrize(
    ("policy", "dst", "answered"),
    [("any", S4, True), ("own", S4, False), ("own", OWN4, True), ("none", OWN4, False)],
)
def test_echo_policies(policy: str, dst: str, answered: bool) -> None:
    st = Stack(StackConfig(echo_reply=policy, addresses=(OWN4, OWN6)))
    st.receive_packet(raw(IP(src=C4, dst=dst) / ICMP(type=8)), 0.0)
    assert bool(st.packets_to_send()) is answered
    if not answered:
        assert st.counters["icmp.echo_not_answered"] == 1


def test_owner_policy_asks_the_owner_then_replies_for_it() -> None:
    st = Stack(StackConfig(echo_reply="owner"))
    st.receive_packet(raw(IPv6(src=C6, dst=S6) / ICMPv6EchoRequest(id=3, seq=4, data=b"xyz")), 0.0)
    st.receive_packet(raw(IP(src=C4, dst=S4) / ICMP(type=8, id=5, seq=6) / b"abc"), 0.0)
    assert st.packets_to_send() == []
    req6, req4 = events(st)
    assert req6 == IcmpEchoRequest(C6, S6, 3, 4, b"xyz", 6)
    assert req4 == IcmpEchoRequest(C4, S4, 5, 6, b"abc", 4)
    st.icmp_echo_reply(req4)
    st.icmp_echo_reply(req6)
    r4, r6 = st.packets_to_send()
    assert IP(r4)[ICMP].type == 0 and IP(r4)[ICMP].id == 5 and bytes(IP(r4)[ICMP].payload) == b"abc"
    assert IPv6(r6)[ICMPv6EchoReply].data == b"xyz" and IPv6(r6).src == S6


def test_echo_to_broadcast_or_multicast_is_ignored() -> None:
    st = Stack()
    st.receive_packet(raw(IP(src=C4, dst="255.255.255.255") / ICMP(type=8)), 0.0)
    st.receive_packet(raw(IPv6(src=C6, dst="ff02::1") / ICMPv6EchoRequest()), 0.0)
    assert st.packets_to_send() == []
    assert st.counters["icmp.echo_not_unicast"] == 1 and st.counters["icmp6.echo_not_unicast"] == 1


def test_bad_icmp_checksum_is_counted() -> None:
    st = Stack()
    st.receive_packet(raw(IP(src=C4, dst=S4) / ICMP(type=8, chksum=1)), 0.0)
    st.receive_packet(raw(IPv6(src=C6, dst=S6) / ICMPv6EchoRequest(cksum=1)), 0.0)
    assert st.packets_to_send() == []
    assert st.counters["icmp.bad_checksum"] == 1 and st.counters["icmp6.bad_checksum"] == 1


def test_neighbour_and_router_discovery_and_mld_are_ignored() -> None:
    st = Stack()
    st.receive_packet(raw(IPv6(src="::", dst="ff02::1:ff00:1", hlim=255) / ICMPv6ND_NS(tgt="fd00::1")), 0.0)
    st.receive_packet(raw(IPv6(src="fe80::1", dst="ff02::2", hlim=255) / ICMPv6ND_RS()), 0.0)
    st.receive_packet(raw(IPv6(src="fe80::1", dst="ff02::16", hlim=1) / ICMPv6MLReport()), 0.0)
    assert st.packets_to_send() == [] and events(st) == []
    assert st.counters["icmp6.ndp_ignored"] == 2 and st.counters["icmp6.mld_ignored"] == 1


def test_unknown_protocol_draws_protocol_unreachable() -> None:
    st = Stack()
    st.receive_packet(raw(IP(src=C4, dst=S4, proto=132) / b"sctp-ish payload"), 0.0)
    (pkt,) = st.packets_to_send()
    got = IP(pkt)
    assert (got.src, got.dst, got[ICMP].type, got[ICMP].code) == (S4, C4, 3, 2)
    assert st.counters["ipv4.unknown_protocol"] == 1


def test_unknown_next_header_draws_parameter_problem() -> None:
    st = Stack()
    st.receive_packet(raw(IPv6(src=C6, dst=S6, nh=132) / b"sctp-ish payload"), 0.0)
    (pkt,) = st.packets_to_send()
    pp = IPv6(pkt)[ICMPv6ParamProblem]
    assert pp.code == 1 and pp.ptr == 6


def test_routing_header_with_segments_left_draws_parameter_problem() -> None:
    st = Stack()
    st.receive_packet(
        raw(IPv6(src=C6, dst=S6) / IPv6ExtHdrRouting(addresses=["2001:db8::99"], segleft=1) / UDP()), 0.0
    )
    (pkt,) = st.packets_to_send()
    pp = IPv6(pkt)[ICMPv6ParamProblem]
    assert (IPv6(pkt).dst, pp.code, pp.ptr) == (C6, 0, 42)
    assert st.counters["ipv6.routing_header"] == 1


def test_no_error_about_an_icmp_error() -> None:
    st = Stack()
    # a "destination unreachable" carried in an unknown-protocol wrapper cannot exist; use
    # a TTL-expired ICMP error with router_hop on: errors about errors are suppressed
    st2 = Stack(StackConfig(router_hop=True))
    st2.receive_packet(
        raw(IP(src=C4, dst=S4, ttl=1) / ICMP(type=3, code=1) / raw(IP(src=S4, dst=C4) / UDP())), 0.0
    )
    assert st2.packets_to_send() == [] and st2.counters["icmp.error_suppressed"] == 1
    st.receive_packet(
        raw(IP(src=C4, dst=S4) / ICMP(type=3, code=4, nexthopmtu=1280) / raw(IP(src=S4, dst=C4) / TCP())), 0.0
    )
    assert st.packets_to_send() == [] and st.counters["rx.icmp.frag_needed"] == 1


def test_router_hop_answers_low_ttl_with_time_exceeded_from_own_address() -> None:
    st = Stack(StackConfig(router_hop=True, addresses=(OWN4, OWN6)))
    st.receive_packet(raw(IP(src=C4, dst=S4, ttl=1) / UDP(sport=33434, dport=33434)), 0.0)
    st.receive_packet(raw(IPv6(src=C6, dst=S6, hlim=1) / UDP(sport=33434, dport=33434)), 0.0)
    st.receive_packet(raw(IP(src=C4, dst=S4, ttl=2) / UDP(sport=33435, dport=33434)), 0.0)
    p4, p6 = st.packets_to_send()
    assert IP(p4).src == OWN4 and IP(p4)[ICMP].type == 11 and IP(p4)[ICMP].code == 0
    assert IPv6(p6).src == OWN6 and IPv6(p6)[ICMPv6TimeExceeded].code == 0
    assert [e.src[1] for e in events(st) if hasattr(e, "data")] == [33435]


def test_low_ttl_is_accepted_by_default_rfc1122() -> None:
    st = Stack()
    st.receive_packet(raw(IP(src=C4, dst=S4, ttl=1) / UDP(sport=1, dport=2) / b"x"), 0.0)
    assert [e.data for e in events(st)] == [b"x"]


def test_icmp_errors_are_rate_limited() -> None:
    st = Stack(StackConfig(icmp_error_rate=10.0, icmp_error_burst=5.0))
    for _ in range(20):
        st.receive_packet(raw(IP(src=C4, dst=S4, proto=99) / b"x"), 0.0)
    assert len(st.packets_to_send()) == 5
    assert st.counters["icmp.rate_limited"] == 15
    st.receive_packet(raw(IP(src=C4, dst=S4, proto=99) / b"x"), 0.5)  # 5 tokens refilled
    assert len(st.packets_to_send()) == 1


def test_martian_sources_are_dropped() -> None:
    st = Stack()
    st.receive_packet(raw(IP(src="127.0.0.1", dst=S4) / ICMP(type=8)), 0.0)
    st.receive_packet(raw(IP(src="224.0.0.1", dst=S4) / ICMP(type=8)), 0.0)
    st.receive_packet(raw(IPv6(src="::1", dst=S6) / UDP()), 0.0)
    assert st.packets_to_send() == []
    assert st.counters["ipv4.bad_source"] == 2 and st.counters["ipv6.bad_source"] == 1


def test_frag_needed_lowers_the_path_mtu_for_our_datagrams() -> None:
    st = Stack(StackConfig(mtu=1500))
    quoted = raw(IP(src=S4, dst=C4) / UDP(sport=53, dport=4000))[:28]
    st.receive_packet(raw(IP(src="10.9.0.254", dst=S4) / ICMP(type=3, code=4, nexthopmtu=1000) / quoted), 1.0)
    assert st.path_mtu(C4) == 1000 and st.path_mtu("10.9.0.3") == 1500
    st.udp_send((S4, 53), (C4, 4000), b"x" * 1400)
    frags = st.packets_to_send()
    assert len(frags) == 2 and all(len(f) <= 1000 for f in frags)
    # a forged tiny MTU is floored at 576, and the entry expires after 10 minutes
    st.receive_packet(raw(IP(src="10.9.0.254", dst=S4) / ICMP(type=3, code=4, nexthopmtu=68) / quoted), 2.0)
    assert st.path_mtu(C4) == 576
    st.handle_timer(700.0)
    assert st.path_mtu(C4) == 1500


def test_packet_too_big_lowers_the_ipv6_path_mtu() -> None:
    from scapy.all import ICMPv6PacketTooBig

    st = Stack(StackConfig(mtu=1500))
    quoted = raw(IPv6(src=S6, dst=C6) / UDP(sport=53, dport=4000) / (b"x" * 1400))
    st.receive_packet(raw(IPv6(src="fd00::fe", dst=S6) / ICMPv6PacketTooBig(mtu=1280) / quoted[:1232]), 1.0)
    assert st.path_mtu(C6) == 1280
    st.udp_send((S6, 53), (C6, 4000), b"x" * 1400)
    assert all(len(f) <= 1280 for f in st.packets_to_send())
