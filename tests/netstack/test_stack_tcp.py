"""The Stack's TCP demux: requests and decisions, limits, resets for unknown segments,
TIME_WAIT bookkeeping and the timer heap.  Segments are built and read with scapy.

(The TCP state machine itself is tested in tests/netstack/tcp/.)
"""

from __future__ import annotations

import pytest
from scapy.all import IP, TCP, IPv6, raw

from netstack.config import StackConfig
from netstack.events import TcpConnectionRequest, TcpEvent
from netstack.stack import Stack
from netstack.tcp.connection import TcpState
from netstack.tcp.events import Closed, Connected, DataReceived, EofReceived

C4, S4 = "10.9.0.2", "198.51.100.20"
C6, S6 = "fd00::2", "2001:db8::20"
ISN = 0xFFFFFF00  # just below the wrap


def events(st: Stack) -> list:
    out = []
    while (ev := st.next_event()) is not None:
        out.append(ev)
    return out


def syn(sport: int = 40000, dport: int = 443, ip=IP, src: str = C4, dst: str = S4, **kw) -> bytes:
    opts = [("MSS", 1460), ("SAckOK", b""), ("WScale", 7)]
    return raw(
        ip(src=src, dst=dst)
        / TCP(sport=sport, dport=dport, flags="S", seq=ISN, window=65535, options=opts, **kw)
    )


def segment(
    flags: str,
    seq: int,
    ack: int,
    data: bytes = b"",
    sport: int = 40000,
    dport: int = 443,
    ip=IP,
    src=C4,
    dst=S4,
) -> bytes:
    return raw(
        ip(src=src, dst=dst)
        / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=65535)
        / data
    )


def handshake(st: Stack, sport: int = 40000, now: float = 1.0, ip=IP, src=C4, dst=S4) -> tuple[int, int]:
    """Complete a handshake; returns (conn_id, our next sequence number)."""
    st.receive_packet(syn(sport, ip=ip, src=src, dst=dst), now)
    (req,) = [e for e in events(st) if isinstance(e, TcpConnectionRequest)]
    assert st.accept_tcp(req.conn_id)
    (synack,) = st.packets_to_send()
    sa = ip(synack)[TCP]
    assert sa.flags == "SA" and sa.ack == (ISN + 1) & 0xFFFFFFFF
    st.receive_packet(segment("A", ISN + 1, sa.seq + 1, sport=sport, ip=ip, src=src, dst=dst), now)
    assert [type(e.event) for e in events(st)] == [Connected]
    return req.conn_id, (sa.seq + 1) & 0xFFFFFFFF


@pytest.mark.parametrize(
    ("ip", "src", "dst", "mtu", "mss"),
    [
        (IP, C4, S4, 1500, 1460),
        (IPv6, C6, S6, 1500, 1440),
        (IP, C4, S4, 1280, 1240),
        (IPv6, C6, S6, 1280, 1220),
    ],
)
def test_syn_becomes_a_request_and_accept_answers_as_the_destination(ip, src, dst, mtu, mss) -> None:
    st = Stack(StackConfig(mtu=mtu))
    st.receive_packet(syn(ip=ip, src=src, dst=dst), 1.0)
    assert events(st) == [TcpConnectionRequest(1, (src, 40000), (dst, 443))]
    assert st.packets_to_send() == []  # nothing until the owner decides
    st.accept_tcp(1)
    (pkt,) = st.packets_to_send()
    got = ip(pkt)
    assert (got.src, got.dst, got[TCP].sport, got[TCP].dport) == (dst, src, 443, 40000)
    assert dict(got[TCP].options)["MSS"] == mss  # clamped to the link MTU
    chk = got[TCP].chksum
    del got[TCP].chksum
    assert ip(raw(got))[TCP].chksum == chk


def test_refuse_answers_with_rst_ack() -> None:
    st = Stack()
    st.receive_packet(syn(), 1.0)
    (req,) = events(st)
    st.refuse_tcp(req.conn_id)
    (pkt,) = st.packets_to_send()
    rst = IP(pkt)[TCP]
    assert rst.flags == "RA" and rst.ack == (ISN + 1) & 0xFFFFFFFF and IP(pkt).src == S4
    assert not st.accept_tcp(req.conn_id)  # gone


def test_drop_answers_nothing_and_forgets() -> None:
    st = Stack()
    st.receive_packet(syn(), 1.0)
    (req,) = events(st)
    assert st.drop_tcp(req.conn_id)
    assert st.packets_to_send() == [] and st.tcp_pending_count == 0


def test_retransmitted_syn_while_pending_is_absorbed() -> None:
    st = Stack()
    st.receive_packet(syn(), 1.0)
    st.receive_packet(syn(), 2.0)
    assert len(events(st)) == 1 and st.counters["tcp.while_pending"] == 1


def test_rst_while_pending_cancels_the_request() -> None:
    st = Stack()
    st.receive_packet(syn(), 1.0)
    (req,) = events(st)
    st.receive_packet(segment("R", ISN + 1, 0), 1.5)
    assert events(st) == [TcpEvent(req.conn_id, Closed("reset"))]
    assert not st.accept_tcp(req.conn_id)


def test_unanswered_request_times_out() -> None:
    st = Stack(StackConfig(tcp_request_timeout=5.0))
    st.receive_packet(syn(), 1.0)
    (req,) = events(st)
    assert st.get_timer() == pytest.approx(6.0)
    st.handle_timer(6.0)
    assert events(st) == [TcpEvent(req.conn_id, Closed("timeout"))]
    assert st.counters["tcp.request_timeout"] == 1 and not st.accept_tcp(req.conn_id)


def test_half_open_limit_counts_syn_floods() -> None:
    st = Stack(StackConfig(max_half_open=10))
    for port in range(1000, 1050):
        st.receive_packet(syn(sport=port), 1.0)
    assert len(events(st)) == 10
    assert st.counters["tcp.syn_flood"] == 40
    # accepted but not yet established still counts as half-open
    st.accept_tcp(1)
    st.receive_packet(syn(sport=2000), 1.0)
    assert st.counters["tcp.syn_flood"] == 41


def test_total_connection_limit() -> None:
    st = Stack(StackConfig(max_connections=3, max_half_open=100))
    for port in (1, 2, 3):
        handshake(st, sport=port)
    st.receive_packet(syn(sport=4), 1.0)
    assert events(st) == [] and st.counters["tcp.connection_limit"] == 1


def test_segment_for_no_connection_draws_rst() -> None:
    st = Stack()
    st.receive_packet(segment("A", 1000, 5000, b"data"), 1.0)
    (pkt,) = st.packets_to_send()
    rst = IP(pkt)[TCP]
    assert rst.flags == "R" and rst.seq == 5000
    assert st.counters["tcp.no_connection"] == 1


def test_rst_for_no_connection_is_never_answered() -> None:
    st = Stack()
    st.receive_packet(segment("R", 1000, 0), 1.0)
    st.receive_packet(segment("RA", 1000, 1), 1.0)
    assert st.packets_to_send() == [] and st.counters["tcp.no_connection_rst"] == 2


def test_resets_for_scans_are_rate_limited() -> None:
    st = Stack(StackConfig(rst_rate=10.0, rst_burst=5.0))
    for port in range(100):
        st.receive_packet(segment("A", 1, 1, dport=port + 1), 1.0)
    assert len(st.packets_to_send()) == 5 and st.counters["tcp.rst_rate_limited"] == 95


@pytest.mark.parametrize(
    ("pkt", "reason"),
    [
        (raw(IP(src=C4, dst=S4) / TCP(sport=1, dport=2, flags="S", chksum=0xBEEF)), "tcp.bad_checksum"),
        (raw(IP(src=C4, dst=S4) / TCP(sport=1, dport=2, flags="SF")), "tcp.syn_fin"),
        (raw(IP(src=C4, dst="224.0.0.9") / TCP(sport=1, dport=2, flags="S")), "tcp.syn_not_unicast"),
        (raw(IP(src=C4, dst=S4) / TCP(sport=0, dport=2, flags="S")), "tcp.port_zero"),
        (raw(IP(src=C4, dst=S4, proto=6) / b"\x00\x01\x00\x02"), "tcp.truncated"),
        (raw(IP(src=C4, dst=S4) / TCP(sport=1, dport=2, flags="S", dataofs=15)), "tcp.bad_data_offset"),
    ],
)
def test_bad_segments_are_counted(pkt: bytes, reason: str) -> None:
    st = Stack()
    st.receive_packet(pkt, 1.0)
    assert events(st) == [] and st.counters[reason] == 1


def test_trusted_link_skips_checksum_verification() -> None:
    st = Stack()
    st.receive_packet(
        raw(IP(src=C4, dst=S4) / TCP(sport=1, dport=2, flags="S", chksum=0xBEEF)), 1.0, trusted=True
    )
    assert isinstance(st.next_event(), TcpConnectionRequest)


@pytest.mark.parametrize(("ip", "src", "dst"), [(IP, C4, S4), (IPv6, C6, S6)])
def test_data_both_ways_across_the_sequence_wrap(ip, src, dst) -> None:
    st = Stack()
    cid, our = handshake(st, ip=ip, src=src, dst=dst)
    seq = (ISN + 1) & 0xFFFFFFFF
    chunks = [bytes([i]) * 100 for i in range(4)]  # crosses 2**32
    for chunk in chunks:
        st.receive_packet(segment("PA", seq, our, chunk, ip=ip, src=src, dst=dst), 1.1)
        seq = (seq + len(chunk)) & 0xFFFFFFFF
    got = b"".join(e.event.data for e in events(st) if isinstance(e.event, DataReceived))
    assert got == b"".join(chunks)
    assert seq < ISN  # wrapped
    st.tcp_consumed(cid, len(got))
    assert st.tcp_send(cid, b"reply") == 5
    pkts = [ip(p)[TCP] for p in st.packets_to_send()]
    data = [p for p in pkts if bytes(p.payload)]
    assert bytes(data[-1].payload) == b"reply" and data[-1].ack == seq


def test_time_wait_lingers_bounded_and_the_tuple_can_be_reused() -> None:
    st = Stack(StackConfig(max_time_wait=2))
    for port in (1, 2, 3):
        cid, our = handshake(st, sport=port)
        st.tcp_close(cid)
        (fin,) = [IP(p)[TCP] for p in st.packets_to_send()]
        assert "F" in fin.flags
        st.receive_packet(segment("FA", ISN + 1, fin.seq + 1, sport=port), 2.0)
        evs = [e.event for e in events(st)]
        assert isinstance(evs[-1], Closed) and isinstance(evs[0], EofReceived)
        (last_ack,) = [IP(p)[TCP] for p in st.packets_to_send()]
        assert last_ack.flags == "A" and last_ack.ack == (ISN + 2) & 0xFFFFFFFF
    assert st.counters["tcp.time_wait_evicted"] == 1
    assert len(st._lingering) == 2 and st.tcp_connection_count == 0
    assert all(c.conn.state is TcpState.TIME_WAIT for c in st._lingering.values())
    # a new SYN on a lingering tuple starts a new connection
    st.packets_to_send()
    st.receive_packet(syn(sport=3), 3.0)
    assert isinstance(st.next_event(), TcpConnectionRequest)
    assert st.counters["tcp.time_wait_reused"] == 1
    # the rest leave when their TIME_WAIT timer runs out
    st.handle_timer(3.0 + st.config.tcp.time_wait + 1)
    assert len(st._lingering) == 0


def test_timer_heap_fires_each_connection_once_its_timer_is_due() -> None:
    st = Stack()
    conns = [handshake(st, sport=1000 + i)[0] for i in range(50)]
    for cid in conns:
        st.tcp_send(cid, b"unacked data")  # arms each retransmission timer
    sent = st.packets_to_send()
    assert len(sent) == 50
    t = st.get_timer()
    assert t is not None and t > 1.0
    st.handle_timer(t)
    retransmitted = st.packets_to_send()
    assert {IP(p)[TCP].dport for p in retransmitted} == {1000 + i for i in range(50)}
    assert all(bytes(IP(p)[TCP].payload) == b"unacked data" for p in retransmitted)
    assert len(st._heap) <= 2 * len(st._armed) + 64


def test_a_failing_tcp_core_is_contained(monkeypatch) -> None:
    """If a connection's core raises, that connection is reset for the owner and counted;
    the stack and the other connections carry on."""
    st = Stack()
    bad, our_bad = handshake(st, sport=1)
    good, _ = handshake(st, sport=2)
    core = st.tcp_connection(bad)

    def boom(*a, **kw):
        raise RuntimeError("core bug")

    # TcpConnection has __slots__: break this one connection through a class method
    monkeypatch.setattr(type(core), "segments_to_send", lambda self, now: boom() if self is core else [])
    st.receive_packet(segment("PA", ISN + 1, our_bad, b"x", sport=1), 2.0)
    st.packets_to_send()
    assert TcpEvent(bad, Closed("reset")) in events(st)
    assert st.counters["stack.internal_error"] == 1 and st.tcp_connection(bad) is None
    assert st.tcp_connection(good) is not None


@pytest.mark.timeout(20)  # the bug this guards against spins forever
def test_a_connection_timer_that_stays_due_runs_once_per_handle_timer(monkeypatch) -> None:
    """A core whose timer is still due after handling (a pacing or storming timer) must not
    keep ``handle_timer`` in a loop: that blocks the owner's event loop, so no timeout of the
    owner can fire (the e2e hang of issue 6).  It runs once and is re-armed for the next call."""
    st = Stack()
    stuck, _ = handshake(st, sport=1)
    other, _ = handshake(st, sport=2)
    core = st.tcp_connection(stuck)
    calls: list[float] = []
    real_get_timer = type(core).get_timer
    real_handle_timer = type(core).handle_timer

    def get_timer(self):
        return 5.0 if self is core else real_get_timer(self)

    def handle_timer(self, now):
        if self is core:
            calls.append(now)
            assert len(calls) < 1000, "handle_timer spins on a timer that stays due"
            return
        real_handle_timer(self, now)

    monkeypatch.setattr(type(core), "get_timer", get_timer)
    monkeypatch.setattr(type(core), "handle_timer", handle_timer)
    st.tcp_send(stuck, b"x")
    st.tcp_send(other, b"y")
    st.packets_to_send()
    st.handle_timer(6.0)
    assert calls == [6.0]
    assert st.get_timer() <= 6.0  # still due: re-armed for the owner's next pass
    st.handle_timer(7.0)
    assert calls == [6.0, 7.0]
    assert st.tcp_connection(other) is not None and st.counters["stack.internal_error"] == 0
