"""ICMP fragmentation-needed / packet-too-big lowers the MSS of the TCP connection it quotes
(RFC 1191, RFC 8201), and only when the quoted sequence number is in flight (RFC 5927 4.1).

Errors are built with scapy from the segments the stack really sent, as a router would.
"""

from __future__ import annotations

import pytest
from scapy.all import ICMP, IP, TCP, UDP, ICMPv6PacketTooBig, IPv6, raw

from netstack.config import StackConfig
from netstack.events import TcpConnectionRequest
from netstack.stack import Stack
from netstack.tcp.events import Connected

C4, S4, R4 = "10.9.0.2", "198.51.100.20", "10.9.0.254"
C6, S6, R6 = "fd00::2", "2001:db8::20", "fd00::fe"
ISN = 0xFFFFFF00  # the client's sequence numbers wrap during the test
FAMILIES = [pytest.param((IP, C4, S4), id="ipv4"), pytest.param((IPv6, C6, S6), id="ipv6")]


def events(st: Stack) -> list:
    out = []
    while (ev := st.next_event()) is not None:
        out.append(ev)
    return out


def connect(st: Stack, fam, sport: int = 40000, now: float = 1.0) -> int:
    ip, src, dst = fam
    opts = [("MSS", 1460), ("SAckOK", b""), ("WScale", 7)]
    st.receive_packet(
        raw(
            ip(src=src, dst=dst) / TCP(sport=sport, dport=443, flags="S", seq=ISN, window=65535, options=opts)
        ),
        now,
    )
    (req,) = [e for e in events(st) if isinstance(e, TcpConnectionRequest)]
    assert st.accept_tcp(req.conn_id)
    (synack,) = st.packets_to_send()
    sa = ip(synack)[TCP]
    ack = raw(
        ip(src=src, dst=dst)
        / TCP(sport=sport, dport=443, flags="A", seq=ISN + 1 & 0xFFFFFFFF, ack=sa.seq + 1, window=65535)
    )
    st.receive_packet(ack, now)
    assert [type(e.event) for e in events(st)] == [Connected]
    return req.conn_id


def drain(st: Stack, now: float, rounds: int = 200) -> tuple[list[bytes], float]:
    """Everything the stack sends, following its timers (pacing) without any ACK."""
    out = st.packets_to_send()
    for _ in range(rounds):
        t = st.get_timer()
        if t is None or t > now + 0.05:  # stop before the retransmission timer
            break
        now = max(now, t)
        st.handle_timer(now)
        out += st.packets_to_send()
    return out, now


def too_big(fam, sent: bytes, mtu: int) -> bytes:
    """The error a router on the path returns for ``sent`` (quoting as much as it may)."""
    ip, _client, server = fam
    if ip is IP:
        return raw(IP(src=R4, dst=server) / ICMP(type=3, code=4, nexthopmtu=mtu) / sent[:548])
    return raw(IPv6(src=R6, dst=server) / ICMPv6PacketTooBig(mtu=mtu) / sent[:1232])


def data_segments(fam, packets: list[bytes]) -> list:
    ip = fam[0]
    return [ip(p) for p in packets if len(ip(p)[TCP].payload)]


@pytest.mark.parametrize("fam", FAMILIES)
def test_packet_too_big_shrinks_segments_in_flight_and_after(fam) -> None:
    st = Stack(StackConfig(mtu=1500))
    cid = connect(st, fam)
    st.tcp_send(cid, bytes(range(256)) * 200)
    first, now = drain(st, 1.0)
    segs = data_segments(fam, first)
    assert segs and max(len(raw(s)) for s in segs) == 1500
    st.receive_packet(too_big(fam, raw(segs[0]), 1280), now)
    assert st.counters["rx.icmp.path_mss_set"] == 1
    assert st.path_mtu(fam[1]) == 1280
    later, _ = drain(st, now)
    resent = data_segments(fam, later)
    assert resent, "data in flight is resent at the new size at once"
    assert all(len(raw(s)) <= 1280 for s in resent)
    # the resend starts at the segment the router dropped
    assert resent[0][TCP].seq == segs[0][TCP].seq


@pytest.mark.parametrize("fam", FAMILIES)
def test_minimal_rfc792_quote_of_eight_tcp_bytes_is_enough(fam) -> None:
    st = Stack(StackConfig(mtu=1500))
    cid = connect(st, fam)
    st.tcp_send(cid, b"x" * 5000)
    segs = data_segments(fam, drain(st, 1.0)[0])
    hlen = 20 if fam[0] is IP else 40
    st.receive_packet(too_big(fam, raw(segs[0])[: hlen + 8], 1280), 1.0)
    assert st.counters["rx.icmp.path_mss_set"] == 1


@pytest.mark.parametrize("fam", FAMILIES)
def test_spoofed_error_with_a_sequence_number_not_in_flight_changes_nothing(fam) -> None:
    st = Stack(StackConfig(mtu=1500))
    cid = connect(st, fam)
    st.tcp_send(cid, b"x" * 20000)
    segs = data_segments(fam, drain(st, 1.0)[0])
    in_flight_end = max(s[TCP].seq + len(s[TCP].payload) for s in segs)
    for seq in (segs[0][TCP].seq - 1, in_flight_end, segs[0][TCP].seq + 2**31):
        forged = segs[0].copy()
        forged[TCP].seq = seq & 0xFFFFFFFF
        st.receive_packet(too_big(fam, raw(forged), 1280), 1.0)
    assert st.counters["icmp.pmtu_bad_seq"] == 3
    assert st.counters["rx.icmp.path_mss_set"] == 0
    assert st.path_mtu(fam[1]) == 1500
    # the connection still sends full-size segments once the client acknowledges
    ip, client, server = fam
    ack = ip(src=client, dst=server) / TCP(
        sport=40000, dport=443, flags="A", seq=(ISN + 1) & 0xFFFFFFFF, ack=in_flight_end, window=65535
    )
    st.receive_packet(raw(ack), 1.01)
    assert max(len(raw(s)) for s in data_segments(fam, drain(st, 1.01)[0])) == 1500


@pytest.mark.parametrize("fam", FAMILIES)
def test_error_quoting_no_connection_is_counted_and_ignored(fam) -> None:
    ip, client, server = fam
    st = Stack(StackConfig(mtu=1500))
    connect(st, fam)
    quoted = raw(ip(src=server, dst=client) / TCP(sport=443, dport=40001, seq=1, flags="A") / (b"x" * 100))
    st.receive_packet(too_big(fam, quoted, 1280), 1.0)
    assert st.counters["icmp.pmtu_no_connection"] == 1
    assert st.path_mtu(client) == 1500


def test_error_with_a_truncated_tcp_quote_is_a_counted_drop() -> None:
    st = Stack()
    quoted = raw(IP(src=S4, dst=C4) / TCP(sport=443, dport=40000))[:24]
    st.receive_packet(raw(IP(src=R4, dst=S4) / ICMP(type=3, code=4, nexthopmtu=1280) / quoted), 1.0)
    assert st.counters["icmp.pmtu_short_quote"] == 1 and st.path_mtu(C4) == 1500


@pytest.mark.parametrize("fam", FAMILIES)
def test_new_connection_to_a_client_with_a_known_path_mtu_starts_small(fam) -> None:
    ip, client, server = fam
    st = Stack(StackConfig(mtu=1500))
    # a UDP reply taught the path MTU (no TCP check applies to datagrams)
    quoted = raw(ip(src=server, dst=client) / UDP(sport=53, dport=4000) / (b"x" * 1400))
    st.receive_packet(too_big(fam, quoted, 1280), 1.0)
    assert st.path_mtu(client) == 1280
    cid = connect(st, fam, sport=40002)
    st.tcp_send(cid, b"z" * 20000)
    segs = data_segments(fam, drain(st, 1.0)[0])
    assert segs and all(len(raw(s)) <= 1280 for s in segs)
