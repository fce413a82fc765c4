"""The IP layer as seen through the whole Stack: IPv4 options are skipped and IPv6
extension headers walked on the way in (whatever the upper layer), and what we send
carries the configured TTL / hop limit and never options.  scapy builds and reads."""

from __future__ import annotations

import pytest
from scapy.all import (
    ICMP,
    IP,
    TCP,
    UDP,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    IPOption_Router_Alert,
    IPOption_RR,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrHopByHop,
    PadN,
    raw,
)

from netstack.config import StackConfig
from netstack.events import IcmpEchoAnswered, TcpConnectionRequest, UdpDatagram
from netstack.stack import Stack

C4, S4 = "10.9.0.2", "198.51.100.20"
C6, S6 = "fd00::2", "2001:db8::20"
V4_OPTIONS = [IPOption_RR(routers=["10.0.0.1", "10.0.0.2"]), IPOption_Router_Alert()]


def v6_ext() -> IPv6ExtHdrHopByHop:
    return IPv6ExtHdrHopByHop(options=[PadN(optdata=b"\x00\x00\x00\x00")]) / IPv6ExtHdrDestOpt(
        options=[PadN(optdata=b"\x00" * 4)]
    )


def events(st: Stack) -> list:
    out = []
    while (ev := st.next_event()) is not None:
        out.append(ev)
    return out


@pytest.mark.parametrize(
    "outer",
    [
        pytest.param(lambda: IP(src=C4, dst=S4, options=V4_OPTIONS), id="ipv4-options"),
        pytest.param(lambda: IPv6(src=C6, dst=S6) / v6_ext(), id="ipv6-hbh-destopt"),
    ],
)
def test_udp_behind_options_or_extension_headers_is_delivered(outer) -> None:
    pkt = outer() / UDP(sport=4000, dport=53) / b"question"
    if pkt.haslayer(IP):
        assert raw(pkt)[0] & 0x0F > 5
    st = Stack()
    st.receive_packet(raw(pkt), 1.0)
    (ev,) = events(st)
    assert isinstance(ev, UdpDatagram) and ev.data == b"question" and ev.src[1] == 4000 and ev.dst[1] == 53
    assert st.counters.drops() == {}


@pytest.mark.parametrize(
    ("outer", "ip"),
    [
        pytest.param(lambda: IP(src=C4, dst=S4, options=V4_OPTIONS), IP, id="ipv4-options"),
        pytest.param(lambda: IPv6(src=C6, dst=S6) / v6_ext(), IPv6, id="ipv6-hbh-destopt"),
    ],
)
def test_tcp_syn_behind_options_or_extension_headers_is_answered_plainly(outer, ip) -> None:
    st = Stack()
    st.receive_packet(raw(outer() / TCP(sport=4000, dport=443, flags="S", seq=7)), 1.0)
    (req,) = events(st)
    assert isinstance(req, TcpConnectionRequest) and req.dst[1] == 443
    assert st.accept_tcp(req.conn_id)
    (synack,) = st.packets_to_send()
    got = ip(synack)
    assert got[TCP].flags == "SA" and got[TCP].ack == 8
    if ip is IP:
        assert got.ihl == 5 and got.options == []
    else:
        assert got.nh == 6  # no extension headers of ours


def test_echo_behind_options_and_extension_headers_is_answered() -> None:
    st = Stack()
    st.receive_packet(raw(IP(src=C4, dst=S4, options=V4_OPTIONS) / ICMP(type=8, id=1, seq=2) / b"p"), 1.0)
    st.receive_packet(raw(IPv6(src=C6, dst=S6) / v6_ext() / ICMPv6EchoRequest(id=3, seq=4, data=b"q")), 1.0)
    p4, p6 = st.packets_to_send()
    assert IP(p4)[ICMP].type == 0 and bytes(IP(p4)[ICMP].payload) == b"p"
    assert IPv6(p6)[ICMPv6EchoReply].data == b"q"
    assert events(st) == [IcmpEchoAnswered(C4, S4, 4), IcmpEchoAnswered(C6, S6, 6)]


def test_everything_we_send_carries_the_configured_ttl_and_hop_limit() -> None:
    st = Stack(StackConfig(ttl=33))
    st.receive_packet(raw(IP(src=C4, dst=S4) / TCP(sport=4000, dport=443, flags="S")), 1.0)
    st.receive_packet(raw(IPv6(src=C6, dst=S6) / TCP(sport=4000, dport=443, flags="S")), 1.0)
    for ev in events(st):
        st.accept_tcp(ev.conn_id)
    st.udp_send((S4, 53), (C4, 4000), b"a")
    st.udp_send((S6, 53), (C6, 4000), b"b")
    st.udp_send((S4, 53), (C4, 4000), b"c" * 3000)  # fragments too
    st.receive_packet(raw(IP(src=C4, dst=S4) / ICMP(type=8)), 1.0)
    st.receive_packet(raw(IPv6(src=C6, dst=S6) / ICMPv6EchoRequest()), 1.0)
    out = st.packets_to_send()
    assert len(out) == 2 + 2 + 3 + 2
    limits = [IP(p).ttl if p[0] >> 4 == 4 else IPv6(p).hlim for p in out]
    assert limits == [33] * len(out)
