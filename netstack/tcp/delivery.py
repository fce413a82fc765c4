"""Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation), in bytes.

A model-based congestion controller (BBR) needs, on every ACK, how fast the path has just
delivered data -- measured from the connection's own send and delivery history, not from
losses.  Each sent segment remembers the connection's delivery state at the moment it left
(bytes delivered so far, when the last of them was delivered, when the flight it belongs to
started); when the segment is delivered (cumulatively ACKed or SACKed), the bytes delivered
since then over the longer of the send and ACK intervals is the rate sample.  Samples taken
while the application had nothing to send are marked app-limited: they show the
application's rate, not the path's.

Records are kept in send order in two parallel lists (one of end offsets for ``bisect``);
a cumulative ACK consumes a prefix, a SACK block finds its segment by bisection, and a
retransmission refreshes the record of the range it resends.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

# record fields
_START = 0
_SENT = 1
_DELIVERED = 2
_DELIVERED_TIME = 3
_FIRST_SENT = 4
_APP_LIMITED = 5
_RETRANSMITTED = 6
_DONE = 7


class RateSample:
    """One ACK's measurement: ``delivery_rate`` (bytes/s) over ``interval`` seconds."""

    __slots__ = ("delivery_rate", "delivered", "interval", "prior_delivered", "is_app_limited", "rtt")

    def __init__(
        self,
        delivery_rate: float,
        delivered: int,
        interval: float,
        prior_delivered: int,
        is_app_limited: bool,
        rtt: float | None,
    ) -> None:
        self.delivery_rate = delivery_rate
        self.delivered = delivered
        self.interval = interval
        self.prior_delivered = prior_delivered
        self.is_app_limited = is_app_limited
        self.rtt = rtt  # from the newest segment delivered, None if it was retransmitted (Karn)


class DeliverySampler:
    __slots__ = ("delivered", "delivered_time", "first_sent_time", "app_limited", "_ends", "_recs", "_head")

    COMPACT = 4096

    def __init__(self, now: float) -> None:
        self.delivered = 0  # bytes delivered (ACKed or SACKed) so far: C.delivered
        self.delivered_time = now  # C.delivered_time
        self.first_sent_time = now  # send time of the flight the next sample starts in
        self.app_limited = 0  # C.app_limited: the delivered mark ending an app-limited phase, or 0
        self._ends: list[int] = []
        self._recs: list[list] = []
        self._head = 0

    def __len__(self) -> int:
        return len(self._ends) - self._head

    def on_send(self, start: int, end: int, now: float, inflight: int, retransmit: bool) -> None:
        """A segment [start, end) leaves; ``inflight`` is the pipe before it."""
        if inflight <= 0:
            # Nothing in flight: the next sample's intervals start now, not at an old ACK.
            self.first_sent_time = now
            self.delivered_time = now
        if retransmit:
            ends = self._ends
            recs = self._recs
            i = bisect_right(ends, start, self._head)
            n = len(ends)
            while i < n and recs[i][_START] < end:
                r = recs[i]
                r[_SENT] = now
                r[_DELIVERED] = self.delivered
                r[_DELIVERED_TIME] = self.delivered_time
                r[_FIRST_SENT] = self.first_sent_time
                r[_APP_LIMITED] = self.app_limited != 0
                r[_RETRANSMITTED] = True
                r[_DONE] = False
                i += 1
            return
        if self._ends and end <= self._ends[-1]:
            return
        self._ends.append(end)
        self._recs.append(
            [
                start,
                now,
                self.delivered,
                self.delivered_time,
                self.first_sent_time,
                self.app_limited != 0,
                False,
                False,
            ]
        )

    def mark_app_limited(self, inflight: int) -> None:
        """The sender ran out of data with room in the window: samples until this flight is
        delivered measure the application, not the path."""
        mark = self.delivered + inflight
        self.app_limited = mark if mark > 0 else 1

    def on_ack(
        self, now: float, newly_delivered: int, cum_ack: int, sack_tops: list[int], min_rtt: float | None
    ) -> RateSample | None:
        """Account ``newly_delivered`` bytes (this ACK's cumulative advance plus newly SACKed
        bytes) and return the rate sample of the newest segment it delivered, if valid."""
        if newly_delivered <= 0:
            return None
        self.delivered += newly_delivered
        self.delivered_time = now
        ends = self._ends
        recs = self._recs
        head = self._head
        n = len(ends)
        best = None
        while head < n and ends[head] <= cum_ack:
            r = recs[head]
            if not r[_DONE] and (best is None or r[_DELIVERED] >= best[_DELIVERED]):
                best = r
            head += 1
        for top in sack_tops:
            i = bisect_left(ends, top, head)
            if i < n:
                r = recs[i]
                if r[_START] < top and not r[_DONE]:
                    r[_DONE] = True
                    if (
                        best is None
                        or r[_DELIVERED] > best[_DELIVERED]
                        or (r[_DELIVERED] == best[_DELIVERED] and r[_SENT] > best[_SENT])
                    ):
                        best = r
        if head > self.COMPACT and 2 * head > n:
            del ends[:head]
            del recs[:head]
            head = 0
        self._head = head
        if self.app_limited and self.delivered > self.app_limited:
            self.app_limited = 0
        if best is None:
            return None
        sent = best[_SENT]
        self.first_sent_time = sent
        send_elapsed = sent - best[_FIRST_SENT]
        ack_elapsed = now - best[_DELIVERED_TIME]
        interval = send_elapsed if send_elapsed > ack_elapsed else ack_elapsed
        delivered = self.delivered - best[_DELIVERED]
        rtt = None if best[_RETRANSMITTED] else now - sent
        if interval <= 0.0 or (min_rtt is not None and interval < min_rtt):
            # Shorter than a round trip: ACK compression or a stretched ACK, not the path's rate.
            return RateSample(0.0, delivered, interval, best[_DELIVERED], best[_APP_LIMITED], rtt)
        return RateSample(
            delivered / interval, delivered, interval, best[_DELIVERED], best[_APP_LIMITED], rtt
        )

    def clear(self) -> None:
        self._ends = []
        self._recs = []
        self._head = 0
