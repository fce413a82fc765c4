"""Fragment reassembly (RFC 791, RFC 8200, RFC 5722) and fragmentation of what we send.

scapy fragments the packets we receive and reassembles the packets we send, so neither
direction is checked against our own code.
"""

from __future__ import annotations

import random

import pytest
from scapy.all import (
    ICMP,
    IP,
    UDP,
    ICMPv6TimeExceeded,
    IPv6,
    IPv6ExtHdrFragment,
    Raw,
    defragment,
    fragment,
    fragment6,
    raw,
)

from netstack.config import StackConfig
from netstack.counters import Counters
from netstack.events import UdpDatagram
from netstack.fragments import Reassembler, fragment_ipv4, fragment_ipv6
from netstack.stack import Stack

C4, S4 = "10.9.0.2", "203.0.113.5"
C6, S6 = "fd00::2", "2001:db8::5"


def udp_events(stack: Stack) -> list[UdpDatagram]:
    out = []
    while (ev := stack.next_event()) is not None:
        if isinstance(ev, UdpDatagram):
            out.append(ev)
    return out


def v4_frags(data: bytes, size: int = 400, ident: int = 77) -> list[bytes]:
    pkt = IP(src=C4, dst=S4, id=ident) / UDP(sport=4000, dport=53) / data
    return [raw(f) for f in fragment(pkt, fragsize=size)]


def v6_frags(data: bytes, size: int = 600, ident: int = 0x1234) -> list[bytes]:
    pkt = IPv6(src=C6, dst=S6) / IPv6ExtHdrFragment(id=ident) / UDP(sport=4000, dport=53) / data
    return [raw(f) for f in fragment6(pkt, size)]


@pytest.mark.parametrize("make", [v4_frags, v6_frags])
def test_out_of_order_fragments_reassemble(make) -> None:
    data = random.Random(1).randbytes(3000)
    frags = make(data)
    assert len(frags) >= 4
    random.Random(2).shuffle(frags)
    st = Stack()
    for f in frags:
        st.receive_packet(f, 1.0)
    (ev,) = udp_events(st)
    assert ev.data == data and ev.dst[1] == 53
    assert st.counters.drops() == {}
    assert st._frag4.bytes == 0 and st._frag6.bytes == 0 and len(st._frag4) == len(st._frag6) == 0


@pytest.mark.parametrize("make", [v4_frags, v6_frags])
def test_exact_duplicate_fragment_is_dropped_alone(make) -> None:
    data = bytes(range(256)) * 8
    frags = make(data)
    st = Stack()
    st.receive_packet(frags[1], 1.0)
    st.receive_packet(frags[1], 1.0)
    for f in frags[:1] + frags[2:]:
        st.receive_packet(f, 1.0)
    (ev,) = udp_events(st)
    assert ev.data == data
    prefix = "frag4" if make is v4_frags else "frag6"
    assert st.counters[f"{prefix}.duplicate"] == 1


def overlapping_v4(first_len: int, second_off: int) -> list[bytes]:
    """Two fragments of one datagram that overlap, then the rest."""
    payload = raw(UDP(sport=1, dport=2) / (b"A" * 200))
    a = raw(IP(src=C4, dst=S4, id=5, proto=17, flags="MF", frag=0) / Raw(payload[:first_len]))
    b = raw(IP(src=C4, dst=S4, id=5, proto=17, flags=0, frag=second_off // 8) / Raw(payload[second_off:]))
    return [a, b]


def test_overlapping_ipv4_fragments_discard_the_datagram() -> None:
    st = Stack()
    for f in overlapping_v4(112, 104):
        st.receive_packet(f, 1.0)
    assert udp_events(st) == []
    assert st.counters["frag4.overlap"] == 1
    # the tombstone swallows a late fragment that would otherwise complete it
    payload = raw(UDP(sport=1, dport=2) / (b"A" * 200))
    st.receive_packet(raw(IP(src=C4, dst=S4, id=5, proto=17, flags="MF", frag=0) / Raw(payload[:104])), 1.5)
    assert udp_events(st) == [] and st.counters["frag4.dead"] == 1


def test_overlapping_ipv6_fragments_discard_the_datagram_rfc5722() -> None:
    payload = raw(IPv6(src=C6, dst=S6) / UDP(sport=1, dport=2) / (b"B" * 300))[40:]
    hdr = IPv6(src=C6, dst=S6)
    f1 = raw(hdr / IPv6ExtHdrFragment(id=9, offset=0, m=1, nh=17) / Raw(payload[:160]))
    f2 = raw(hdr / IPv6ExtHdrFragment(id=9, offset=19, m=0, nh=17) / Raw(payload[152:]))  # 152 < 160
    st = Stack()
    st.receive_packet(f1, 1.0)
    st.receive_packet(f2, 1.0)
    assert udp_events(st) == [] and st.counters["frag6.overlap"] == 1
    # an honest set of fragments for the same id is refused until the tombstone expires
    f3 = raw(hdr / IPv6ExtHdrFragment(id=9, offset=20, m=0, nh=17) / Raw(payload[160:]))
    st.receive_packet(f3, 2.0)
    assert udp_events(st) == []
    st.handle_timer(1.0 + 60.0)
    st.receive_packet(f1, 62.0)
    st.receive_packet(f3, 62.0)
    (ev,) = udp_events(st)
    assert ev.data == b"B" * 300


def test_ipv6_non_final_fragment_length_must_be_multiple_of_8() -> None:
    hdr = IPv6(src=C6, dst=S6)
    st = Stack()
    st.receive_packet(raw(hdr / IPv6ExtHdrFragment(id=3, offset=0, m=1, nh=17) / Raw(b"x" * 21)), 1.0)
    assert st.counters["frag6.bad_length"] == 1


def test_fragment_beyond_65535_is_dropped() -> None:
    st = Stack()
    st.receive_packet(raw(IP(src=C4, dst=S4, id=1, proto=17, flags="MF", frag=8190) / Raw(b"x" * 64)), 1.0)
    st.receive_packet(
        raw(IPv6(src=C6, dst=S6) / IPv6ExtHdrFragment(id=3, offset=8190, m=1, nh=17) / Raw(b"x" * 64)), 1.0
    )
    assert st.counters["frag4.too_big"] == 1 and st.counters["frag6.too_big"] == 1


def test_incomplete_datagram_times_out_with_icmp_time_exceeded() -> None:
    st = Stack()
    frags = v4_frags(b"q" * 1000)
    st.receive_packet(frags[0], 10.0)  # first fragment only
    st.receive_packet(frags[2], 11.0)
    assert st.get_timer() == pytest.approx(40.0)
    st.handle_timer(39.9)
    assert st.packets_to_send() == []
    st.handle_timer(40.0)
    assert st.counters["frag4.timeout"] == 1 and st._frag4.bytes == 0
    (err,) = st.packets_to_send()
    icmp = IP(err)
    assert icmp.src == S4 and icmp.dst == C4
    assert icmp[ICMP].type == 11 and icmp[ICMP].code == 1
    assert icmp[ICMP].payload.src == C4 and icmp[ICMP].payload.id == 77


def test_ipv6_incomplete_datagram_times_out_after_60s() -> None:
    st = Stack()
    frags = v6_frags(b"r" * 2000)
    st.receive_packet(frags[0], 0.0)
    st.handle_timer(59.0)
    assert st.counters["frag6.timeout"] == 0
    st.handle_timer(60.0)
    assert st.counters["frag6.timeout"] == 1
    (err,) = st.packets_to_send()
    assert IPv6(err)[ICMPv6TimeExceeded].code == 1


def test_timeout_without_first_fragment_sends_nothing() -> None:
    st = Stack()
    st.receive_packet(v4_frags(b"q" * 1000)[1], 0.0)
    st.handle_timer(31.0)
    assert st.counters["frag4.timeout"] == 1 and st.packets_to_send() == []


def test_datagram_count_limit_evicts_oldest() -> None:
    st = Stack(StackConfig(frag_max_datagrams=8))
    for i in range(20):
        st.receive_packet(v4_frags(b"z" * 1000, ident=i)[0], float(i))
    assert len(st._frag4) == 8
    assert st.counters["frag4.evicted"] == 12
    # the newest survives and completes
    for f in v4_frags(b"z" * 1000, ident=19)[1:]:
        st.receive_packet(f, 20.0)
    assert [e.data for e in udp_events(st)] == [b"z" * 1000]


def test_memory_limit_holds_under_a_flood_of_never_ending_datagrams() -> None:
    st = Stack(StackConfig(frag_max_bytes=64 << 10))
    rng = random.Random(3)
    for i in range(3000):
        off = rng.randrange(0, 4000) // 8
        st.receive_packet(
            raw(IP(src=C4, dst=S4, id=i, proto=17, flags="MF", frag=off) / Raw(b"x" * 1200)), i * 0.001
        )
        assert st._frag4.bytes <= 64 << 10
    assert st.counters["frag4.evicted"] > 0


def test_fragments_per_datagram_limit() -> None:
    r = Reassembler(Counters(), "f", timeout=30, max_bytes=1 << 20, max_datagrams=10, max_fragments=4)
    for i in range(5):
        r.add("k", i * 8, True, b"x" * 8, 0.0)
    assert r.counters["f.too_many_fragments"] == 1 and r.bytes == 0


def test_conflicting_ends_discard() -> None:
    r = Reassembler(Counters(), "f", timeout=30, max_bytes=1 << 20, max_datagrams=10, max_fragments=10)
    r.add("k", 0, True, b"x" * 16, 0.0)
    r.add("k", 16, False, b"x" * 8, 0.0)
    assert r.counters["f.inconsistent"] == 0
    r2 = Reassembler(Counters(), "f", timeout=30, max_bytes=1 << 20, max_datagrams=10, max_fragments=10)
    r2.add("k", 32, False, b"x" * 8, 0.0)
    r2.add("k", 0, False, b"x" * 8, 0.0)
    assert r2.counters["f.inconsistent"] == 1
    r3 = Reassembler(Counters(), "f", timeout=30, max_bytes=1 << 20, max_datagrams=10, max_fragments=10)
    r3.add("k", 16, False, b"x" * 8, 0.0)
    r3.add("k", 24, True, b"x" * 8, 0.0)
    assert r3.counters["f.inconsistent"] == 1


@pytest.mark.parametrize("mtu", [576, 1280, 1420, 1500])
def test_ipv4_fragmentation_is_reassembled_by_scapy(mtu: int) -> None:
    payload = raw(UDP(sport=53, dport=4000, chksum=0) / random.Random(mtu).randbytes(3000))
    frags = fragment_ipv4(bytes([203, 0, 113, 5]), bytes([10, 9, 0, 2]), 17, payload, mtu, ident=321)
    assert all(len(f) <= mtu for f in frags)
    assert all((len(f) - 20) % 8 == 0 for f in frags[:-1])
    (whole,) = defragment([IP(f) for f in frags])
    assert raw(whole[IP].payload) == payload


def test_ipv6_fragmentation_is_reassembled_by_scapy() -> None:
    import socket

    from scapy.layers.inet6 import defragment6

    payload = random.Random(9).randbytes(3000)
    src = socket.inet_pton(socket.AF_INET6, S6)
    dst = socket.inet_pton(socket.AF_INET6, C6)
    frags = fragment_ipv6(src, dst, 17, payload, 1280, ident=0xDEAD)
    assert all(len(f) <= 1280 for f in frags) and len(frags) == 3
    whole = defragment6([IPv6(f) for f in frags])
    assert raw(whole)[40:] == payload and whole.nh == 17


@pytest.mark.parametrize(("client", "server", "ip"), [(C4, S4, IP), (C6, S6, IPv6)])
def test_3000_byte_udp_reply_is_fragmented_and_reassembles(client: str, server: str, ip) -> None:
    st = Stack(StackConfig(mtu=1400))
    data = random.Random(5).randbytes(3000)
    st.udp_send((server, 53), (client, 4000), data)
    frags = st.packets_to_send()
    assert len(frags) == 3 and all(len(f) <= 1400 for f in frags)
    if ip is IP:
        (whole,) = defragment([IP(f) for f in frags])
        whole = IP(raw(whole))
    else:
        from scapy.layers.inet6 import defragment6

        whole = IPv6(raw(defragment6([IPv6(f) for f in frags])))
    assert whole[UDP].sport == 53 and whole[UDP].dport == 4000 and bytes(whole[UDP].payload) == data
    chk = whole[UDP].chksum
    del whole[UDP].chksum
    assert ip(raw(whole))[UDP].chksum == chk
    # and our own reassembler takes the fragments back
    st2 = Stack()
    for f in frags:
        st2.receive_packet(f, 0.0)
    (ev,) = udp_events(st2)
    assert ev.data == data


def test_large_echo_reply_is_fragmented() -> None:
    st = Stack()
    for f in fragment(IP(src=C4, dst=S4) / ICMP(id=1, seq=1) / (b"p" * 4000), fragsize=1480):
        st.receive_packet(raw(f), 0.0)
    out = st.packets_to_send()
    assert len(out) == 3
    (whole,) = defragment([IP(f) for f in out])
    assert bytes(IP(raw(whole))[ICMP].payload) == b"p" * 4000
