"""ACK processing and loss recovery of a ``TcpConnection``: the SACK scoreboard, fast
retransmit / NewReno partial ACKs, RACK for lost retransmissions, tail loss probes, the
retransmission timeout, and the feed of the congestion controller (delivery-rate samples
for BBR).

A mixin of ``TcpConnection`` (its state lives there, in ``__slots__``).
"""

from __future__ import annotations

from .delivery import DeliverySampler
from .events import SendSpaceAvailable
from .segment import FIN, TcpSegment
from .state import (
    _FAST_RECOVERY,
    _NO_RECOVERY,
    _RTO_RECOVERY,
    _SENDING,
    CLOSING,
    FIN_WAIT_1,
    FIN_WAIT_2,
    HALF,
    LAST_ACK,
    MASK,
    MOD,
    SYN_RECEIVED,
    SYN_SENT,
)


class Recovery:
    __slots__ = ()

    def _on_rto(self, now: float) -> None:
        st = self.state
        rtt = self._rtt
        self._retries += 1
        if rtt.backoff < 16:
            rtt.backoff += 1
        if st is SYN_SENT or st is SYN_RECEIVED:
            if self._retries > self.config.syn_retries:
                self._terminate("timeout")
                return
            self._syn_pending = True
            self._syn_time = None  # Karn: no RTT sample from a retransmitted SYN
            return
        if self.snd_una >= self.snd_max or st not in _SENDING:
            return
        if self._retries > self.config.max_retries:
            self._terminate("timeout")
            return
        if self.snd_wnd == 0:
            # Nothing in flight can be accepted: behave as the persist timer does.
            self.snd_nxt = self.snd_una
            self._probe_pending = True
            self._arm_persist(now)
            return
        self.stats.timeouts += 1
        self._pmtu_recovery = False
        self._rxt_log.clear()
        self._rack_at = None
        self._relost.clear()
        self._cc.on_rto(self.snd_max - self.snd_una, now)
        if rtt.backoff > 1:
            self._score.clear()  # the peer may have reneged on its SACKs
        self._recovery = _RTO_RECOVERY
        self._recover = self.snd_max
        self._high_rxt = self.snd_una
        self._lost_end = self.snd_max
        self._dupacks = 0
        self._rtt_seq = None

    def _arm_rto(self, now: float) -> None:
        """(Re)start the retransmission timer, as a tail loss probe when one is allowed (RFC 8985 7)."""
        if not self.snd_wnd:
            self._rto_at = None
            return
        rtt = self._rtt
        rto = rtt.current()
        if (
            self._sack_ok
            and not self._recovery
            and not self._tlp_done
            and rtt.srtt is not None
            and self.state in _SENDING
        ):
            pto = 2 * rtt.srtt
            if self.snd_max - self.snd_una <= self._mss:
                pto += 0.2  # a lone segment: allow for the peer's delayed ACK
            if pto < 0.01:
                pto = 0.01
            if pto < rto:
                self._rto_at = now + pto
                self._pto = True
                return
        self._rto_at = now + rto
        self._pto = False

    def _on_pto(self, now: float) -> None:
        """Tail loss probe: send one segment so the peer's SACK reveals a lost tail without a timeout."""
        self._tlp_done = True
        if self.snd_una >= self.snd_max or self.state not in _SENDING or self._recovery:
            return
        self.stats.tail_loss_probes += 1
        self._probe_tail = True
        self._arm_rto_plain(now)

    def _arm_rto_plain(self, now: float) -> None:
        self._rto_at = now + self._rtt.current()
        self._pto = False

    def _process_ack(self, seg: TcpSegment, seq: int, now: float, flags: int) -> bool:
        """ACK processing (RFC 9293 3.10.7.4 fifth, RFC 5961 5); False when the segment must be dropped."""
        una = self.snd_una
        d = (seg.ack - self._iss - una) & MASK
        ack = una + (d - MOD if d & HALF else d)
        stats = self.stats
        if ack > self.snd_max:
            stats.bad_ack += 1
            self._ack_now = True
            return False
        if ack < una - self._max_snd_wnd:
            stats.bad_ack += 1
            self._challenge_ack(now)
            return False
        self._persist_unanswered = 0

        wnd = seg.window << self._snd_wscale
        # Window update (SND.WL1/WL2 guard against old segments).
        window_changed = False
        if seq > self._wl1 or (seq == self._wl1 and ack >= self._wl2):
            if wnd != self.snd_wnd:
                window_changed = True
                was_zero = self.snd_wnd == 0
                self.snd_wnd = wnd
                if wnd > self._max_snd_wnd:
                    self._max_snd_wnd = wnd
                if wnd and was_zero:
                    # Leaving the persist state: probes not acknowledged are sent again in order.
                    if self.snd_nxt > ack and self.snd_max - ack <= 1:
                        self.snd_nxt = ack
                    self._persist_at = None
                    self._persist_backoff = 0
                    if self.snd_max > ack and self._rto_at is None:
                        self._arm_rto(now)
            self._wl1 = seq
            self._wl2 = ack

        sacked_before = self._score.sacked
        sacked_new = 0
        rs = self._rs
        tops: list[int] | None = [] if rs is not None else None
        if seg.sack_blocks and self._sack_ok:
            sacked_new = self._take_sack(seg.sack_blocks, ack, tops)

        if ack > una:
            self._new_ack(ack, seg, now)
            self._cc.on_delivered(
                ack - una + self._score.sacked - sacked_before, now, self._last_sample, self._rtt.srtt
            )
        elif sacked_new:
            self._cc.on_delivered(sacked_new, now, None, self._rtt.srtt)
        if ack > una:
            pass
        elif ack == una and self.snd_max > una and self.snd_wnd:
            plen = len(seg.payload)
            if (not plen and not flags & FIN and not window_changed) or sacked_new:
                self._dupack(now, sacked_new)
        if rs is not None:
            delivered = (ack - una + self._score.sacked - sacked_before) if ack > una else sacked_new
            if delivered > 0:
                self._rate_sample(rs, now, delivered, ack, tops)  # type: ignore[arg-type]

        if not self.snd_wnd and self._persist_at is None and self.state in _SENDING:
            if self.snd_max > self.snd_una or self._has_unsent():
                # A zero window: the persist timer (not the retransmission timer) keeps asking.
                self._rto_at = None
                self._arm_persist(now)
        st = self.state
        fin = self._fin_abs
        if fin is not None and self.snd_una > fin:
            if st is FIN_WAIT_1:
                self.state = FIN_WAIT_2
                self._rto_at = None
            elif st is CLOSING:
                self._enter_time_wait(now)
                return False
            elif st is LAST_ACK:
                self._terminate("closed")
                return False
        return True

    def _rate_sample(
        self, rs: DeliverySampler, now: float, delivered: int, ack: int, tops: list[int]
    ) -> None:
        """Feed a model-based controller one ACK's delivery-rate sample."""
        sample = rs.on_ack(now, delivered, ack, tops, self._rtt.min_rtt)
        cc = self._cc
        lost = cc._recovery_starting  # type: ignore[union-attr]  # this ACK started recovery
        cc.on_rate_sample(  # type: ignore[union-attr]
            sample, rs.delivered, self._pipe(), delivered, now, lost, self.stats.retransmitted_bytes
        )

    def _pipe(self) -> int:
        """Bytes in the network (RFC 6675's pipe): in flight, minus SACKed, minus deemed lost."""
        una = self.snd_una
        snd_max = self.snd_max
        flight = snd_max - una
        if self._sack_ok:
            pipe = flight - self._score.sacked
        else:
            pipe = flight - self._dupacks * self._mss
        if self._recovery:
            high = self._high_rxt if self._high_rxt > una else una
            lost_end = self._lost_end if self._lost_end < snd_max else snd_max
            if lost_end > high:
                pipe -= (lost_end - high) - self._score.sacked_between(high, lost_end)
            for a, b in self._relost:
                pipe -= b - a
        return pipe if pipe > 0 else 0

    def _take_sack(self, blocks: tuple[tuple[int, int], ...], ack: int, tops: list[int] | None = None) -> int:
        iss = self._iss
        una = self.snd_una
        ref = (iss + una) & MASK
        snd_max = self.snd_max
        new = 0
        for left, right in blocks:
            dl = (left - ref) & MASK
            dr = (right - ref) & MASK
            lo = una + (dl - MOD if dl & HALF else dl)
            hi = una + (dr - MOD if dr & HALF else dr)
            if lo >= hi or hi > snd_max or hi <= ack:
                continue  # D-SACK or bogus
            if lo < ack:
                lo = ack
            added = self._score.add(lo, hi)
            if added and tops is not None:
                tops.append(hi)
            new += added
        return new

    def _new_ack(self, ack: int, seg: TcpSegment, now: float) -> None:
        una = self.snd_una
        acked = ack - una
        flight_before = self.snd_max - una
        self.snd_una = ack
        if self.snd_nxt < ack:
            self.snd_nxt = ack
        self._sb.ack_to(ack)
        if self._score:
            self._score.trim(ack)
        self._retries = 0
        self._tlp_done = False
        # RTT sample (RFC 7323 4.1 with timestamps; Karn's algorithm otherwise).
        rtt = self._rtt
        sample = None
        if self._ts_ok:
            ecr = seg.ts_ecr
            if ecr:
                elapsed = ((int(now * 1000) + self._ts_offset) - ecr) & MASK
                if elapsed < HALF:
                    sample = elapsed / 1000
                    rtt.sample(sample)
        elif self._rtt_seq is not None and ack >= self._rtt_seq:
            sample = now - self._rtt_time
            rtt.sample(sample)
            self._rtt_seq = None
        if rtt.backoff and self._recovery != _RTO_RECOVERY:
            rtt.backoff = 0
        self._last_sample = sample
        new_round = ack >= self._round_end
        if new_round:
            self._round_end = self.snd_max

        recovery = self._recovery
        cc = self._cc
        if recovery:
            if ack >= self._recover:
                self._recovery = _NO_RECOVERY
                self._dupacks = 0
                self._rxt_log.clear()
                self._rack_at = None
                self._relost.clear()
                if self._pmtu_recovery:
                    self._pmtu_recovery = False  # not a congestion event: the window stays
                else:
                    cc.on_recovery_end(self.snd_max - ack, now)
            else:
                if self._high_rxt < ack:
                    self._high_rxt = ack
                if recovery == _FAST_RECOVERY and not self._sack_ok:
                    # NewReno partial ACK (RFC 6582 3.2 step 4): the next segment is lost too.
                    self._partial_acks += 1
                    self._high_rxt = ack
                    self._lost_end = ack + self._mss
                    if self._dupacks > 0:
                        self._dupacks = max(self._dupacks - acked // self._mss, 0)
                elif recovery == _FAST_RECOVERY and self._score.high > self._lost_end:
                    self._lost_end = self._score.high
                if recovery == _RTO_RECOVERY:
                    cc.on_ack(acked, now, sample, rtt.srtt, True, new_round)
                if self._rxt_log:
                    self._find_lost_retransmissions(now)
        else:
            self._dupacks = 0
            cc.on_ack(acked, now, sample, rtt.srtt, flight_before + self._mss >= cc.cwnd, new_round)

        if self.snd_max > ack:
            # The "impatient" NewReno variant (RFC 6582 4): only the first partial ACK restarts the
            # timer, so many losses in one window end in a timeout and go-back-N instead of one
            # retransmission per round trip.
            if self._partial_acks <= 1 or self._recovery != _FAST_RECOVERY or self._rto_at is None:
                self._arm_rto(now)
        else:
            self._rto_at = None
            self._pto = False
        if self._send_blocked and len(self._sb) <= self._send_wake():
            self._send_blocked = False
            self._push(SendSpaceAvailable())

    def _find_lost_retransmissions(self, now: float) -> None:
        """RACK's rule (RFC 8985) applied to retransmissions: one sent before something that
        has since been delivered -- new data, or a later retransmission -- and not delivered
        itself a round trip later, was lost again.

        Without it a lost retransmission waits for the retransmission timeout, which on a
        link losing 5-10% of packets happens often and collapses the window each time.  At
        the end of a transfer no new data follows the retransmissions, so the later
        retransmissions' delivery is what reveals the loss; when it is revealed before the
        round trip is over, the RACK timer (``_rack_at``) checks again then, so the last
        ACK of a recovery need not be followed by a timeout.  The log is in send order and
        both conditions hold for a prefix of it, so each ACK only looks at the entries it
        settles (amortised O(1)) plus a few of the newest.
        """
        una = self.snd_una
        score = self._score
        delivered_high = score.high if score.high > una else una
        # RACK's time: the RTT now (srtt, queueing included: BBR's STARTUP or a deep queue
        # must not make retransmissions look lost before their ACKs could be back) plus a
        # quarter of the minimum RTT for reordering.
        rtt = self._rtt
        min_rtt = rtt.min_rtt or 0.0
        window = (rtt.srtt if rtt.srtt is not None and rtt.srtt > min_rtt else min_rtt) + min_rtt / 4
        log = self._rxt_log
        relost = self._relost
        # The most recently sent retransmission known delivered (RACK.xmit_ts, by send order:
        # a burst of retransmissions shares one timestamp), looking at the newest few only.
        n = len(log)
        rack_i = -1
        j = n - 1
        stop = n - 16 if n > 16 else 0
        while j >= stop:
            start, end, t, _ = log[j]
            if end <= una or (score and score.sacked_between(start, end) >= end - start):
                rack_i = j
                break
            j -= 1
        self._rack_at = None
        found = False
        i = 0
        while i < n:
            start, end, t, snd_max_then = log[i]
            if end <= una or (score and score.sacked_between(start, end) >= end - start):
                i += 1  # delivered
                continue
            if snd_max_then >= delivered_high and i >= rack_i:
                break  # nothing sent after it has been delivered yet
            due = t + window
            if due > now:
                self._rack_at = due  # ordering says lost; time will tell (never a due timer: no spin)
                break
            i += 1
            relost.append((start if start > una else una, end))
            self.stats.lost_retransmits += 1
            found = True
        if i:
            del log[:i]
        if found:
            relost.sort()

    def _dupack(self, now: float, sacked_new: int) -> None:
        self._dupacks += 1
        self.stats.dup_acks += 1
        recovery = self._recovery
        if recovery:
            if recovery == _FAST_RECOVERY and self._sack_ok and self._score.high > self._lost_end:
                self._lost_end = self._score.high
            if self._rxt_log:
                self._find_lost_retransmissions(now)
            return
        mss = self._mss
        una = self.snd_una
        flight = self.snd_max - una
        sacked = self._score.sacked
        # Early retransmit (RFC 5827): with fewer than four segments out, fewer duplicates suffice.
        oseg = (flight + mss - 1) // mss
        thresh = 3 if oseg >= 4 else max(oseg - 1, 1)
        if self._dupacks >= thresh or (
            self._sack_ok and (sacked > 2 * mss or (oseg < 4 and sacked >= (oseg - 1) * mss > 0))
        ):
            # Fast retransmit (RFC 5681 3.2 / RFC 6675 5).
            self.stats.fast_retransmits += 1
            self._cc.on_congestion(flight, now)
            self._recovery = _FAST_RECOVERY
            self._partial_acks = 0
            self._recover = self.snd_max
            self._high_rxt = una
            self._lost_end = self._score.high if (self._sack_ok and self._score.high > una) else una + mss
            self._rtt_seq = None
            self._pto = False
            self._rto_at = now + self._rtt.current()
