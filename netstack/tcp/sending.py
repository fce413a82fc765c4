"""What a ``TcpConnection`` sends: segments built from the send buffer under the congestion
window, the peer's window and the pacer; retransmissions first in recovery; pure ACKs with
the window we announce and our SACK blocks.

A mixin of ``TcpConnection`` (its state lives there, in ``__slots__``): kept apart because
the output path is the longest single piece of the connection.
"""

from __future__ import annotations

from .segment import _II, _TS_ALIGNED, ACK, FIN, PSH, SYN, build_options, build_raw
from .state import _INF, _SENDING, CLOSED, MASK, PACING_CREDIT, PACING_HORIZON, SYN_SENT


class Sending:
    __slots__ = ()

    def _has_unsent(self) -> bool:
        if self.snd_nxt < self._sb.end:
            return True
        fin = self._fin_abs
        return fin is not None and self.snd_nxt <= fin

    def _ts_now(self, now: float) -> int:
        return (int(now * 1000) + self._ts_offset) & MASK

    def _opts(self, now: float, with_sack: bool = True) -> bytes:
        if self._ts_ok:
            ts = _TS_ALIGNED.pack(1, 1, 8, 10, (int(now * 1000) + self._ts_offset) & MASK, self._ts_recent)
            if with_sack and self._ooo and self._sack_ok:
                return ts + self._sack_option(3)
            return ts
        if with_sack and self._ooo and self._sack_ok:
            return self._sack_option(4)
        return b""

    def _sack_option(self, limit: int) -> bytes:
        blocks = self._ooo.sack_blocks(limit)  # type: ignore[union-attr]
        irs = self._irs
        parts = [bytes((1, 1, 5, 2 + 8 * len(blocks)))]
        parts.extend(_II.pack((irs + a) & MASK, (irs + b) & MASK) for a, b in blocks)
        return b"".join(parts)

    def _wnd_field(self) -> int:
        """The window to announce now (RFC 9293 3.8.6.2.2 receiver SWS avoidance, never shrinking)."""
        rcv_nxt = self.rcv_nxt
        avail = self._rcv_buf - self._unconsumed
        if avail < 0:
            avail = 0
        ws = self._rcv_wscale
        cap = 0xFFFF << ws
        if avail > cap:
            avail = cap
        edge = rcv_nxt + avail
        adv = self._rcv_adv
        if edge <= adv:
            edge = adv
        elif edge - adv < self._mss and edge - adv < (self._rcv_buf >> 1) and adv > rcv_nxt:
            edge = adv
        # Rounded down to the scale's granularity: rounding up from a RCV.NXT that moved by
        # less than 2**ws would push the edge out a little further on every ACK while the
        # application is not reading, past the buffer.  The announced edge may then fall
        # short of an earlier one by less than 2**ws (RFC 7323 2.4); data up to the earlier
        # edge (``_rcv_adv``) is still accepted.
        field = (edge - rcv_nxt) >> ws
        if field > 0xFFFF:
            field = 0xFFFF
        announced = rcv_nxt + (field << ws)
        if announced > adv:
            self._rcv_adv = announced
        return field

    def _raw(self, seq_abs: int, flags: int, opts: bytes, window: int, payload: bytes | memoryview) -> bytes:
        return build_raw(
            self._lport,
            self._rport,
            (self._iss + seq_abs) & MASK,
            (self._irs + self.rcv_nxt) & MASK if flags & ACK else 0,
            flags,
            window,
            opts,
            payload,
            self._pseudo,
        )

    def _syn_segment(self, now: float) -> bytes:
        cfg = self.config
        active = self.state is SYN_SENT
        ts_val = self._ts_now(now) if (cfg.timestamps if active else self._ts_ok) else None
        if active:
            wscale = cfg.window_shift() if cfg.window_scaling else None
        else:
            wscale = self._rcv_wscale if self._ws_ok else None
        opts = build_options(
            mss=cfg.mss,
            wscale=wscale,
            sack_permitted=cfg.sack if active else self._sack_ok,
            ts_val=ts_val,
            ts_ecr=(0 if active else self._ts_recent) if ts_val is not None else None,
        )
        window = self._rcv_buf if self._rcv_buf < 0xFFFF else 0xFFFF
        self._rcv_adv = self.rcv_nxt + window
        flags = SYN if active else SYN | ACK
        return build_raw(
            self._lport,
            self._rport,
            self._iss,
            (self._irs + self.rcv_nxt) & MASK if flags & ACK else 0,
            flags,
            window,
            opts,
            b"",
            self._pseudo,
        )

    def segments_to_send(self, now: float) -> list[bytes]:
        """Every segment due now, fully built (TCP header, options, payload, checksum)."""
        out = self._oob
        if out:
            self._oob = []
        else:
            out = []
        st = self.state
        if st is CLOSED:
            return out
        if self._syn_pending:
            self._syn_pending = False
            out.append(self._syn_segment(now))
            self.stats.segs_out += 1
            if self._rto_at is None:
                self._rto_at = now + self._rtt.current()
            if st is SYN_SENT:
                return out
            self._ack_now = False
        if st is SYN_SENT:
            return out
        sent = 0
        if st in _SENDING:
            sent = self._send_data(now, out)
        if self._ack_now and not sent:
            out.append(self._raw(self.snd_nxt, ACK, self._opts(now), self._wnd_field(), b""))
            self.stats.segs_out += 1
            self._acked_now()
        return out

    def _acked_now(self) -> None:
        self._ack_now = False
        self._ack_pending = 0
        self._delack_at = None
        self._last_ack_sent = self.rcv_nxt

    def _send_data(self, now: float, out: list[bytes]) -> int:
        """Append retransmissions and new data allowed by cwnd and the peer's window; returns count."""
        sb = self._sb
        una = self.snd_una
        data_end = sb.end
        fin_abs = self._fin_abs
        send_end = data_end + 1 if fin_abs is not None else data_end
        if (
            self.snd_nxt >= send_end
            and not self._recovery
            and not self._probe_pending
            and not self._probe_tail
        ):
            return 0
        opts = self._opts(now)
        mss = self._mss - (len(opts) - 12 if self._ts_ok else len(opts))
        window = self._wnd_field()
        lport = self._lport
        rport = self._rport
        iss = self._iss
        ack_wire = (self._irs + self.rcv_nxt) & MASK
        pseudo = self._pseudo
        stats = self.stats
        count = 0

        if self._probe_pending:
            # Persist timer (RFC 9293 3.8.6.1): what the window allows, or one byte past a zero
            # window, always from the first unacknowledged byte.
            self._probe_pending = False
            nxt = una
            if nxt < send_end:
                room = una + self.snd_wnd - nxt
                n = data_end - nxt
                if n > mss:
                    n = mss
                if room > 0:
                    if n > room:
                        n = room
                elif n > 1:
                    n = 1
                fin = FIN if n == 0 else 0
                seq_wire = (iss + nxt) & MASK
                if n:
                    with sb.view(nxt, n) as payload:
                        out.append(
                            build_raw(
                                lport, rport, seq_wire, ack_wire, ACK | PSH, window, opts, payload, pseudo
                            )
                        )
                else:
                    out.append(
                        build_raw(lport, rport, seq_wire, ack_wire, ACK | fin, window, opts, b"", pseudo)
                    )
                if room <= 0:
                    stats.persist_probes += 1
                stats.segs_out += 1
                seg_end = nxt + n + (1 if fin else 0)
                if seg_end > self.snd_max:
                    self.snd_max = seg_end
                    stats.bytes_out += n
                if seg_end > self.snd_nxt:
                    self.snd_nxt = seg_end
                self._acked_now()
                if self.snd_wnd and self._rto_at is None:
                    self._rto_at = now + self._rtt.current()
                return 1

        cwnd = self._cc.cwnd
        flight = self.snd_max - una
        if self._sack_ok:
            pipe = flight - self._score.sacked
        else:
            pipe = flight - self._dupacks * self._mss
            if pipe < 0:
                pipe = 0
        # Pacing: data leaves no faster than the controller's rate, in bursts of about a
        # millisecond (asyncio's timer resolution; at least two segments), so a large window
        # does not hit the path as one line-rate burst.  A flight below the initial window is
        # not paced (RFC 6928 allows that burst).  Between bursts (before ``_pace_at``) an ACK
        # releases nothing: the pacer's timer does, a burst at a time.
        rate = self._cc.pacing_rate(self._rtt.srtt, pipe) if self.config.pacing else 0.0
        if rate > 0.0:
            horizon = 2 * mss / rate
            if horizon < PACING_HORIZON:
                horizon = PACING_HORIZON
            pace_free = self.config.initial_cwnd_segments * mss
            if self._pace_at is not None and now < self._pace_at:
                pace_next = _INF  # holding until the next burst
            else:
                self._pace_at = None
                pace_next = self._pace_next
                credit = now - PACING_CREDIT * horizon
                if pace_next < credit:
                    pace_next = credit  # a late timer may catch up a little, an idle one not much
        else:
            self._pace_at = None
            horizon = pace_free = 0
            pace_next = now
        rs = self._rs
        recovery = self._recovery
        if recovery:
            high = self._high_rxt
            lost_end = self._lost_end
            if lost_end > self.snd_max:
                lost_end = self.snd_max
            score = self._score
            if lost_end > high:
                pipe -= (lost_end - high) - score.sacked_between(high, lost_end)
            relost = self._relost
            for a, b in relost:
                pipe -= b - a
            log = self._rxt_log
            snd_max = self.snd_max
            wnd_end = una + self.snd_wnd
            # Retransmit what is deemed lost, lowest first: retransmissions lost again, then holes.
            while pipe < cwnd:
                if pace_next > now + horizon and pipe >= pace_free:
                    if pace_next != _INF:
                        self._pace_at = pace_next
                    break
                from_relost = bool(relost)
                if from_relost:
                    a, b = relost[0]
                    if a < una:
                        a = una
                    hole = score.next_hole(a, b) if score else ((a, b) if a < b else None)
                    if hole is None:
                        relost.pop(0)
                        continue
                    if hole[1] - hole[0] <= mss and hole[1] == b:
                        relost.pop(0)
                    else:
                        relost[0] = (hole[0] + min(mss, hole[1] - hole[0]), b)
                else:
                    if high < una:
                        high = una
                    hole = (
                        score.next_hole(high, lost_end)
                        if score
                        else ((high, lost_end) if high < lost_end else None)
                    )
                    if hole is None:
                        break
                start, end = hole
                if start >= wnd_end:
                    break
                n = end - start
                if n > mss:
                    n = mss
                fin = 0
                if fin_abs is not None and start + n > fin_abs:
                    n = fin_abs - start
                    fin = FIN
                    if n < 0:
                        break
                flags = ACK | fin
                seq_wire = (iss + start) & MASK
                if n:
                    with sb.view(start, n) as payload:
                        out.append(
                            build_raw(lport, rport, seq_wire, ack_wire, flags, window, opts, payload, pseudo)
                        )
                else:
                    out.append(build_raw(lport, rport, seq_wire, ack_wire, flags, window, opts, b"", pseudo))
                seg_end = start + n + (1 if fin else 0)
                if not from_relost and seg_end > high:
                    high = seg_end
                if rs is not None:
                    rs.on_send(start, seg_end, now, pipe, True)
                log.append([start, seg_end, now, snd_max])
                pipe += seg_end - start
                if rate:
                    pace_next += (seg_end - start) / rate
                stats.retransmits += 1
                stats.retransmitted_bytes += n
                stats.segs_out += 1
                count += 1
            self._high_rxt = high
            if count:
                self._rtt_seq = None

        # New data.
        wnd_edge = una + self.snd_wnd
        nagle = self.config.nagle
        nxt = self.snd_nxt
        while pipe < cwnd and nxt < send_end:
            if pace_next > now + horizon and pipe >= pace_free:
                if pace_next != _INF:
                    self._pace_at = pace_next
                break
            avail = data_end - nxt
            n = avail
            if n > mss:
                n = mss
            room = wnd_edge - nxt
            if n > room:
                n = room if room > 0 else 0
            croom = cwnd - pipe
            if n > croom:
                n = croom
            if n < avail:
                # Sender SWS avoidance: a short segment only if it is at least half the peer's biggest window.
                if n < mss and (n <= 0 or n < (self._max_snd_wnd >> 1) or croom < mss):
                    break
            elif nagle and n < mss and flight > 0:
                break
            fin = 0
            if fin_abs is not None and nxt + n == fin_abs and nxt + n < wnd_edge:
                fin = FIN
            if n == 0 and not fin:
                break
            flags = ACK | fin
            if n:
                if nxt + n == data_end:
                    flags |= PSH
                with sb.view(nxt, n) as payload:
                    out.append(
                        build_raw(
                            lport, rport, (iss + nxt) & MASK, ack_wire, flags, window, opts, payload, pseudo
                        )
                    )
            else:
                out.append(
                    build_raw(lport, rport, (iss + nxt) & MASK, ack_wire, flags, window, opts, b"", pseudo)
                )
            stats.segs_out += 1
            seg_end = nxt + n + (1 if fin else 0)
            if rs is not None:
                rs.on_send(nxt, seg_end, now, pipe, seg_end <= self.snd_max)
            if seg_end > self.snd_max:
                if self._rtt_seq is None and not self._ts_ok and nxt >= self.snd_max:
                    self._rtt_seq = seg_end
                    self._rtt_time = now
                self.snd_max = seg_end
                stats.bytes_out += n
            else:
                stats.retransmits += 1
                stats.retransmitted_bytes += n
            nxt = seg_end
            pipe += n + (1 if fin else 0)
            if rate:
                pace_next += n / rate
            flight = self.snd_max - una
            count += 1
        self.snd_nxt = nxt
        if pace_next != _INF:
            self._pace_next = pace_next
        if rs is not None and nxt >= send_end and pipe < cwnd:
            rs.mark_app_limited(pipe)  # out of data with room in the window
        if self._probe_tail:
            self._probe_tail = False
            if not count and self.snd_max > una:
                count += self._send_tail_probe(now, out, opts, window, ack_wire, mss, send_end, wnd_edge)
        if count:
            self._acked_now()
            if self._rto_at is None and self.snd_wnd:
                self._arm_rto(now)
        if nxt < send_end and self.snd_max == una and self._persist_at is None:
            self._arm_persist(now)
        return count

    def _send_tail_probe(
        self,
        now: float,
        out: list[bytes],
        opts: bytes,
        window: int,
        ack_wire: int,
        mss: int,
        send_end: int,
        wnd_edge: int,
    ) -> int:
        """One new segment if the window allows, else the last segment again (RFC 8985 7.3)."""
        sb = self._sb
        nxt = self.snd_nxt
        data_end = sb.end
        fin_abs = self._fin_abs
        if nxt < data_end and nxt < wnd_edge:
            start = nxt
            n = min(mss, data_end - nxt, wnd_edge - nxt)
        else:
            end = self.snd_max
            if fin_abs is not None and end > fin_abs:
                end = fin_abs
            start = end - mss
            if start < self.snd_una:
                start = self.snd_una
            n = end - start
        fin = FIN if fin_abs is not None and start + n == fin_abs and self.snd_max > fin_abs else 0
        if n <= 0 and not fin:
            return 0
        seq_wire = (self._iss + start) & MASK
        if n > 0:
            with sb.view(start, n) as payload:
                out.append(
                    build_raw(
                        self._lport,
                        self._rport,
                        seq_wire,
                        ack_wire,
                        ACK | fin,
                        window,
                        opts,
                        payload,
                        self._pseudo,
                    )
                )
        else:
            out.append(
                build_raw(
                    self._lport, self._rport, seq_wire, ack_wire, ACK | fin, window, opts, b"", self._pseudo
                )
            )
        seg_end = start + max(n, 0) + (1 if fin else 0)
        if self._rs is not None:
            self._rs.on_send(start, seg_end, now, self._pipe(), seg_end <= self.snd_max)
        if seg_end > self.snd_max:
            self.stats.bytes_out += seg_end - self.snd_max
            self.snd_max = seg_end
            self.snd_nxt = seg_end
        self.stats.segs_out += 1
        return 1
