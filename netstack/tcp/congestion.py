"""Congestion control: NewReno (RFC 5681/6582) and CUBIC (RFC 9438).

The connection owns loss detection and recovery (SACK scoreboard, NewReno partial ACKs);
these classes only decide the window.  Sizes are in bytes.  ``on_ack`` is called for ACKs
of new data outside recovery; ``on_congestion`` when fast recovery starts; ``on_rto`` on a
retransmission timeout; ``on_recovery_end`` when recovery completes.
"""

from __future__ import annotations


class NewReno:
    __slots__ = ("mss", "cwnd", "ssthresh", "_acc")

    name = "newreno"

    def __init__(self, mss: int, initial_segments: int = 10) -> None:
        self.mss = mss
        self.cwnd = initial_segments * mss
        self.ssthresh = 1 << 62
        self._acc = 0

    def on_ack(self, acked: int, now: float, rtt: float | None, cwnd_limited: bool) -> None:
        if not cwnd_limited:
            return
        if self.cwnd < self.ssthresh:
            # Appropriate byte counting with L = 2 SMSS (RFC 3465), suits delayed ACKs.
            self.cwnd += min(acked, 2 * self.mss)
        else:
            self._acc += acked
            if self._acc >= self.cwnd:
                self._acc -= self.cwnd
                self.cwnd += self.mss

    def on_congestion(self, flight: int, now: float) -> None:
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.cwnd = self.ssthresh
        self._acc = 0

    def on_recovery_end(self, flight: int, now: float) -> None:
        # RFC 6582 3.2 step 3: deflate to min(ssthresh, FlightSize + SMSS).
        self.cwnd = min(self.ssthresh, max(flight, self.mss) + self.mss)

    def on_rto(self, flight: int, now: float) -> None:
        self.ssthresh = max(flight // 2, 2 * self.mss)
        self.cwnd = self.mss
        self._acc = 0


class Cubic(NewReno):
    """CUBIC per RFC 9438: beta 0.7, C 0.4, fast convergence, Reno-friendly region."""

    __slots__ = ("w_max", "k", "epoch", "w_est", "_cwnd_at_epoch")

    name = "cubic"
    C = 0.4
    BETA = 0.7
    ALPHA = 3 * (1 - 0.7) / (1 + 0.7)

    def __init__(self, mss: int, initial_segments: int = 10) -> None:
        super().__init__(mss, initial_segments)
        self.w_max = 0.0
        self.k = 0.0
        self.epoch: float | None = None
        self.w_est = 0.0
        self._cwnd_at_epoch = 0

    def on_ack(self, acked: int, now: float, rtt: float | None, cwnd_limited: bool) -> None:
        if not cwnd_limited:
            # RFC 9438 5.8 / Linux: an application-limited period must not inflate the window later.
            if self.epoch is not None:
                self.epoch = None
            return
        mss = self.mss
        if self.cwnd < self.ssthresh:
            self.cwnd += min(acked, 2 * mss)
            return
        if self.epoch is None:
            self.epoch = now
            self._cwnd_at_epoch = self.cwnd
            seg = self.cwnd / mss
            if self.w_max <= seg:
                self.k = 0.0
                self.w_max = seg
            else:
                self.k = ((self.w_max - seg) / self.C) ** (1 / 3)
            self.w_est = seg
        t = now - self.epoch + (rtt or 0.0)
        d = t - self.k
        target = self.C * d * d * d + self.w_max
        seg = self.cwnd / mss
        self.w_est += self.ALPHA * acked / self.cwnd
        if self.w_est > target:
            target = self.w_est
        if target > seg:
            if target > 1.5 * seg:
                target = 1.5 * seg
            self.cwnd += int((target - seg) * mss * acked / self.cwnd) or (1 if target - seg > 0.5 else 0)
        else:
            # Stay in place but keep a slow Reno-like growth floor (RFC 9438 4.4 window growth below target).
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
        self._reduce()
        self.ssthresh = max(int(self.cwnd * self.BETA), 2 * self.mss)
        self.cwnd = self.ssthresh
        self._acc = 0

    def on_recovery_end(self, flight: int, now: float) -> None:
        self.cwnd = self.ssthresh
        self.epoch = None

    def on_rto(self, flight: int, now: float) -> None:
        self._reduce()
        self.ssthresh = max(int(self.cwnd * self.BETA), 2 * self.mss)
        self.cwnd = self.mss
        self._acc = 0


def make_congestion_control(name: str, mss: int, initial_segments: int) -> NewReno:
    if name == "cubic":
        return Cubic(mss, initial_segments)
    if name in ("newreno", "reno"):
        return NewReno(mss, initial_segments)
    raise ValueError(f"unknown congestion control {name!r}")
