"""BBR's states and window, driven with synthetic rate samples and in the simulator (virtual time)."""

import pytest
from tcp_peer import ISS, MASK, Peer

from netstack.tcp import TcpConfig
from netstack.tcp.bbr import (
    DRAIN,
    HIGH_GAIN,
    MIN_RTT_WINDOW,
    PACING_GAIN_CYCLE,
    PROBE_BW,
    PROBE_RTT,
    PROBE_RTT_CWND_SEGMENTS,
    STARTUP,
    Bbr,
)
from netstack.tcp.delivery import RateSample
from netstack.tcp.sim import LinkSpec, Simulator

MSS = 1448


class Driver:
    """Feeds a Bbr one ACK per call as a connection would: rounds by delivered bytes."""

    def __init__(self, bbr: Bbr, rtt: float = 0.04) -> None:
        self.bbr = bbr
        self.rtt = rtt
        self.now = 0.0
        self.delivered = 0
        self.sent_marks: list[int] = []  # delivered count when each ACK's segment was sent

    retransmitted = 0

    def round(
        self, rate: float, acks: int = 10, inflight: int | None = None, app_limited=False, rtt=None, loss=0.0
    ):
        """One round trip of ``acks`` ACKs delivering at ``rate`` bytes/s, ``loss`` of it resent."""
        start_delivered = self.delivered
        per_ack = int(rate * self.rtt / acks)
        for _ in range(acks):
            self.now += self.rtt / acks
            self.delivered += per_ack
            self.retransmitted += int(per_ack * loss)
            rs = RateSample(rate, per_ack * acks, self.rtt, start_delivered, app_limited, rtt or self.rtt)
            pipe = inflight if inflight is not None else self.bbr.cwnd
            self.bbr.on_rate_sample(rs, self.delivered, pipe, per_ack, self.now, False, self.retransmitted)


def test_startup_grows_the_window_then_exits_when_bandwidth_stops_growing():
    b = Bbr(MSS)
    d = Driver(b)
    assert b.mode == STARTUP and b.pacing_gain == pytest.approx(HIGH_GAIN)
    rate = 100_000.0
    for _ in range(5):  # bandwidth doubling each round: still in startup
        d.round(rate)
        rate *= 2
    assert b.mode == STARTUP and not b.filled_pipe
    plateau = rate / 2
    for _ in range(3):  # three rounds without 25% growth: the pipe is full
        d.round(plateau)
    assert b.filled_pipe
    assert b.mode in (DRAIN, PROBE_BW)
    # once in flight falls to one BDP, drain ends and bandwidth probing starts
    d.round(plateau, inflight=b.bdp(1.0))
    assert b.mode == PROBE_BW
    assert b.pacing_gain in PACING_GAIN_CYCLE and b.pacing_gain != 0.75
    assert b.bw == pytest.approx(plateau)
    assert b.min_rtt == pytest.approx(0.04)
    # cwnd heads for 2 x BDP plus three ~1 ms pacing bursts, not beyond
    for _ in range(20):
        d.round(plateau, inflight=b.bdp(1.0))
    burst = min(max(b.rate * 0.001, 2 * MSS), 64 << 10)
    assert b.cwnd == 2 * b.bdp(1.0) + 3 * int(burst)


def test_random_loss_does_not_end_startup_but_an_overrun_does():
    """A few percent of loss per round is the link; a fifth of a round lost is our own excess."""
    b = Bbr(MSS)
    d = Driver(b)
    rate = 100_000.0
    for _ in range(6):
        d.round(rate, loss=0.05)
        rate *= 2
    assert b.mode == STARTUP and b.round_loss == pytest.approx(0.05, abs=0.01)
    d.round(rate, loss=0.3)
    d.round(rate, loss=0.3)
    assert b.filled_pipe and b.mode in (DRAIN, PROBE_BW)


def test_app_limited_samples_do_not_lower_the_estimate_nor_end_startup():
    b = Bbr(MSS)
    d = Driver(b)
    d.round(1_000_000.0)
    for _ in range(6):
        d.round(200_000.0, app_limited=True)
    assert b.bw == pytest.approx(1_000_000.0)
    assert b.mode == STARTUP and not b.filled_pipe


def test_bandwidth_filter_forgets_after_ten_rounds():
    b = Bbr(MSS)
    d = Driver(b)
    d.round(1_000_000.0)
    for _ in range(9):
        d.round(500_000.0)
    assert b.bw == pytest.approx(1_000_000.0)
    for _ in range(2):
        d.round(500_000.0)
    assert b.bw == pytest.approx(500_000.0)


def test_probe_rtt_after_ten_seconds_without_a_new_min_rtt():
    b = Bbr(MSS)
    d = Driver(b, rtt=0.04)
    for _ in range(8):
        d.round(2_000_000.0)
    d.round(2_000_000.0, inflight=0)
    assert b.mode == PROBE_BW
    stamp = b.min_rtt_stamp
    while d.now < stamp + MIN_RTT_WINDOW - 0.1:  # RTT samples above the minimum: no new min
        d.round(2_000_000.0, inflight=b.bdp(1.0), rtt=0.05)
    assert b.mode == PROBE_BW
    before = b.cwnd
    for _ in range(4):  # across the 10 s mark
        d.round(2_000_000.0, inflight=b.bdp(1.0), rtt=0.05)
    assert b.mode == PROBE_RTT
    assert b.cwnd <= PROBE_RTT_CWND_SEGMENTS * MSS
    # with in flight down to 4 segments, it lasts 200 ms and at least a round, then restores
    for _ in range(8):
        d.round(2_000_000.0, inflight=4 * MSS, rtt=0.041)
    assert b.mode == PROBE_BW
    assert b.cwnd >= before
    assert b.min_rtt == pytest.approx(0.041)  # measured afresh while in flight was small
    assert b.min_rtt_stamp > stamp + MIN_RTT_WINDOW


def test_recovery_conserves_packets_then_restores_the_window():
    b = Bbr(MSS)
    d = Driver(b)
    for _ in range(10):
        d.round(2_000_000.0)
    d.round(2_000_000.0, inflight=b.bdp(1.0))
    before = b.cwnd
    b.on_congestion(before, d.now)
    d.round(2_000_000.0, acks=1, inflight=20 * MSS)
    assert b.cwnd < before  # first round of recovery: in flight + delivered
    b.on_recovery_end(0, d.now)
    assert b.cwnd == before


def established(cc, **cfg):
    p = Peer(TcpConfig(congestion_control=cc, **cfg))
    p.handshake()
    p.drain()
    return p


@pytest.mark.parametrize("cc", ["cubic", "bbr"])
def test_one_random_loss_cuts_cubic_but_not_bbr(cc):
    """A single loss repaired by SACK: CUBIC leaves recovery at 0.7 x its window; BBR's model
    (bandwidth, min RTT) is unchanged and its window is the model's target again."""
    p = established(cc, pacing=False)
    p.conn.send(b"z" * 400 * MSS)
    sent = len(p.out())
    acked = 0
    for _ in range(4):  # a few clean round trips
        p.now += 0.05
        acked = sent
        p.send("A", ack=(ISS + 1 + acked * MSS) & MASK)
        sent += len(p.out())
    cwnd_before = p.conn._cc.cwnd
    bw_before = getattr(p.conn._cc, "bw", 0.0)
    p.now += 0.05
    # the segment at `acked` is lost; the ones after it are SACKed
    lo = (ISS + 1 + acked * MSS) & MASK
    for k in range(2, 14):
        p.send("A", ack=lo, sack=[((ISS + 1 + (acked + 1) * MSS) & MASK, (ISS + 1 + (acked + k) * MSS) & MASK)])
    out = p.out()
    assert any(((s.seq - ISS) & MASK) == 1 + acked * MSS for s in out)  # fast retransmit
    p.now += 0.05
    p.send("A", ack=(ISS + 1 + p.conn.snd_max - 1) & MASK)  # everything delivered: recovery ends
    assert not p.conn._recovery
    if cc == "cubic":
        assert p.conn._cc.cwnd <= 0.75 * cwnd_before
    else:
        b = p.conn._cc
        assert b.bw >= bw_before > 0
        assert not b.in_recovery and not b.packet_conservation
        assert b.cwnd == b._target_cwnd()


def run_sim(cc, loss, seconds=3.0, delay=0.001):
    cfg = TcpConfig(congestion_control=cc, recv_buffer=4 << 20, max_retries=50)
    link = LinkSpec(delay=delay, bandwidth=200e6 / 8, queue_bytes=256 << 10, loss=loss)
    sim = Simulator(seed=3, forward=link, backward=link, client_config=cfg, server_config=cfg)
    sim.server.keep_data = False
    sim.client.close_after_send = False
    block = bytes(64 << 10)

    def refill(s):
        conn = s.client.conn
        if conn is not None and conn.send_space() >= len(block):
            while conn.send_space() >= len(block):
                conn.send(block)
            s.kick()
        return False

    refill(sim)
    sim.run(until=seconds, stop=refill)
    return sim


def test_bbr_keeps_its_model_at_five_percent_random_loss_where_cubic_collapses():
    """At 5% loss both ways (2 ms RTT, 200 Mbit/s), BBR's bandwidth estimate stays near the
    bottleneck and its window near 2 x BDP; CUBIC's window sits below one BDP."""
    bdp = 200e6 / 8 * 0.002
    bbr = run_sim("bbr", 0.05).client.conn
    assert bbr._cc.bw * 8 > 150e6
    assert bbr._cc.mode == PROBE_BW
    assert bbr._cc.cwnd >= bdp
    cubic = run_sim("cubic", 0.05).client.conn
    assert cubic._cc.cwnd < bdp / 2
    assert bbr.stats.timeouts == 0


def test_bbr_paces_at_its_bandwidth_estimate_times_the_gain():
    sim = run_sim("bbr", 0.0, seconds=1.5, delay=0.01)  # 20 ms RTT: paced (PACING_MIN_RTT)
    cc = sim.client.conn._cc
    assert cc.mode == PROBE_BW
    assert cc.pacing_rate(0.02, 0) == pytest.approx(cc.pacing_gain * cc.bw * 0.99)
    assert cc.bw * 8 > 180e6
    # the queue STARTUP built was drained: the RTT now is close to the propagation delay
    assert cc.min_rtt < 0.022 and sim.client.conn._rtt.srtt < 0.03
