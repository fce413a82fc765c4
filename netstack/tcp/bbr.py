"""BBR congestion control (draft-cardwell-iccrg-bbr-congestion-control, BBRv1's structure).

Loss-based controllers (CUBIC, NewReno) read every loss as congestion and cut the window;
on a phone's radio link, where 1-5% of packets die at random, that keeps the window at a
few segments and the connection at a small fraction of the path.  BBR instead models the
path: the bottleneck bandwidth (the max of recent delivery-rate samples over ~10 round
trips) and the round-trip propagation time (the min RTT over 10 s).  It paces at
``pacing_gain x bandwidth`` and caps the data in flight at ``cwnd_gain x BDP``; a random
loss changes neither estimate.

States: STARTUP (gain 2/ln2, doubles the rate each round until the bandwidth stops growing
by 25% for three rounds), DRAIN (empties the queue STARTUP built), PROBE_BW (cycles the
pacing gain 1.25, 0.75, 1 x6, one min-RTT each, to probe for more bandwidth and drain
what the probe queued), PROBE_RTT (every 10 s without a new min RTT: 4 segments in flight
for 200 ms and a round, so the min RTT is measured without our own queue).  In loss
recovery the window follows packet conservation for the first round (sent = delivered),
then grows back to the model's target; the window from before recovery is restored at its
end.  Sizes are in bytes; rates in bytes per second.

Interface beside ``congestion.NewReno``: ``wants_rate_samples`` tells the connection to
keep a ``delivery.DeliverySampler`` and call ``on_rate_sample`` on every ACK that delivers
data; the loss-based hooks (``on_ack``, ``on_delivered``) are not used.
"""

from __future__ import annotations

from .delivery import RateSample

_INF = float("inf")

STARTUP = "STARTUP"
DRAIN = "DRAIN"
PROBE_BW = "PROBE_BW"
PROBE_RTT = "PROBE_RTT"

HIGH_GAIN = 2.885  # 2/ln(2): the smallest gain that doubles the sending rate each round
DRAIN_GAIN = 1 / HIGH_GAIN
CWND_GAIN = 2.0
PACING_GAIN_CYCLE = (1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
BW_FILTER_ROUNDS = 10
MIN_RTT_WINDOW = 10.0
PROBE_RTT_DURATION = 0.2
PROBE_RTT_CWND_SEGMENTS = 4
MIN_CWND_SEGMENTS = 4
FULL_BW_GROWTH = 1.25
FULL_BW_ROUNDS = 3
BURST_TIME = 0.001  # the pacer's burst (netstack.tcp.state.PACING_HORIZON)
MAX_BURST = 64 << 10
PACING_MARGIN = 0.99
# Loss ceiling on probing (BBRv1's long-term sampling threshold, 50/256; the idea BBRv3
# generalises): a round that lost more than this ends STARTUP and a bandwidth probe.  Random
# loss of a few percent stays far below it, so it does not make BBR loss-based; an overrun
# receiver (a phone's WireGuard process dropping from its socket buffer) goes far above.
HIGH_LOSS = 0.2  # pace 1% below the estimate so a standing queue cannot build from it


class Bbr:
    __slots__ = (
        "mss",
        "cwnd",
        "ssthresh",
        "initial_cwnd",
        "mode",
        "pacing_gain",
        "cwnd_gain",
        "bw",
        "_bw_slots",
        "min_rtt",
        "min_rtt_stamp",
        "round_count",
        "next_round_delivered",
        "round_start",
        "full_bw",
        "full_bw_count",
        "filled_pipe",
        "cycle_index",
        "cycle_stamp",
        "prior_cwnd",
        "packet_conservation",
        "in_recovery",
        "_recovery_starting",
        "probe_rtt_done",
        "probe_rtt_round_done",
        "rate",
        "_seed",
        "_probe_bw_entries",
        "round_loss",
        "_round_rtx",
        "_round_delivered",
    )

    name = "bbr"
    wants_rate_samples = True

    def __init__(
        self,
        mss: int,
        initial_segments: int = 10,
        hystart: bool = True,
        loss_tolerant: bool = False,
        seed: int = 0,
    ) -> None:
        self.mss = mss
        self.cwnd = initial_segments * mss
        self.ssthresh = 1 << 62  # not used by BBR; kept so generic code can read it
        self.initial_cwnd = initial_segments
        self.mode = STARTUP
        self.pacing_gain = HIGH_GAIN
        self.cwnd_gain = HIGH_GAIN
        self.bw = 0.0
        # Made on the first bandwidth sample: an idle connection (most of them) never needs it.
        self._bw_slots: list[list] | None = None
        self.min_rtt = _INF
        self.min_rtt_stamp: float | None = None
        self.round_count = 0
        self.next_round_delivered = 0
        self.round_start = False
        self.full_bw = 0.0
        self.full_bw_count = 0
        self.filled_pipe = False
        self.cycle_index = 0
        self.cycle_stamp = 0.0
        self.prior_cwnd = 0
        self.packet_conservation = False
        self.in_recovery = False
        self._recovery_starting = False
        self.probe_rtt_done: float | None = None
        self.probe_rtt_round_done = False
        self.rate = 0.0
        # The PROBE_BW phase comes from the seed (the ISS), not a Random per connection
        # (2.5 KB each): still spread across connections, and reproducible in the simulator.
        self._seed = seed
        self._probe_bw_entries = 0
        self.round_loss = 0.0  # retransmitted / delivered bytes over the last round
        self._round_rtx = 0
        self._round_delivered = 0

    # ---------------------------------------------------------------- the model

    def bdp(self, gain: float = 1.0) -> int:
        if self.bw <= 0.0 or self.min_rtt == _INF:
            return self.initial_cwnd * self.mss
        return int(gain * self.bw * self.min_rtt)

    def _target_cwnd(self) -> int:
        """gain x BDP plus Linux's quantization budget: three pacing bursts (~1 ms of the
        pacing rate each, 2 segments to 64 KiB), for delayed and stretched ACKs and for the
        bursts themselves.  On a sub-millisecond path the BDP alone is a few segments and
        the sender would stall between ACKs."""
        burst = self.rate * BURST_TIME
        lo = 2 * self.mss
        if burst < lo:
            burst = lo
        elif burst > MAX_BURST:
            burst = MAX_BURST
        return self.bdp(self.cwnd_gain) + 3 * int(burst)

    def _update_bw(self, rs: RateSample) -> None:
        rate = rs.delivery_rate
        if rate <= 0.0 or (rs.is_app_limited and rate < self.bw):
            return
        slots = self._bw_slots
        if slots is None:
            slots = self._bw_slots = [[-BW_FILTER_ROUNDS, 0.0] for _ in range(BW_FILTER_ROUNDS)]
        slot = slots[self.round_count % BW_FILTER_ROUNDS]
        if slot[0] != self.round_count:
            slot[0] = self.round_count
            slot[1] = rate
        elif rate > slot[1]:
            slot[1] = rate
        if rate > self.bw:
            self.bw = rate

    def _new_round(self) -> None:
        """Recompute the windowed max: samples older than BW_FILTER_ROUNDS rounds age out."""
        if self._bw_slots is None:
            return
        oldest = self.round_count - BW_FILTER_ROUNDS
        best = 0.0
        for r, v in self._bw_slots:
            if r > oldest and v > best:
                best = v
        self.bw = best

    def _save_cwnd(self) -> None:
        if not self.in_recovery and self.mode != PROBE_RTT:
            self.prior_cwnd = self.cwnd
        elif self.cwnd > self.prior_cwnd:
            self.prior_cwnd = self.cwnd

    def _enter_probe_bw(self, now: float) -> None:
        self.mode = PROBE_BW
        self.cwnd_gain = CWND_GAIN
        # Start at a random phase other than the draining one (flows desynchronise).
        self._probe_bw_entries += 1
        phase = ((self._seed + self._probe_bw_entries) * 2654435761 >> 16) % 7  # Knuth's multiplicative hash
        self.cycle_index = (len(PACING_GAIN_CYCLE) - 1 - phase + 1) % len(PACING_GAIN_CYCLE)
        self.pacing_gain = PACING_GAIN_CYCLE[self.cycle_index]
        self.cycle_stamp = now

    def _enter_startup(self) -> None:
        self.mode = STARTUP
        self.pacing_gain = HIGH_GAIN
        self.cwnd_gain = HIGH_GAIN

    def _update_cycle_phase(self, now: float, prior_inflight: int, lost: bool) -> None:
        if self.mode != PROBE_BW:
            return
        full_length = now - self.cycle_stamp > self.min_rtt
        gain = self.pacing_gain
        if gain == 1.0:
            advance = full_length
        elif gain > 1.0:
            advance = full_length and (lost or prior_inflight >= self.bdp(gain))
        else:
            advance = full_length or prior_inflight <= self.bdp(1.0)
        if advance:
            self.cycle_index = (self.cycle_index + 1) % len(PACING_GAIN_CYCLE)
            self.pacing_gain = PACING_GAIN_CYCLE[self.cycle_index]
            self.cycle_stamp = now

    def _check_full_pipe(self, rs: RateSample) -> None:
        if self.filled_pipe or not self.round_start or rs.is_app_limited:
            return
        if self.bw >= self.full_bw * FULL_BW_GROWTH:
            self.full_bw = self.bw
            self.full_bw_count = 0
            return
        self.full_bw_count += 1
        if self.full_bw_count >= FULL_BW_ROUNDS:
            self.filled_pipe = True

    def _check_drain(self, now: float, inflight: int) -> None:
        if self.mode == STARTUP and self.filled_pipe:
            self.mode = DRAIN
            self.pacing_gain = DRAIN_GAIN
            self.cwnd_gain = HIGH_GAIN
        if self.mode == DRAIN and inflight <= self.bdp(1.0):
            self._enter_probe_bw(now)

    def _update_min_rtt(self, rtt: float | None, now: float, inflight: int, delivered: int) -> None:
        stamp = self.min_rtt_stamp
        expired = stamp is not None and now > stamp + MIN_RTT_WINDOW
        if rtt is not None and rtt > 0.0 and (rtt < self.min_rtt or expired or stamp is None):
            self.min_rtt = rtt
            self.min_rtt_stamp = now
        if expired and self.mode != PROBE_RTT:
            self.mode = PROBE_RTT
            self.pacing_gain = 1.0
            self.cwnd_gain = 1.0
            self._save_cwnd()
            self.probe_rtt_done = None
        if self.mode == PROBE_RTT:
            if self.probe_rtt_done is None:
                if inflight <= PROBE_RTT_CWND_SEGMENTS * self.mss:
                    self.probe_rtt_done = now + PROBE_RTT_DURATION
                    self.probe_rtt_round_done = False
                    self.next_round_delivered = delivered
            else:
                if self.round_start:
                    self.probe_rtt_round_done = True
                if self.probe_rtt_round_done and now >= self.probe_rtt_done:
                    self.min_rtt_stamp = now
                    if self.prior_cwnd > self.cwnd:
                        self.cwnd = self.prior_cwnd
                    if self.filled_pipe:
                        self._enter_probe_bw(now)
                    else:
                        self._enter_startup()

    def _check_round_loss(self, delivered: int, retransmitted: int, now: float) -> None:
        d = delivered - self._round_delivered
        if d > 0:
            self.round_loss = (retransmitted - self._round_rtx) / d
        self._round_rtx = retransmitted
        self._round_delivered = delivered
        if self.round_loss <= HIGH_LOSS:
            return
        if self.mode == STARTUP:
            self.filled_pipe = True  # the path is full: what overflowed was our own excess
        elif self.mode == PROBE_BW and self.pacing_gain > 1.0:
            self.cycle_index = (self.cycle_index + 1) % len(PACING_GAIN_CYCLE)
            self.pacing_gain = PACING_GAIN_CYCLE[self.cycle_index]
            self.cycle_stamp = now

    def _set_pacing_rate(self) -> None:
        if self.bw <= 0.0:
            return
        rate = self.pacing_gain * self.bw * PACING_MARGIN
        if self.filled_pipe or rate > self.rate:
            self.rate = rate

    def _set_cwnd(self, acked: int, inflight: int, delivered: int) -> None:
        mss = self.mss
        if self._recovery_starting:
            # Packet conservation for the first round of recovery: send what was delivered.
            self._recovery_starting = False
            self.packet_conservation = True
            self.next_round_delivered = delivered
            self.cwnd = inflight + acked
        if self.packet_conservation:
            if inflight + acked > self.cwnd:
                self.cwnd = inflight + acked
        else:
            target = self._target_cwnd()
            cwnd = self.cwnd
            if self.filled_pipe:
                cwnd += acked
                if cwnd > target:
                    cwnd = target
            elif cwnd < target or delivered < self.initial_cwnd * mss:
                cwnd += acked
            if cwnd < MIN_CWND_SEGMENTS * mss:
                cwnd = MIN_CWND_SEGMENTS * mss
            self.cwnd = cwnd
        if self.mode == PROBE_RTT and self.cwnd > PROBE_RTT_CWND_SEGMENTS * mss:
            self.cwnd = PROBE_RTT_CWND_SEGMENTS * mss

    # ---------------------------------------------------------------- connection hooks

    def on_rate_sample(
        self,
        rs: RateSample | None,
        delivered: int,
        inflight: int,
        acked: int,
        now: float,
        lost: bool = False,
        retransmitted: int = 0,
    ) -> None:
        """One ACK that delivered ``acked`` bytes (cumulatively or by SACK).

        ``delivered``: the connection's total delivered bytes after it; ``inflight``: the
        pipe after it; ``lost``: this ACK started loss recovery; ``retransmitted``: the
        connection's total retransmitted bytes (the loss rate per round comes from it).
        """
        prior_inflight = inflight + acked
        self.round_start = False
        if rs is not None:
            if rs.prior_delivered >= self.next_round_delivered:
                self.next_round_delivered = delivered
                self.round_count += 1
                self.round_start = True
                self.packet_conservation = False
                self._new_round()
                self._check_round_loss(delivered, retransmitted, now)
            self._update_bw(rs)
            self._update_cycle_phase(now, prior_inflight, lost)
            self._check_full_pipe(rs)
            self._check_drain(now, inflight)
            self._update_min_rtt(rs.rtt, now, inflight, delivered)
        self._set_pacing_rate()
        self._set_cwnd(acked, inflight, delivered)

    def pacing_rate(self, srtt: float | None, pipe: int) -> float:
        if self.rate > 0.0:
            return self.rate
        if not srtt:
            return 0.0
        return HIGH_GAIN * self.cwnd / srtt  # before the first bandwidth sample

    def on_congestion(self, flight: int, now: float) -> None:
        self._save_cwnd()
        self.in_recovery = True
        self._recovery_starting = True

    def on_recovery_end(self, flight: int, now: float) -> None:
        self.in_recovery = False
        self.packet_conservation = False
        self._recovery_starting = False
        if self.prior_cwnd > self.cwnd:
            self.cwnd = self.prior_cwnd

    def on_rto(self, flight: int, now: float) -> None:
        self._save_cwnd()
        self.in_recovery = True
        self.packet_conservation = False
        self._recovery_starting = False
        self.cwnd = self.mss
        self.full_bw = 0.0
        self.full_bw_count = 0

    def on_ack(
        self,
        acked: int,
        now: float,
        rtt: float | None,
        srtt: float | None,
        cwnd_limited: bool,
        new_round: bool,
    ) -> None:
        """Loss-based growth hook: BBR grows in ``on_rate_sample`` instead."""

    def on_delivered(self, delivered: int, now: float, rtt: float | None, srtt: float | None) -> None:
        """Westwood's hook: BBR has its own delivery-rate sampler."""
