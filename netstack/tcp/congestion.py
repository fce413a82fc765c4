"""Congestion control: NewReno (RFC 5681/6582) and CUBIC (RFC 9438), both with HyStart++.

The connection owns loss detection and recovery (SACK scoreboard, RACK, NewReno partial
ACKs); these classes only size the window.  Sizes are in bytes.

- ``on_ack(acked, now, rtt, srtt, cwnd_limited, new_round)``: new data acknowledged outside
  recovery.  ``rtt`` is this ACK's RTT sample (or None), ``new_round`` is True on the first
  ACK of a new round trip (the connection tracks rounds by sequence numbers).
- ``on_congestion(flight, now)``: fast recovery starts (once per window of data).
- ``on_recovery_end(flight, now)``, ``on_rto(flight, now)``.

Slow start exits early with HyStart++ (RFC 9406): when a round's minimum RTT rises clearly
above the previous round's, queues are building, and the window grows by a quarter
(conservative slow start) for a few rounds before congestion avoidance -- instead of
doubling until a burst of losses, which costs a lot on a path with a shallow queue.
"""

from __future__ import annotations

from .bbr import Bbr

_INF = float("inf")
MIN_RTT_THRESH = 0.004
MAX_RTT_THRESH = 0.016
MIN_RTT_DIVISOR = 8
N_RTT_SAMPLE = 8
CSS_GROWTH_DIVISOR = 4
CSS_ROUNDS = 5


class BandwidthEstimator:
    """Westwood+'s delivery-rate estimate: bytes delivered per RTT-long interval, low-pass
    filtered twice, and the minimum RTT seen; their product is the path's BDP without queue."""

    __slots__ = ("bw_est", "bw_ns", "rtt_min", "_bk", "_t0")

    def __init__(self) -> None:
        self.bw_est = 0.0
        self.bw_ns = 0.0
        self.rtt_min = _INF
        self._bk = 0
        self._t0: float | None = None

    def update(self, delivered: int, now: float, rtt: float | None, srtt: float | None) -> None:
        if rtt is not None and 0 < rtt < self.rtt_min:
            self.rtt_min = rtt
        if self._t0 is None:
            self._t0 = now
            return
        self._bk += delivered
        interval = srtt if srtt and srtt > 0.05 else 0.05
        dt = now - self._t0
        if dt >= interval:
            sample = self._bk / dt
            if self.bw_ns == 0.0:
                self.bw_ns = self.bw_est = sample
            else:
                self.bw_ns += (sample - self.bw_ns) * 0.125
                self.bw_est += (self.bw_ns - self.bw_est) * 0.125
            self._bk = 0
            self._t0 = now

    def bdp(self) -> int:
        if self.bw_est <= 0.0 or self.rtt_min == _INF:
            return 0
        return int(self.bw_est * self.rtt_min)


class NewReno:
    __slots__ = (
        "mss",
        "cwnd",
        "ssthresh",
        "_acc",
        "_last_round_min",
        "_round_min",
        "_samples",
        "_css_baseline",
        "_css_rounds",
        "hystart",
        "bwe",
    )

    name = "newreno"
    wants_rate_samples = False

    def __init__(
        self, mss: int, initial_segments: int = 10, hystart: bool = True, loss_tolerant: bool = False
    ) -> None:
        self.mss = mss
        self.cwnd = initial_segments * mss
        self.ssthresh = 1 << 62
        self._acc = 0
        self._last_round_min = _INF
        self._round_min = _INF
        self._samples = 0
        self._css_baseline: float | None = None  # set while in conservative slow start
        self._css_rounds = 0
        self.hystart = hystart
        # With loss_tolerant, a reduction never goes below the measured bandwidth-delay
        # product (the Westwood+ estimate): random radio loss then costs little, while a
        # standing queue (RTT above its minimum) or a falling delivery rate still shrinks it.
        self.bwe = BandwidthEstimator() if loss_tolerant else None

    def _slow_start(self, acked: int, rtt: float | None, new_round: bool) -> None:
        """Slow start with HyStart++; appropriate byte counting with L = 2 SMSS (RFC 3465)."""
        inc = acked if acked < 2 * self.mss else 2 * self.mss
        if not self.hystart:
            self.cwnd += inc
            return
        if new_round:
            self._last_round_min = self._round_min
            self._round_min = _INF
            self._samples = 0
            if self._css_baseline is not None:
                self._css_rounds += 1
                if self._css_rounds >= CSS_ROUNDS:
                    self.ssthresh = self.cwnd  # leave for congestion avoidance
                    self._css_baseline = None
                    return
        if rtt is not None:
            if rtt < self._round_min:
                self._round_min = rtt
            self._samples += 1
        if self._css_baseline is not None:
            if self._round_min < self._css_baseline:
                self._css_baseline = None  # the RTT rise was spurious: back to slow start
            else:
                self.cwnd += inc // CSS_GROWTH_DIVISOR
                return
        elif self._samples >= N_RTT_SAMPLE and self._round_min != _INF and self._last_round_min != _INF:
            thresh = self._last_round_min / MIN_RTT_DIVISOR
            thresh = (
                MIN_RTT_THRESH
                if thresh < MIN_RTT_THRESH
                else MAX_RTT_THRESH
                if thresh > MAX_RTT_THRESH
                else thresh
            )
            if self._round_min >= self._last_round_min + thresh:
                self._css_baseline = self._round_min
                self._css_rounds = 0
                self.cwnd += inc // CSS_GROWTH_DIVISOR
                return
        self.cwnd += inc

    def on_ack(
        self,
        acked: int,
        now: float,
        rtt: float | None,
        srtt: float | None,
        cwnd_limited: bool,
        new_round: bool,
    ) -> None:
        if not cwnd_limited:
            return
        if self.cwnd < self.ssthresh:
            self._slow_start(acked, rtt, new_round)
            return
        self._acc += acked
        if self._acc >= self.cwnd:
            self._acc -= self.cwnd
            self.cwnd += self.mss

    def pacing_rate(self, srtt: float | None, pipe: int) -> float:
        """Bytes per second to pace at (0: unpaced), as Linux: twice cwnd per RTT in slow start
        (so pacing does not slow the doubling), 1.2 times in congestion avoidance."""
        if not srtt:
            return 0.0
        w = self.cwnd if self.cwnd > pipe else pipe
        return (2.0 if self.cwnd < self.ssthresh // 2 else 1.2) * w / srtt

    def on_delivered(self, delivered: int, now: float, rtt: float | None, srtt: float | None) -> None:
        """Bytes newly acknowledged or SACKed by an ACK (feeds the bandwidth estimate)."""
        if self.bwe is not None:
            self.bwe.update(delivered, now, rtt, srtt)

    def _floor(self, before: int) -> None:
        """Raise ssthresh to the measured BDP (never above the window before the reduction)."""
        bwe = self.bwe
        if bwe is not None:
            bdp = bwe.bdp()
            if bdp > self.ssthresh:
                self.ssthresh = bdp if bdp < before else before

    def _leave_slow_start(self) -> None:
        self._css_baseline = None
        self._acc = 0

    def on_congestion(self, flight: int, now: float) -> None:
        before = self.cwnd
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self._floor(before)
        self.cwnd = self.ssthresh
        self._leave_slow_start()

    def on_recovery_end(self, flight: int, now: float) -> None:
        # RFC 6582 3.2 step 3: deflate to min(ssthresh, FlightSize + SMSS).
        self.cwnd = min(self.ssthresh, max(flight, self.mss) + self.mss)

    def on_rto(self, flight: int, now: float) -> None:
        before = self.cwnd
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self._floor(before)
        self.cwnd = self.mss
        self._leave_slow_start()


class Cubic(NewReno):
    """CUBIC per RFC 9438: beta 0.7, C 0.4, fast convergence, Reno-friendly region."""

    __slots__ = ("w_max", "k", "epoch", "w_est")

    name = "cubic"
    C = 0.4
    BETA = 0.7
    ALPHA = 3 * (1 - 0.7) / (1 + 0.7)

    def __init__(
        self, mss: int, initial_segments: int = 10, hystart: bool = True, loss_tolerant: bool = False
    ) -> None:
        super().__init__(mss, initial_segments, hystart, loss_tolerant)
        self.w_max = 0.0
        self.k = 0.0
        self.epoch: float | None = None
        self.w_est = 0.0

    def on_ack(
        self,
        acked: int,
        now: float,
        rtt: float | None,
        srtt: float | None,
        cwnd_limited: bool,
        new_round: bool,
    ) -> None:
        if not cwnd_limited:
            # RFC 9438 5.8: an application-limited period must not inflate the window later.
            self.epoch = None
            return
        mss = self.mss
        if self.cwnd < self.ssthresh:
            self._slow_start(acked, rtt, new_round)
            return
        if self.epoch is None:
            self.epoch = now
            seg = self.cwnd / mss
            if self.w_max <= seg:
                self.k = 0.0
                self.w_max = seg
            else:
                self.k = ((self.w_max - seg) / self.C) ** (1 / 3)
            self.w_est = seg
        t = now - self.epoch + (srtt or 0.0)
        d = t - self.k
        target = self.C * d * d * d + self.w_max
        seg = self.cwnd / mss
        self.w_est += self.ALPHA * acked / self.cwnd
        if self.w_est > target:
            target = self.w_est
        if target > seg:
            if target > 1.5 * seg:
                target = 1.5 * seg
            self.cwnd += int((target - seg) * mss * acked / self.cwnd)
        else:
            # At or above the target (plateau): grow very slowly, as Linux does (1 MSS per 100 windows).
            self._acc += acked
            if self._acc >= 100 * self.cwnd:
                self._acc = 0
                self.cwnd += mss

    def _reduce(self) -> None:
        seg = self.cwnd / self.mss
        if seg < self.w_max:  # fast convergence
            self.w_max = seg * (1 + self.BETA) / 2
        else:
            self.w_max = seg
        self.epoch = None

    def on_congestion(self, flight: int, now: float) -> None:
        before = self.cwnd
        self._reduce()
        self.ssthresh = max(int(self.cwnd * self.BETA), 2 * self.mss)
        self._floor(before)
        self.cwnd = self.ssthresh
        self._leave_slow_start()

    def on_recovery_end(self, flight: int, now: float) -> None:
        self.cwnd = self.ssthresh
        self.epoch = None

    def on_rto(self, flight: int, now: float) -> None:
        before = self.cwnd
        self._reduce()
        self.ssthresh = max(int(self.cwnd * self.BETA), 2 * self.mss)
        self._floor(before)
        self.cwnd = self.mss
        self._leave_slow_start()


class Westwood(NewReno):
    """TCP Westwood+ (Grieco & Mascolo 2004; Linux's tcp_westwood): Reno's growth, but after a
    loss the window becomes the estimated bandwidth times the minimum RTT instead of half."""

    __slots__ = ()

    name = "westwood"

    def __init__(
        self, mss: int, initial_segments: int = 10, hystart: bool = True, loss_tolerant: bool = True
    ) -> None:
        super().__init__(mss, initial_segments, hystart, True)

    def _set_ssthresh(self, flight: int) -> None:
        bdp = self.bwe.bdp()  # type: ignore[union-attr]
        self.ssthresh = max(bdp, 2 * self.mss) if bdp else max(flight // 2, 2 * self.mss)

    def on_congestion(self, flight: int, now: float) -> None:
        self._set_ssthresh(flight)
        if self.cwnd > self.ssthresh:
            self.cwnd = self.ssthresh
        self._leave_slow_start()

    def on_recovery_end(self, flight: int, now: float) -> None:
        self.cwnd = self.ssthresh

    def on_rto(self, flight: int, now: float) -> None:
        self._set_ssthresh(flight)
        self.cwnd = self.mss
        self._leave_slow_start()


def make_congestion_control(
    name: str,
    mss: int,
    initial_segments: int,
    hystart: bool = True,
    loss_tolerant: bool = False,
    seed: int = 0,
) -> NewReno | Bbr:
    if name == "bbr":
        return Bbr(mss, initial_segments, seed=seed)
    if name == "cubic":
        return Cubic(mss, initial_segments, hystart, loss_tolerant)
    if name in ("newreno", "reno"):
        return NewReno(mss, initial_segments, hystart, loss_tolerant)
    if name == "westwood":
        return Westwood(mss, initial_segments, hystart)
    raise ValueError(f"unknown congestion control {name!r}")
