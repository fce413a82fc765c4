"""Sending: segmentation, windows, retransmission, fast recovery, SACK, persist, keepalive."""

import pytest
from tcp_peer import ISS, MASK, Peer, opts

from netstack.tcp import SendSpaceAvailable, TcpConfig, TcpState

MSS = 1448  # 1460 minus the timestamp option


def established(syn_options=None, **cfg):
    cfg.setdefault("congestion_control", "cubic")  # window arithmetic below is CUBIC's (BBR: test_tcp_bbr.py)
    p = Peer(TcpConfig(**cfg))
    if syn_options is None:
        p.handshake()
    else:
        p.handshake(syn_options=syn_options)
    p.drain()
    return p


def rel(seq):
    return (seq - ISS) & MASK


def test_small_writes_coalesce_into_full_segments():
    p = established()
    for _ in range(100):
        p.conn.send(b"x" * 100)
    out = p.out()
    assert [len(s.payload) for s in out] == [MSS] * 6 + [10000 - 6 * MSS]
    assert [("P" in s.flags) for s in out] == [False] * 6 + [True]
    assert rel(out[0].seq) == 1  # the first data byte follows the SYN, across the wrap
    assert out[1].seq == (out[0].seq + MSS) & MASK


def test_initial_window_is_ten_segments():
    p = established(pacing=False)  # the window's arithmetic; the pacer's is in test_tcp_pacing.py
    p.conn.send(b"d" * 100_000)
    out = p.out()
    assert len(out) == 10 and all(len(s.payload) == MSS for s in out)
    # each ACK of two segments opens room for about four more (slow start)
    p.send("A", ack=(ISS + 1 + 2 * MSS) & MASK)
    assert len(p.out()) == 4


def test_peer_window_is_scaled_and_respected():
    p = established()
    p.send("A", window=20)  # 20 << 7 = 2560 bytes
    assert p.conn.snd_wnd == 2560
    p.conn.send(b"w" * 10_000)
    out = p.out()
    assert sum(len(s.payload) for s in out) == MSS  # the rest would be a silly small segment


def test_small_window_is_used_when_the_persist_timer_fires():
    p = established()
    p.send("A", window=5)  # 640 bytes: less than a segment
    p.conn.send(b"w" * 10_000)
    assert p.out() == []  # sender SWS avoidance waits...
    p.advance(p.conn.get_timer() - p.now)
    out = p.out()
    assert [len(s.payload) for s in out] == [640]  # ...until the persist timer overrides it


def test_window_shrink_by_the_peer_stops_new_data():
    p = established()
    p.conn.send(b"s" * 20 * MSS)
    out = p.out()
    assert len(out) == 10
    # The peer acknowledges one segment and moves its right edge left of what we sent.
    p.send("A", ack=(ISS + 1 + MSS) & MASK, window=(2 * MSS) >> 7)
    assert p.out() == []
    assert p.conn.snd_nxt == 1 + 10 * MSS
    # It reopens after acknowledging everything: sending resumes where it stopped.
    p.send("A", ack=(ISS + 1 + 10 * MSS) & MASK, window=65535)
    out = p.out()
    assert out and rel(out[0].seq) == 1 + 10 * MSS


def test_window_shrunk_to_zero_with_data_in_flight_probes_instead_of_collapsing():
    p = established()
    p.conn.send(b"z" * 4 * MSS)
    p.out()
    p.send("A", ack=(ISS + 1 + MSS) & MASK, window=0)
    log = p.run_timers_until(p.now + 3.0)
    sent = [pk for _, pkts in log for pk in pkts]
    assert sent, "the first unacknowledged byte is probed"
    assert all(rel(pk.seq) == 1 + MSS and len(pk.payload) <= 1 for pk in sent)
    assert p.conn.state is TcpState.ESTABLISHED


def test_rto_retransmits_with_exponential_backoff_then_times_out():
    p = established(max_retries=4)
    p.conn.send(b"lost")
    first = p.out()
    assert len(first) == 1
    t0 = p.now
    log = p.run_timers_until(t0 + 100)
    sends = [(round(t - t0, 3), rel(pk.seq), bytes(pk.payload)) for t, pkts in log for pk in pkts]
    rto = p.conn._rtt.rto
    assert rto == pytest.approx(0.2)  # srtt 50 ms from the handshake, floored at rto_min
    assert [s[0] for s in sends] == [0.2, 0.6, 1.4, 3.0]
    assert all(s[1:] == (1, b"lost") for s in sends)
    assert p.conn.state is TcpState.CLOSED
    assert p.closed_reason() == "timeout"


def test_rto_backoff_resets_after_new_ack():
    p = established()
    p.conn.send(b"a")
    p.out()
    p.run_timers_until(p.now + 0.7)  # two timeouts
    assert p.conn._rtt.backoff == 2
    p.send("A", ack=(ISS + 2) & MASK)
    assert p.conn._rtt.backoff == 0


def test_fast_retransmit_after_three_duplicate_acks():
    p = established(syn_options=[("MSS", 1460), ("Timestamp", (1, 0)), ("WScale", 7)])  # no SACK
    p.conn.send(b"f" * 10 * MSS)
    p.out()
    una = (ISS + 1 + MSS) & MASK
    p.send("A", ack=una)
    p.out()
    for _ in range(2):
        p.send("A", ack=una)
        assert [x for x in p.out() if rel(x.seq) == 1 + MSS] == []
    p.send("A", ack=una)
    out = p.out()
    assert out and rel(out[0].seq) == 1 + MSS and len(out[0].payload) == MSS
    assert p.conn.stats.fast_retransmits == 1
    assert p.conn._cc.cwnd < 10 * MSS


def test_newreno_partial_ack_retransmits_the_next_hole():
    p = established(syn_options=[("MSS", 1460), ("Timestamp", (1, 0)), ("WScale", 7)])
    p.conn.send(b"n" * 10 * MSS)
    p.out()
    # segments 2 and 5 (0-based 1 and 4) are lost
    una = (ISS + 1 + MSS) & MASK
    for _ in range(4):
        p.send("A", ack=una)
    out = p.out()
    assert rel(out[0].seq) == 1 + MSS
    # the retransmission fills the first hole: partial ACK up to the second hole
    p.send("A", ack=(ISS + 1 + 4 * MSS) & MASK)
    out = p.out()
    assert out and rel(out[0].seq) == 1 + 4 * MSS
    assert p.conn._recovery  # still in recovery until everything sent before it is acked
    p.send("A", ack=(ISS + 1 + 10 * MSS) & MASK)
    assert not p.conn._recovery


def test_sack_recovery_retransmits_only_the_holes():
    p = established()
    p.conn.send(b"k" * 10 * MSS)
    p.out()
    base = ISS + 1

    def blk(a, b):
        return ((base + a * MSS) & MASK, (base + b * MSS) & MASK)

    una = (base + MSS) & MASK
    p.send("A", ack=una, sack=[blk(2, 4)])
    p.send("A", ack=una, sack=[blk(5, 6), blk(2, 4)])
    p.send("A", ack=una, sack=[blk(5, 8), blk(2, 4)])
    out = p.out()
    retx = sorted((rel(x.seq) - 1) // MSS for x in out if rel(x.seq) < 1 + 10 * MSS)
    assert retx == [1, 4]
    assert p.conn.stats.retransmits == 2


def test_sack_blocks_outside_the_sent_range_are_ignored():
    p = established()
    p.conn.send(b"i" * 3 * MSS)
    p.out()
    p.send("A", ack=(ISS + 1) & MASK, sack=[((ISS + 100_000) & MASK, (ISS + 200_000) & MASK)])
    assert p.conn._score.sacked == 0


def test_ack_for_unsent_data_is_answered_and_ignored():
    p = established()
    p.conn.send(b"abc")
    p.out()
    p.send("A", ack=(ISS + 1000) & MASK)
    out = p.out()
    assert len(out) == 1 and out[0].flags == "A" and not out[0].payload
    assert p.conn.snd_una == 1
    assert p.conn.stats.bad_ack == 1


def test_ack_far_below_una_draws_challenge_ack():
    p = established()
    p.conn.send(b"abc")
    p.out()
    p.send("A", ack=(ISS + 1 - 2**30) & MASK)
    out = p.out()
    assert len(out) == 1 and p.conn.stats.challenge_acks == 1


def test_persist_probes_back_off_while_the_window_stays_zero():
    p = established()
    p.conn.send(b"p" * MSS)
    p.out()
    p.send("A", ack=(ISS + 1 + MSS) & MASK, window=0)
    p.conn.send(b"q" * 5000)
    assert p.out() == []
    t0 = p.now
    probes = []
    for _ in range(6):
        t = p.conn.get_timer()
        p.advance(t - p.now)
        out = p.out()
        assert len(out) == 1 and len(out[0].payload) == 1 and rel(out[0].seq) == 1 + MSS
        probes.append(round(p.now - t0, 3))
        p.send("A", ack=(ISS + 1 + MSS) & MASK, window=0)  # the probe is refused
        assert p.out() == []
    gaps = [round(b - a, 3) for a, b in zip([0.0] + probes[:-1], probes, strict=True)]
    assert gaps == [0.2, 0.4, 0.8, 1.6, 3.2, 6.4]
    assert p.conn.stats.persist_probes == 6
    assert p.conn.state is TcpState.ESTABLISHED  # answered probes never time out
    # the window opens: data flows from the first unacknowledged byte
    p.send("A", ack=(ISS + 1 + MSS) & MASK, window=100)
    out = p.out()
    assert out and rel(out[0].seq) == 1 + MSS
    assert sum(len(x.payload) for x in out) == 5000


def test_persist_probe_accepted_by_the_peer_moves_on():
    p = established()
    p.send("A", window=0)
    p.conn.send(b"ab")
    assert p.out() == []
    p.advance(p.conn.get_timer() - p.now)
    out = p.out()
    assert bytes(out[0].payload) == b"a"
    p.send("A", ack=(ISS + 2) & MASK, window=0)  # took the byte, window still zero
    p.advance(p.conn.get_timer() - p.now)
    out = p.out()
    assert bytes(out[0].payload) == b"b" and rel(out[0].seq) == 2


def test_unanswered_persist_probes_time_out():
    p = established(max_retries=3)
    p.send("A", window=0)
    p.conn.send(b"x")
    assert p.out() == []
    p.run_timers_until(p.now + 1000)
    assert p.conn.state is TcpState.CLOSED and p.closed_reason() == "timeout"


def test_send_buffer_limit_and_send_space_event():
    p = established(send_buffer=10_000, send_buffer_max=10_000, send_low_water=4000)
    assert p.conn.send(b"b" * 25_000) == 10_000
    assert p.conn.send_space() == 0
    out = p.out()
    acked = sum(len(x.payload) for x in out)
    p.send("A", ack=(ISS + 1 + acked) & MASK)
    evs = p.drain()
    assert any(isinstance(e, SendSpaceAvailable) for e in evs)
    assert p.conn.send_space() == 10_000 - (10_000 - acked)


def test_send_buffer_grows_with_the_window_up_to_its_maximum():
    """Twice cwnd may be queued (a window larger than send_buffer is never starved by it)."""
    p = established(send_buffer=10_000, send_buffer_max=100_000, send_low_water=4000, pacing=False)
    cwnd = p.conn._cc.cwnd
    assert p.conn.send(b"b" * 200_000) == 2 * cwnd
    p.conn._cc.cwnd = 80_000
    assert p.conn.send_space() == 100_000 - 2 * cwnd
    p.conn._cc.cwnd = 2_000  # a smaller window never shrinks the buffer below send_buffer
    assert p.conn._send_limit() == 10_000


def test_nagle_holds_small_segments_while_data_is_in_flight():
    p = established(nagle=True)
    p.conn.send(b"1")
    assert len(p.out()) == 1
    p.conn.send(b"2")
    p.conn.send(b"3")
    assert p.out() == []
    p.send("A", ack=(ISS + 2) & MASK)
    out = p.out()
    assert [bytes(x.payload) for x in out] == [b"23"]


def test_nagle_off_by_default_sends_small_writes_at_once():
    p = established()
    p.conn.send(b"1")
    p.out()
    p.conn.send(b"2")
    assert [bytes(x.payload) for x in p.out()] == [b"2"]


def test_keepalive_probes_then_timeout():
    p = established(keepalive_idle=10.0, keepalive_interval=2.0, keepalive_count=3)
    log = p.run_timers_until(p.now + 100)
    probes = [(round(t, 3), pk) for t, pkts in log for pk in pkts]
    assert len(probes) == 3
    assert all(rel(pk.seq) == 0 and not pk.payload and pk.flags == "A" for _, pk in probes)  # SND.UNA - 1
    assert p.conn.state is TcpState.CLOSED and p.closed_reason() == "timeout"


def test_keepalive_answer_keeps_connection():
    p = established(keepalive_idle=10.0, keepalive_interval=2.0, keepalive_count=3)
    for _ in range(5):
        log = p.run_timers_until(p.now + 10.5)
        assert len([pk for _, pkts in log for pk in pkts]) == 1  # one probe per idle period
        p.send("A")  # the peer answers
    assert p.conn.state is TcpState.ESTABLISHED


def test_rtt_measured_from_timestamps():
    p = established()
    p.conn.send(b"r" * 100)
    p.out()
    p.now += 0.08
    p.send("A", ack=(ISS + 101) & MASK)
    # srtt moves from 50 ms towards 80 ms by 1/8
    assert p.conn._rtt.srtt == pytest.approx(0.05 + (0.08 - 0.05) / 8, abs=0.002)


def test_karn_no_sample_from_retransmission_without_timestamps():
    p = established(syn_options=[("MSS", 1460)])
    srtt = p.conn._rtt.srtt
    p.conn.send(b"k")
    p.out()
    p.advance(0.2)  # RTO: retransmitted
    assert p.out()
    p.now += 5
    p.send("A", ack=(ISS + 2) & MASK)
    assert p.conn._rtt.srtt == srtt


def test_segment_options_carry_timestamps_and_never_exceed_mss():
    p = established()
    p.conn.send(b"o" * 5000)
    for s in p.out():
        assert "Timestamp" in opts(s)
        assert len(s.payload) + len(bytes(s)) - len(s.payload) - 20 <= 1460
