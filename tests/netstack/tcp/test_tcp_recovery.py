"""Loss recovery beyond the basics: tail loss probes, lost retransmissions, early retransmit,
the impatient NewReno timer, and the congestion controllers' window arithmetic."""

import pytest
from tcp_peer import ISS, MASK, Peer

from netstack.tcp import TcpConfig
from netstack.tcp.congestion import CSS_ROUNDS, Cubic, NewReno

MSS = 1448


def established(syn_options=None, **cfg):
    cfg.setdefault("congestion_control", "cubic")  # these tests count segments against CUBIC's window
    p = Peer(TcpConfig(**cfg))
    if syn_options is None:
        p.handshake()
    else:
        p.handshake(syn_options=syn_options)
    p.drain()
    return p


def rel(seq):
    return (seq - ISS) & MASK


def at(i):
    """Wire sequence number of the start of our i-th data segment."""
    return (ISS + 1 + i * MSS) & MASK


@pytest.mark.parametrize("cc", ["cubic", "bbr"])
def test_tail_loss_probe_recovers_lost_last_segments_without_timeout(cc):
    p = established(congestion_control=cc)
    p.conn.send(b"t" * 4 * MSS)
    assert len(p.out()) == 4
    p.now += 0.05
    p.send("A", ack=at(2))  # the last two segments were lost: no duplicate ACKs will come
    assert p.out() == []
    pto = p.conn.get_timer() - p.now
    assert pto == pytest.approx(2 * p.conn._rtt.srtt)
    assert pto < p.conn._rtt.current()
    p.advance(pto)
    out = p.out()
    assert len(out) == 1 and rel(out[0].seq) == 1 + 3 * MSS and len(out[0].payload) == MSS  # the last one
    # its SACK reveals the hole, and early retransmit repairs it at once
    p.send("A", ack=at(2), sack=[(at(3), at(4))])
    out = p.out()
    assert [rel(x.seq) for x in out] == [1 + 2 * MSS]
    p.send("A", ack=at(4))
    assert p.conn.snd_una == 1 + 4 * MSS
    assert p.conn.stats.tail_loss_probes == 1 and p.conn.stats.timeouts == 0


def test_lone_segment_waits_for_the_retransmission_timeout():
    p = established()
    p.conn.send(b"x" * 100)
    p.out()
    # 2 SRTT + the peer's worst-case delayed ACK is later than the RTO: no probe, a plain timeout
    assert p.conn.get_timer() - p.now == pytest.approx(p.conn._rtt.current())
    assert not p.conn._pto


def test_tail_loss_probe_prefers_new_data():
    p = established(initial_cwnd_segments=2)
    p.conn.send(b"n" * 5 * MSS)
    assert len(p.out()) == 2
    p.advance(p.conn.get_timer() - p.now)
    out = p.out()
    assert [rel(x.seq) for x in out] == [1 + 2 * MSS]  # new data beyond the window's limit


def test_lost_retransmission_is_detected_and_resent_without_timeout():
    p = established()
    p.conn.send(b"L" * 20 * MSS)
    assert len(p.out()) == 10
    p.send("A", ack=at(1))
    for k in (3, 4, 5):
        p.send("A", ack=at(1), sack=[(at(2), at(k))])
    out = p.out()
    first = [x for x in out if rel(x.seq) == 1 + MSS]
    assert len(first) == 1  # fast retransmit of segment 1
    new = [rel(x.seq) for x in out if rel(x.seq) >= 1 + 10 * MSS]
    assert new, "recovery lets new data out as the pipe drains"
    p.now += 0.08  # more than a round trip later...
    # ...the peer has the new data sent after the retransmission, but still not segment 1
    p.send("A", ack=at(1), sack=[(at(2), at(11))])
    out = p.out()
    again = [x for x in out if rel(x.seq) == 1 + MSS]
    assert len(again) == 1
    assert p.conn.stats.lost_retransmits == 1 and p.conn.stats.timeouts == 0


def test_early_retransmit_with_few_segments_in_flight():
    p = established()
    p.conn.send(b"e" * 2 * MSS)
    p.out()
    p.send("A", ack=at(0), sack=[(at(1), at(2))])  # only one duplicate ACK can ever come
    out = p.out()
    assert len(out) == 1 and rel(out[0].seq) == 1
    assert p.conn.stats.fast_retransmits == 1


def test_impatient_newreno_keeps_the_timer_after_the_first_partial_ack():
    p = established(syn_options=[("MSS", 1460), ("Timestamp", (1, 0)), ("WScale", 7)])  # no SACK
    p.conn.send(b"i" * 10 * MSS)
    p.out()
    for _ in range(3):
        p.send("A", ack=at(0))
    p.out()
    p.now += 0.01
    p.send("A", ack=at(1))  # first partial ACK: timer restarted
    p.out()
    deadline = p.conn.get_timer()
    p.now += 0.01
    p.send("A", ack=at(2))  # second partial ACK: not restarted
    p.out()
    assert p.conn.get_timer() == deadline


# ---------------------------------------------------------------- window arithmetic


def test_newreno_slow_start_then_avoidance_then_halving():
    cc = NewReno(1000, 10, hystart=False)
    cc.on_ack(2000, 0.0, 0.04, 0.04, True, True)
    assert cc.cwnd == 12_000
    cc.on_ack(5000, 0.0, 0.04, 0.04, True, False)
    assert cc.cwnd == 14_000  # at most 2 SMSS per ACK (RFC 3465, L=2)
    cc.on_congestion(14_000, 0.0)
    assert cc.cwnd == cc.ssthresh == 7000
    for _ in range(7):
        cc.on_ack(1000, 0.0, 0.04, 0.04, True, False)
    assert cc.cwnd == 8000  # one SMSS per window
    cc.on_rto(8000, 0.0)
    assert cc.cwnd == 1000 and cc.ssthresh == 4000


def test_window_does_not_grow_when_not_cwnd_limited():
    for cls in (NewReno, Cubic):
        cc = cls(1000, 10)
        cc.on_ack(5000, 0.0, 0.04, 0.04, False, True)
        assert cc.cwnd == 10_000


def test_hystart_leaves_slow_start_when_the_rtt_rises():
    cc = NewReno(1000, 10)
    now = 0.0
    rtt = 0.040
    for _round in range(3):  # flat RTT: plain doubling
        for i in range(10):
            cc.on_ack(2000, now, rtt, rtt, True, i == 0)
    before = cc.cwnd
    # the queue builds: this round's minimum RTT is 10 ms above the last round's
    for i in range(10):
        cc.on_ack(2000, now, rtt + 0.010, rtt, True, i == 0)
    assert cc._css_baseline is not None  # detected after 8 samples
    assert cc.cwnd - before < 10 * 2000
    before = cc.cwnd
    for i in range(10):
        cc.on_ack(2000, now, rtt + 0.010, rtt, True, i == 0)
    assert cc.cwnd - before == 10 * 2000 // 4  # conservative slow start grows by a quarter
    for _round in range(CSS_ROUNDS):
        for i in range(10):
            cc.on_ack(2000, now, rtt + 0.010, rtt, True, i == 0)
    assert cc.cwnd >= cc.ssthresh  # left slow start for congestion avoidance


def cubic_run(rtt, seconds):
    cc = Cubic(1000, 10, hystart=False)
    cc.ssthresh = 0  # congestion avoidance from the start
    cc.cwnd = 100_000
    cc.on_congestion(100_000, 0.0)
    assert cc.cwnd == 70_000 and cc.w_max == 100
    now = 0.0
    samples = []
    for _ in range(int(seconds / rtt)):  # ACK clocking: a window acknowledged per round trip
        now += rtt
        for _ in range(cc.cwnd // 1000):
            cc.on_ack(1000, now, rtt, rtt, True, False)
        samples.append(cc.cwnd)
    return cc, samples


def test_cubic_reduces_by_beta_and_regrows_along_the_cubic():
    cc, samples = cubic_run(0.1, 10.0)
    k = cc.k
    assert k == pytest.approx(((100 - 70) / 0.4) ** (1 / 3), rel=0.01)  # about 4.2 s
    # concave growth up to the old maximum around K, a plateau, then convex probing beyond
    at_k = samples[round(k / 0.1) - 1]
    assert 95_000 < at_k < 105_000
    early = samples[9] - samples[0]
    middle = samples[round(k / 0.1)] - samples[round(k / 0.1) - 9]
    assert early > 3 * middle
    assert samples[-1] > 130_000
    assert all(b >= a for a, b in zip(samples, samples[1:], strict=False))


def test_cubic_reno_friendly_region_at_short_rtt():
    cc, samples = cubic_run(0.04, 4.0)
    # at 40 ms the Reno estimate (alpha = 0.53 segment per RTT) outgrows the cubic curve
    assert samples[-1] >= 70_000 + 0.5 * 1000 * len(samples)


def test_cubic_fast_convergence_lowers_w_max():
    cc = Cubic(1000, 10, hystart=False)
    cc.ssthresh = 0
    cc.cwnd = 100_000
    cc.on_congestion(100_000, 0.0)
    cc.on_congestion(70_000, 1.0)  # lost again below the old maximum
    assert cc.w_max == pytest.approx(70 * 1.7 / 2)


# ---------------------------------------------------------------- loss tolerance


def test_bandwidth_estimate_floors_the_reduction_when_loss_tolerant():
    plain = Cubic(1000, 10, hystart=False)
    tolerant = Cubic(1000, 10, hystart=False, loss_tolerant=True)
    for cc in (plain, tolerant):
        cc.ssthresh = 0
        cc.cwnd = 100_000
        now = 0.0
        # 2 s of delivering 2.5 MB/s over a 40 ms path: BDP = 100 kB
        for _ in range(400):
            now += 0.005
            cc.on_delivered(12_500, now, 0.04, 0.04)
        cc.on_congestion(100_000, now)
    assert plain.cwnd == 70_000
    assert tolerant.bwe.bdp() == pytest.approx(100_000, rel=0.02)
    assert tolerant.cwnd == pytest.approx(100_000, rel=0.02)  # a random loss costs (almost) nothing
    # but never above the window before the loss
    t2 = Cubic(1000, 10, hystart=False, loss_tolerant=True)
    t2.bwe = tolerant.bwe
    t2.ssthresh = 0
    t2.cwnd = 50_000
    t2.on_congestion(50_000, now)
    assert t2.cwnd == 50_000


def test_westwood_sets_ssthresh_to_the_estimated_bdp():
    from netstack.tcp.congestion import Westwood

    cc = Westwood(1000, 10, hystart=False)
    now = 0.0
    for _ in range(400):
        now += 0.005
        cc.on_delivered(5_000, now, 0.05, 0.05)  # 1 MB/s, 50 ms: BDP 50 kB
    cc.cwnd = 200_000
    cc.on_congestion(200_000, now)  # a queue had built: back to the BDP, not to half
    assert cc.ssthresh == pytest.approx(50_000, rel=0.02) and cc.cwnd == cc.ssthresh
    cc.on_rto(50_000, now)
    assert cc.cwnd == 1000 and cc.ssthresh == pytest.approx(50_000, rel=0.02)


@pytest.mark.parametrize("options", [dict(loss_tolerant=True), dict(congestion_control="westwood")])
def test_loss_tolerant_variants_beat_plain_cubic_on_random_loss(options):
    from test_tcp_sim import goodput

    plain, _ = goodput(TcpConfig(congestion_control="cubic"), seconds=6.0, loss=0.02)
    tolerant, sim = goodput(TcpConfig(**{"congestion_control": "cubic", **options}), seconds=6.0, loss=0.02)
    assert tolerant > 1.3 * plain
    assert sim.server.received_count > 0


@pytest.mark.parametrize("cc", ["cubic", "bbr"])
def test_lost_retransmission_at_the_tail_is_found_by_the_rack_timer_not_a_timeout(cc):
    """No new data follows the retransmissions at the end of a transfer: a later retransmission's
    delivery shows the earlier one was lost, and the RACK timer resends it a round trip after it
    left -- long before the retransmission timeout."""
    p = established(congestion_control=cc)
    p.conn.send(b"r" * 10 * MSS)
    assert len(p.out()) == 10
    p.now += 0.05
    # segments 0 and 5 lost: the peer SACKs 1-4, then 1-4 and 6-9
    p.send("A", ack=at(0), sack=[(at(1), at(5))])
    p.send("A", ack=at(0), sack=[(at(6), at(10)), (at(1), at(5))])
    out = p.out()
    assert sorted(rel(s.seq) for s in out) == [1, 1 + 5 * MSS]  # both holes resent
    rto_at = p.conn._rto_at
    p.now += 0.03
    # the resent 5 arrives, the resent 0 is lost again
    p.send("A", ack=at(0), sack=[(at(1), at(10))])
    assert p.out() == []  # not yet a round trip since the resent 0 left
    due = p.conn.get_timer()
    assert due < rto_at
    p.advance(due - p.now)
    out = p.out()
    assert [rel(s.seq) for s in out] == [1]
    assert p.conn.stats.lost_retransmits == 1 and p.conn.stats.timeouts == 0
    p.send("A", ack=at(10))
    assert not p.conn._recovery and p.conn.snd_una == 1 + 10 * MSS
