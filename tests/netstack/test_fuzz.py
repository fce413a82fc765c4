"""Random and mutated packets never raise out of the stack and never grow it without bound.

A corpus of valid packets (scapy-built: TCP handshakes and data, UDP, ICMP, fragments,
IPv6 extension headers) is mutated: bit flips, truncation, extension, lying length
fields, random fragment offsets, option bytes.  Half the mutants get their IPv4 header
checksum repaired and are fed as "trusted" so they get past checksums into the deeper
parsers and the TCP core.  The owner accepts every connection so mutated segments reach
live connections too.  Every internal exception would be counted as
``stack.internal_error``; it must stay 0.

The unit suite runs 20,000 packets; ``-m slow`` runs a million.
"""

from __future__ import annotations

import random
import tracemalloc
from collections import deque

import pytest
from scapy.all import (
    ICMP,
    IP,
    TCP,
    UDP,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    fragment,
    fragment6,
    raw,
)

from netstack.checksum import checksum
from netstack.config import StackConfig
from netstack.events import TcpConnectionRequest, TcpEvent, UdpDatagram
from netstack.ipv4 import build_ipv4, parse_ipv4
from netstack.ipv6 import build_ipv6, parse_ipv6
from netstack.stack import Stack
from netstack.tcp.events import EofReceived
from netstack.tcp.segment import ACK, FIN, PSH, SYN, TcpSegment, build_segment, parse_segment

C4, S4 = "10.9.0.2", "198.51.100.20"
C6, S6 = "fd00::2", "2001:db8::20"


def corpus() -> list[bytes]:
    out: list[bytes] = []
    opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("WScale", 7)]
    for ip, src, dst in ((IP, C4, S4), (IPv6, C6, S6)):
        for sport in (40000, 40001, 40002):
            out.append(
                raw(
                    ip(src=src, dst=dst)
                    / TCP(sport=sport, dport=443, flags="S", seq=0xFFFFFF00, options=opts)
                )
            )
            out.append(
                raw(ip(src=src, dst=dst) / TCP(sport=sport, dport=443, flags="A", seq=0xFFFFFF01, ack=1))
            )
            out.append(
                raw(
                    ip(src=src, dst=dst)
                    / TCP(sport=sport, dport=443, flags="PA", seq=0xFFFFFF01, ack=1)
                    / (b"d" * 300)
                )
            )
            out.append(
                raw(ip(src=src, dst=dst) / TCP(sport=sport, dport=443, flags="FA", seq=0xFFFFFF01, ack=1))
            )
            out.append(raw(ip(src=src, dst=dst) / TCP(sport=sport, dport=443, flags="R", seq=0xFFFFFF01)))
            out.append(
                raw(
                    ip(src=src, dst=dst)
                    / TCP(
                        sport=sport,
                        dport=443,
                        flags="A",
                        seq=0xFFFFFF01,
                        ack=1,
                        options=[("SAck", (5, 10, 20, 30))],
                    )
                )
            )
        out.append(raw(ip(src=src, dst=dst) / UDP(sport=5353, dport=53) / b"query"))
    out.append(raw(IP(src=C4, dst=S4) / ICMP(type=8) / b"ping"))
    out.append(raw(IP(src=C4, dst=S4) / ICMP(type=3, code=4) / raw(IP(src=S4, dst=C4) / TCP())))
    out.append(raw(IPv6(src=C6, dst=S6) / ICMPv6EchoRequest(data=b"ping")))
    out.append(
        raw(
            IPv6(src=C6, dst=S6)
            / IPv6ExtHdrHopByHop()
            / IPv6ExtHdrDestOpt()
            / IPv6ExtHdrRouting()
            / UDP()
            / b"x"
        )
    )
    out += [
        raw(f)
        for f in fragment(IP(src=C4, dst=S4, id=9) / UDP(sport=1, dport=2) / (b"f" * 3000), fragsize=1000)
    ]
    out += [
        raw(f)
        for f in fragment6(IPv6(src=C6, dst=S6) / IPv6ExtHdrFragment(id=9) / UDP() / (b"g" * 3000), 1280)
    ]
    return out


def mutate(rng: random.Random, pkt: bytes) -> tuple[bytes, bool]:
    b = bytearray(pkt)
    kind = rng.randrange(9)
    if kind == 0:  # bit flips
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == 1:  # truncate
        del b[rng.randrange(len(b)) :]
    elif kind == 2:  # extend with junk
        b += rng.randbytes(rng.randint(1, 64))
    elif kind == 3:  # lie in a length field
        if b and b[0] >> 4 == 4 and len(b) >= 4:
            b[2:4] = rng.randrange(65536).to_bytes(2, "big")
        elif len(b) >= 6:
            b[4:6] = rng.randrange(65536).to_bytes(2, "big")
    elif kind == 4:  # random fragment offset / flags
        if b and b[0] >> 4 == 4 and len(b) >= 8:
            b[6:8] = rng.randrange(65536).to_bytes(2, "big")
        elif len(b) >= 48 and b[6] == 44:
            b[42:44] = rng.randrange(65536).to_bytes(2, "big")
    elif kind == 5:  # bytes in the transport header / options
        ihl = 20 if b and b[0] >> 4 == 4 else 40
        for _ in range(rng.randint(1, 6)):
            if len(b) > ihl:
                b[rng.randrange(ihl, len(b))] = rng.randrange(256)
    elif kind == 6:  # garbage with a plausible version nibble
        b = bytearray(rng.randbytes(rng.randint(0, 120)))
        if b:
            b[0] = (rng.choice((4, 6)) << 4) | (b[0] & 0x0F)
    elif kind == 7:  # data offset / IHL lies
        if b and b[0] >> 4 == 4:
            b[0] = 0x40 | rng.randrange(16)
        elif len(b) > 52:
            b[52] = rng.randrange(256)
    # kind 8: unchanged (valid traffic keeps connections alive)
    repair = rng.random() < 0.5
    if repair and len(b) >= 20 and b[0] >> 4 == 4:
        ihl = (b[0] & 0x0F) * 4
        if 20 <= ihl <= len(b):
            b[10:12] = b"\x00\x00"
            b[10:12] = checksum(bytes(b[:ihl])).to_bytes(2, "big")
    return bytes(b), repair


def follow_up(pkt: bytes, rng: random.Random) -> list[bytes]:
    """For a SYN-ACK we sent: the valid ACK, data and FIN a client would answer with, so
    that mutants of them reach established connections near the right sequence numbers."""
    ip = parse_ipv4(memoryview(pkt)) if pkt[0] >> 4 == 4 else parse_ipv6(memoryview(pkt))
    if ip.proto != 6:
        return []
    seg = parse_segment(ip.payload)
    if seg.flags & (SYN | ACK) != SYN | ACK:
        return []
    build = build_ipv4 if ip.version == 4 else build_ipv6
    seq, ack = seg.ack, (seg.seq + 1) & 0xFFFFFFFF
    out = []
    for flags, data in ((ACK, b""), (ACK | PSH, rng.randbytes(rng.randint(1, 1400))), (ACK | FIN, b"")):
        reply = TcpSegment(seg.dst_port, seg.src_port, seq, ack, flags, 65535, payload=data)
        out.append(build(ip.dst, ip.src, 6, build_segment(reply, ip.dst, ip.src)))
        seq = (seq + len(data)) & 0xFFFFFFFF
    return out


def run_fuzz(n: int, seed: int) -> Stack:
    rng = random.Random(seed)
    static = corpus()
    live: deque[bytes] = deque(maxlen=300)
    cfg = StackConfig(
        max_half_open=64,
        max_connections=256,
        max_udp_flows=512,
        frag_max_bytes=1 << 20,
        frag_max_datagrams=64,
    )
    st = Stack(cfg)
    now = 0.0
    for i in range(n):
        base = rng.choice(live) if live and rng.random() < 0.5 else rng.choice(static)
        pkt, trusted = mutate(rng, base)
        now += 0.001
        st.receive_packet(pkt, now, trusted=trusted)
        while (ev := st.next_event()) is not None:
            if isinstance(ev, TcpConnectionRequest):
                st.accept_tcp(ev.conn_id)
            elif isinstance(ev, TcpEvent) and isinstance(ev.event, EofReceived):
                st.tcp_send(ev.conn_id, b"bye" * rng.randint(0, 1000))
                st.tcp_close(ev.conn_id)
            elif isinstance(ev, UdpDatagram) and i % 7 == 0:
                st.udp_send(ev.dst, ev.src, (ev.data * 40)[:9000])
        for out in st.packets_to_send():
            live.extend(follow_up(out, rng))
        if i % 500 == 0:
            t = st.get_timer()
            st.handle_timer(max(now, t or now))
            for cid in list(st._conns)[:3]:
                st.tcp_send(cid, b"x" * 2000)
    return st


def check_bounded(st: Stack) -> None:
    cfg = st.config
    assert st.counters["stack.internal_error"] == 0
    assert st._frag4.bytes <= cfg.frag_max_bytes and st._frag6.bytes <= cfg.frag_max_bytes
    assert len(st._frag4) <= cfg.frag_max_datagrams and len(st._frag6) <= cfg.frag_max_datagrams
    assert len(st._pending) <= cfg.max_half_open
    assert len(st._conns) - len(st._lingering) <= cfg.max_connections
    assert len(st._lingering) <= cfg.max_time_wait
    assert st.udp_flow_count <= cfg.max_udp_flows
    assert len(st._heap) <= 2 * len(st._armed) + 64
    assert not st._out and not st._events


def test_fuzz_20000_packets_never_raise_and_stay_bounded() -> None:
    st = run_fuzz(20_000, seed=1234)
    check_bounded(st)
    drops = st.counters.drops()
    assert sum(drops.values()) > 5_000  # most mutants are caught and counted
    assert any(k.startswith("tcp.") for k in drops) and any(k.startswith("ipv4.") for k in drops)
    assert any(k.startswith("ipv6.") for k in drops) and any(
        k.startswith(("frag4.", "frag6.")) for k in drops
    )
    # mutants reached live connections, not only the parsers
    assert st.counters["rx.tcp.accepted"] > 40
    assert sum(c.conn.stats.segs_in for c in st._conns.values()) > 0


def test_memory_does_not_grow_with_more_packets() -> None:
    tracemalloc.start()
    try:
        run_fuzz(2_000, seed=7)
        small = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        st = run_fuzz(12_000, seed=7)
        large = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    check_bounded(st)
    # six times the packets may not take anywhere near six times the memory
    assert large < 3 * small + (8 << 20)


@pytest.mark.slow
def test_fuzz_a_million_packets() -> None:
    st = run_fuzz(1_000_000, seed=99)
    check_bounded(st)
