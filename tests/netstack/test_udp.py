"""UDP through the stack: delivery with original addresses, checksums, flows, refusal."""

from __future__ import annotations

import pytest
from scapy.all import ICMP, IP, UDP, ICMPv6DestUnreach, IPerror6, IPv6, UDPerror, raw

from netstack.config import StackConfig
from netstack.events import UdpDatagram, UdpFlowExpired
from netstack.stack import Stack

C4, S4 = "10.9.0.2", "198.51.100.20"
C6, S6 = "fd00::2", "2001:db8::20"


def events(st: Stack) -> list:
    out = []
    while (ev := st.next_event()) is not None:
        out.append(ev)
    return out


@pytest.mark.parametrize(("ip", "c", "s"), [(IP, C4, S4), (IPv6, C6, S6)])
def test_datagram_arrives_with_original_addresses(ip, c: str, s: str) -> None:
    st = Stack()
    st.receive_packet(raw(ip(src=c, dst=s) / UDP(sport=5353, dport=443) / b"quic?"), 1.0)
    st.receive_packet(raw(ip(src=c, dst=s) / UDP(sport=5353, dport=443) / b"again"), 1.1)
    assert events(st) == [
        UdpDatagram((c, 5353), (s, 443), b"quic?", True),
        UdpDatagram((c, 5353), (s, 443), b"again", False),
    ]
    assert st.udp_flow_count == 1


@pytest.mark.parametrize(("ip", "c", "s"), [(IP, C4, S4), (IPv6, C6, S6)])
def test_reply_is_built_from_the_original_destination(ip, c: str, s: str) -> None:
    st = Stack()
    st.udp_send((s, 443), (c, 5353), b"answer")
    (pkt,) = st.packets_to_send()
    got = ip(pkt)
    assert (got.src, got.dst, got[UDP].sport, got[UDP].dport, bytes(got[UDP].payload)) == (
        s,
        c,
        443,
        5353,
        b"answer",
    )
    chk = got[UDP].chksum
    del got[UDP].chksum
    assert ip(raw(got))[UDP].chksum == chk


@pytest.mark.parametrize(("ip", "c", "s", "prefix"), [(IP, C4, S4, ""), (IPv6, C6, S6, "")])
def test_bad_checksum_is_dropped_unless_trusted(ip, c: str, s: str, prefix: str) -> None:
    bad = raw(ip(src=c, dst=s) / UDP(sport=1, dport=2, chksum=0x1234) / b"data")
    st = Stack()
    st.receive_packet(bad, 0.0)
    assert events(st) == [] and st.counters["udp.bad_checksum"] == 1
    st.receive_packet(bad, 0.0, trusted=True)
    assert [e.data for e in events(st)] == [b"data"]


def test_zero_checksum_means_none_over_ipv4_but_is_refused_over_ipv6() -> None:
    st = Stack()
    st.receive_packet(raw(IP(src=C4, dst=S4) / UDP(sport=1, dport=2, chksum=0) / b"v4"), 0.0)
    st.receive_packet(raw(IPv6(src=C6, dst=S6) / UDP(sport=1, dport=2, chksum=0) / b"v6"), 0.0)
    assert [e.data for e in events(st)] == [b"v4"]
    assert st.counters["udp.zero_checksum_ipv6"] == 1


def test_length_field_shorter_than_payload_trims_and_longer_drops() -> None:
    st = Stack()
    short = IP(src=C4, dst=S4) / UDP(sport=1, dport=2, len=12, chksum=0) / b"abcdEXTRA"
    st.receive_packet(raw(short), 0.0)
    assert [e.data for e in events(st)] == [b"abcd"]
    long = IP(src=C4, dst=S4) / UDP(sport=1, dport=2, len=40, chksum=0) / b"abcd"
    st.receive_packet(raw(long), 0.0)
    bad = IP(src=C4, dst=S4) / UDP(sport=1, dport=2, len=7, chksum=0) / b"abcd"
    st.receive_packet(raw(bad), 0.0)
    assert events(st) == []
    assert st.counters["udp.truncated"] == 1 and st.counters["udp.bad_length"] == 1


def test_multicast_and_broadcast_are_not_delivered() -> None:
    st = Stack()
    st.receive_packet(raw(IP(src=C4, dst="224.0.0.251") / UDP(sport=5353, dport=5353) / b"mdns"), 0.0)
    st.receive_packet(raw(IP(src=C4, dst="255.255.255.255") / UDP(sport=68, dport=67) / b"dhcp"), 0.0)
    st.receive_packet(raw(IPv6(src=C6, dst="ff02::fb") / UDP(sport=5353, dport=5353) / b"mdns"), 0.0)
    assert events(st) == [] and st.counters["udp.not_unicast"] == 3
    assert st.packets_to_send() == []


def test_flows_expire_after_idle_timeout_and_replies_keep_them_alive() -> None:
    st = Stack(StackConfig(udp_idle_timeout=30.0))
    st.receive_packet(raw(IP(src=C4, dst=S4) / UDP(sport=1000, dport=53) / b"q"), 0.0)
    st.receive_packet(raw(IP(src=C4, dst=S4) / UDP(sport=1001, dport=53) / b"q"), 5.0)
    events(st)
    st.udp_send((S4, 53), (C4, 1000), b"a", now=20.0)
    assert st.get_timer() == pytest.approx(35.0)
    st.handle_timer(35.0)
    assert events(st) == [UdpFlowExpired((C4, 1001), (S4, 53))]
    st.handle_timer(49.9)
    assert events(st) == []
    st.handle_timer(50.0)
    assert events(st) == [UdpFlowExpired((C4, 1000), (S4, 53))]
    assert st.udp_flow_count == 0 and st.get_timer() is None
    st.receive_packet(raw(IP(src=C4, dst=S4) / UDP(sport=1000, dport=53) / b"q"), 60.0)
    assert events(st)[0].new_flow is True


def test_flow_table_is_bounded() -> None:
    st = Stack(StackConfig(max_udp_flows=4))
    for port in range(1000, 1010):
        st.receive_packet(raw(IP(src=C4, dst=S4) / UDP(sport=port, dport=53) / b"q"), 0.0)
    evs = events(st)
    assert st.udp_flow_count == 4
    assert [e.src[1] for e in evs if isinstance(e, UdpFlowExpired)] == list(range(1000, 1006))
    assert st.counters["udp.flow_evicted"] == 6


def test_refused_datagram_draws_port_unreachable_v4() -> None:
    st = Stack()
    st.receive_packet(raw(IP(src=C4, dst=S4) / UDP(sport=4444, dport=9) / b"discard me"), 0.0)
    (ev,) = events(st)
    st.refuse_udp(ev.src, ev.dst, ev.data)
    (pkt,) = st.packets_to_send()
    got = IP(pkt)
    assert (got.src, got.dst, got[ICMP].type, got[ICMP].code) == (S4, C4, 3, 3)
    assert got[UDPerror].sport == 4444 and got[UDPerror].dport == 9
    assert st.udp_flow_count == 0


def test_refused_datagram_draws_port_unreachable_v6() -> None:
    st = Stack()
    st.refuse_udp((C6, 4444), (S6, 9), b"x")
    (pkt,) = st.packets_to_send()
    got = IPv6(pkt)
    assert got.src == S6 and got.dst == C6
    assert got[ICMPv6DestUnreach].code == 4 and got[IPerror6].dst == S6
