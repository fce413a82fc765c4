"""Round-trip time estimation and the retransmission timeout (RFC 6298)."""

from __future__ import annotations


class RttEstimator:
    """SRTT/RTTVAR smoothing with exponential backoff of the RTO.

    ``backoff`` counts consecutive timeouts; a fresh sample from new data clears it
    (RFC 6298 5.7 lets the sender keep the backed-off value until then).
    """

    __slots__ = ("srtt", "rttvar", "min_rtt", "rto", "rto_min", "rto_max", "backoff", "granularity")

    def __init__(self, initial: float = 1.0, rto_min: float = 0.2, rto_max: float = 120.0) -> None:
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.min_rtt: float | None = None
        self.rto = initial
        self.rto_min = rto_min
        self.rto_max = rto_max
        self.backoff = 0
        self.granularity = 0.001

    def sample(self, r: float) -> None:
        if r < 0:
            return
        if self.srtt is None:
            self.srtt = r
            self.rttvar = r / 2
            self.min_rtt = r
        else:
            err = self.srtt - r
            self.rttvar += ((err if err >= 0 else -err) - self.rttvar) * 0.25
            self.srtt += (r - self.srtt) * 0.125
            if r < self.min_rtt:  # type: ignore[operator]
                self.min_rtt = r
        rto = self.srtt + max(self.granularity, 4 * self.rttvar)
        self.rto = self.rto_min if rto < self.rto_min else self.rto_max if rto > self.rto_max else rto
        self.backoff = 0

    def current(self) -> float:
        """The RTO including backoff, capped at ``rto_max``."""
        t = self.rto * (1 << self.backoff) if self.backoff < 30 else self.rto_max
        return t if t < self.rto_max else self.rto_max
