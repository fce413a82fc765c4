"""``TcpConnection``: one TCP connection as a sans-IO state machine (RFC 9293).

Segments and time go in (``receive``, ``handle_timer``), built segments and events come out
(``segments_to_send``, ``next_event``).  Nothing here does I/O or reads a clock.

Sequence numbers are kept internally as unbounded *stream offsets* counted from each
side's ISN (offset 0 is the SYN), converted to and from the 32-bit wire values only at the
edge (``seq.unwrap``).  Comparisons on the hot path are then plain integer comparisons and
cannot go wrong at the 2**32 wrap.

Loss recovery follows RFC 6675 in spirit: a SACK scoreboard and a ``pipe`` estimate decide
what to (re)send; without SACK the same machinery does NewReno (RFC 6582) by marking one
segment lost at each partial ACK.  A retransmission timeout marks everything un-SACKed lost.

TIME_WAIT: ``Closed("closed")`` is emitted when the connection *enters* TIME_WAIT (the
application is done with it), but the object stays in TIME_WAIT until its timer
(``config.time_wait`` seconds, ``get_timer()``) so that a retransmitted FIN is answered
with an ACK.  A stack can keep it in its table until ``state is TcpState.CLOSED`` (bounded
in time; ``lingering`` is True meanwhile and its buffers are already freed), or drop it at
once and answer such a FIN with a reset.

The class is split by what it holds: this file has construction, the application API, the
timers and the input state machine; ``sending.py`` builds what goes out (with pacing),
``recovery.py`` processes ACKs and recovers losses (SACK, RACK, TLP, RTO, the congestion
controller's feed), ``receiving.py`` takes payload in; ``state.py`` has the shared constants.
"""

from __future__ import annotations

import random

from .bbr import Bbr
from .config import TcpConfig
from .congestion import NewReno, make_congestion_control
from .delivery import DeliverySampler
from .events import Closed, Connected, DataReceived, TcpEvent
from .receiving import Receiving
from .recovery import Recovery
from .recvbuffer import OutOfOrderQueue
from .rtt import RttEstimator
from .scoreboard import Scoreboard
from .segment import (
    ACK,
    FIN,
    RST,
    SYN,
    TcpSegment,
    build_raw,
    pseudo_sum_for,
)
from .sendbuffer import SendBuffer
from .sending import Sending
from .state import (  # noqa: F401 - re-exported: TcpState, TcpStats and the constants were defined here
    _FAST_RECOVERY,
    _INF,
    _NO_RECOVERY,
    _RECEIVING,
    _RTO_RECOVERY,
    _SENDING,
    CLOSE_WAIT,
    CLOSED,
    CLOSING,
    ESTABLISHED,
    FIN_WAIT_1,
    FIN_WAIT_2,
    HALF,
    LAST_ACK,
    MASK,
    MOD,
    PACING_CREDIT,
    PACING_HORIZON,
    PAWS_IDLE,
    SYN_RECEIVED,
    SYN_SENT,
    TIME_WAIT,
    TcpState,
    TcpStats,
)


class TcpConnection(Sending, Recovery, Receiving):
    """One TCP connection.  Build it with ``from_syn`` (passive) or ``connect`` (active)."""

    __slots__ = (
        "config",
        "state",
        "local",
        "remote",
        "stats",
        "_lport",
        "_rport",
        "_pseudo",
        "_iss",
        "_irs",
        "snd_una",
        "snd_nxt",
        "snd_max",
        "snd_wnd",
        "_wl1",
        "_wl2",
        "_max_snd_wnd",
        "_sb",
        "_fin_abs",
        "rcv_nxt",
        "_rcv_adv",
        "_rcv_buf",
        "_unconsumed",
        "_ooo",
        "_rcv_fin",
        "_rx",
        "_events",
        "_snd_wscale",
        "_rcv_wscale",
        "_ts_ok",
        "_sack_ok",
        "_ts_recent",
        "_ts_recent_at",
        "_ts_offset",
        "_last_ack_sent",
        "_peer_mss",
        "_mss",
        "_rcv_mss",
        "_rto_at",
        "_delack_at",
        "_persist_at",
        "_ka_at",
        "_tw_at",
        "_rtt",
        "_rtt_seq",
        "_rtt_time",
        "_cc",
        "_recovery",
        "_recover",
        "_high_rxt",
        "_lost_end",
        "_dupacks",
        "_score",
        "_retries",
        "_persist_backoff",
        "_persist_unanswered",
        "_ka_probes",
        "_ack_now",
        "_ack_pending",
        "_quickack",
        "_syn_pending",
        "_probe_pending",
        "_oob",
        "_send_blocked",
        "_closed_emitted",
        "_last_rx",
        "_challenge_count",
        "_challenge_epoch",
        "_at_time",
        "_at_seq",
        "_at_space",
        "_rcv_rtt",
        "_active",
        "_syn_time",
        "_ws_ok",
        "_round_end",
        "_pto",
        "_tlp_done",
        "_rxt_log",
        "_relost",
        "_probe_tail",
        "_partial_acks",
        "_last_sample",
        "_pmtu_recovery",
        "_pace_next",
        "_pace_at",
        "_rs",
        "_rack_at",
    )

    # ------------------------------------------------------------------ construction

    def __init__(
        self,
        local: tuple[bytes, int],
        remote: tuple[bytes, int],
        now: float,
        config: TcpConfig,
        iss: int,
    ) -> None:
        self.config = config
        self.state = CLOSED
        self.local = local
        self.remote = remote
        self.stats = TcpStats()
        self._lport = local[1]
        self._rport = remote[1]
        self._pseudo = pseudo_sum_for(local[0], remote[0])
        self._iss = iss & MASK
        self._irs = 0
        self.snd_una = 0
        self.snd_nxt = 1  # the SYN (offset 0) is sent as part of the handshake
        self.snd_max = 1
        self.snd_wnd = 0
        self._wl1 = 0
        self._wl2 = 0
        self._max_snd_wnd = 0
        self._sb = SendBuffer(1)
        self._fin_abs: int | None = None
        self.rcv_nxt = 0
        self._rcv_adv = 0
        self._rcv_buf = (
            min(config.recv_buffer_initial, config.recv_buffer)
            if config.recv_autotune
            else config.recv_buffer
        )
        self._unconsumed = 0
        self._ooo: OutOfOrderQueue | None = None
        self._rcv_fin: int | None = None
        self._rx = bytearray()
        self._events: list[TcpEvent] = []  # a list, not a deque: an idle connection holds ~60 bytes, not ~600
        self._snd_wscale = 0
        self._rcv_wscale = 0
        self._ts_ok = False
        self._sack_ok = False
        self._ts_recent = 0
        self._ts_recent_at = now
        self._ts_offset = random.getrandbits(32)
        self._last_ack_sent = 0
        self._peer_mss = config.default_peer_mss
        self._mss = min(config.mss, config.default_peer_mss)
        self._rcv_mss = min(config.mss, 536)
        self._rto_at: float | None = None
        self._delack_at: float | None = None
        self._persist_at: float | None = None
        self._ka_at: float | None = None
        self._tw_at: float | None = None
        self._rtt = RttEstimator(config.rto_initial, config.rto_min, config.rto_max)
        self._rtt_seq: int | None = None
        self._rtt_time = 0.0
        self._cc: NewReno | Bbr = make_congestion_control(
            config.congestion_control,
            config.mss,
            config.initial_cwnd_segments,
            config.hystart,
            config.loss_tolerant,
            seed=iss,
        )
        # Delivery-rate samples, only for a controller that uses them (BBR): per-segment records.
        self._rs: DeliverySampler | None = DeliverySampler(now) if self._cc.wants_rate_samples else None
        self._recovery = _NO_RECOVERY
        self._recover = 0
        self._high_rxt = 0
        self._lost_end = 0
        self._dupacks = 0
        self._score = Scoreboard()
        self._retries = 0
        self._persist_backoff = 0
        self._persist_unanswered = 0
        self._ka_probes = 0
        self._ack_now = False
        self._ack_pending = 0
        self._quickack = config.quickack_segments
        self._syn_pending = False
        self._probe_pending = False
        self._oob: list[bytes] = []
        self._send_blocked = False
        self._closed_emitted = False
        self._last_rx = now
        self._challenge_count = 0
        self._challenge_epoch = now
        self._at_time = now
        self._at_seq = 0
        self._at_space = 0
        self._rcv_rtt: float | None = None
        self._active = False
        self._syn_time: float | None = now
        self._ws_ok = False
        self._round_end = 0
        self._pto = False  # the retransmission timer currently stands for a tail loss probe
        self._tlp_done = False  # one probe per tail: reset by an ACK of new data
        self._rxt_log: list[list] = []  # retransmissions in this recovery: [start, end, time, snd_max]
        self._relost: list[tuple[int, int]] = []  # retransmissions found lost again, to resend first
        self._probe_tail = False
        self._partial_acks = 0
        self._last_sample: float | None = None
        self._pmtu_recovery = False  # the current recovery resends segments too big for the path
        self._pace_next = 0.0  # the pacer's schedule: when the next data segment is due
        self._pace_at: float | None = None  # set while the pacer holds back data that cwnd allows
        self._rack_at: float | None = None  # RACK reordering timer for retransmissions (recovery only)

    @classmethod
    def from_syn(
        cls,
        syn: TcpSegment,
        local: tuple[bytes, int],
        remote: tuple[bytes, int],
        now: float,
        config: TcpConfig,
        iss: int,
    ) -> TcpConnection:
        """A connection in SYN-RECEIVED answering ``syn`` as ``local``, its SYN-ACK queued."""
        c = cls(local, remote, now, config, iss)
        c._take_syn(syn, now)
        c.state = SYN_RECEIVED
        c._syn_pending = True
        return c

    @classmethod
    def connect(
        cls,
        local: tuple[bytes, int],
        remote: tuple[bytes, int],
        now: float,
        config: TcpConfig,
        iss: int,
    ) -> TcpConnection:
        """An active open: SYN-SENT with the SYN queued."""
        c = cls(local, remote, now, config, iss)
        c._active = True
        c.state = SYN_SENT
        c._syn_pending = True
        c._rcv_wscale = config.window_shift() if config.window_scaling else 0
        return c

    def _take_syn(self, syn: TcpSegment, now: float) -> None:
        """Adopt the peer's SYN: its ISN and the options both sides agree on."""
        cfg = self.config
        self._irs = syn.seq
        self.rcv_nxt = 1
        self._rcv_adv += 1  # a window sent in our SYN was relative to the (then unknown) IRS
        self._last_ack_sent = 1
        self._ws_ok = cfg.window_scaling and syn.wscale is not None
        if self._ws_ok:
            self._snd_wscale = syn.wscale
            self._rcv_wscale = cfg.window_shift()
        else:
            self._snd_wscale = 0
            self._rcv_wscale = 0
        self._ts_ok = cfg.timestamps and syn.ts_val is not None
        if self._ts_ok:
            self._ts_recent = syn.ts_val  # type: ignore[assignment]
            self._ts_recent_at = now
        self._sack_ok = cfg.sack and syn.sack_permitted
        self._peer_mss = syn.mss if syn.mss else cfg.default_peer_mss
        mss = min(self._peer_mss, cfg.mss)
        if mss < 64:
            mss = 64
        self._mss = mss - (12 if self._ts_ok else 0)  # payload per segment with the options we always send
        self._rcv_mss = min(cfg.mss, 536)
        self._cc.mss = self._mss
        self._cc.cwnd = cfg.initial_cwnd_segments * self._mss
        self.snd_wnd = syn.window  # never scaled in a SYN (RFC 7323 2.2)
        self._max_snd_wnd = syn.window
        self._wl1 = 0
        if not self._ws_ok:
            self._rcv_buf = min(self._rcv_buf, 0xFFFF)

    # ------------------------------------------------------------------ application API

    @property
    def lingering(self) -> bool:
        """True in TIME_WAIT: ``Closed`` was emitted but old segments are still answered."""
        return self.state is TIME_WAIT

    def send_space(self) -> int:
        if self._fin_abs is not None or self.state not in (SYN_SENT, SYN_RECEIVED, ESTABLISHED, CLOSE_WAIT):
            return 0
        space = self._send_limit() - len(self._sb)
        return space if space > 0 else 0

    def _send_limit(self) -> int:
        """The send buffer's size, grown with the window (Linux's tcp_sndbuf_expand): twice
        cwnd, so a connection whose window exceeds ``send_buffer`` (a long fat path, BBR's
        2 x BDP) still has data queued beyond what is in flight; capped at send_buffer_max."""
        cfg = self.config
        limit = cfg.send_buffer
        auto = 2 * self._cc.cwnd
        if auto > limit:
            limit = auto if auto < cfg.send_buffer_max else cfg.send_buffer_max
        return limit

    def _send_wake(self) -> int:
        """Wake a blocked writer once the queue is down to this (half the buffer at most)."""
        half = self._send_limit() >> 1
        low = self.config.send_low_water
        return low if low > half else half

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Queue application bytes; returns how many were accepted (0 once closed for sending)."""
        space = self.send_space()
        n = len(data)
        if n > space:
            self._send_blocked = True
            if space <= 0:
                return 0
            data = memoryview(data)[:space]
            n = space
        if n:
            self._sb.append(data)
        return n

    def close(self) -> None:
        """Send FIN after everything queued (a half-close: data from the peer is still delivered)."""
        st = self.state
        if self._fin_abs is not None or st not in (SYN_SENT, SYN_RECEIVED, ESTABLISHED, CLOSE_WAIT):
            return
        self._fin_abs = self._sb.end
        if st is ESTABLISHED:
            self.state = FIN_WAIT_1
        elif st is CLOSE_WAIT:
            self.state = LAST_ACK
        # SYN-SENT/SYN-RECEIVED: the FIN waits until the handshake completes (RFC 9293 3.10.4 for
        # SYN-RECEIVED; in SYN-SENT too, so "send, then close" never loses the queued data --
        # use abort() to give up on a connection attempt).

    def abort(self) -> None:
        """Reset the connection now (RST to the peer unless no handshake was answered yet)."""
        st = self.state
        if st is CLOSED:
            return
        if st is not SYN_SENT and st is not TIME_WAIT:
            self._oob.append(self._raw(self.snd_nxt, RST | ACK, b"", 0, b""))
        self._terminate("aborted")

    def consumed(self, n: int) -> None:
        """The application took ``n`` received bytes; reopen the window (announced if it grew a lot)."""
        if n <= 0:
            return
        before = self._rcv_adv - self.rcv_nxt
        self._unconsumed -= n
        if self._unconsumed < 0:
            self._unconsumed = 0
        if self.state in _RECEIVING or self.state is SYN_RECEIVED:
            avail = self._rcv_buf - self._unconsumed
            cap = 0xFFFF << self._rcv_wscale
            if avail > cap:
                avail = cap
            # Linux's rule (tcp_cleanup_rbuf): announce when the window at least doubles.
            if avail >= 2 * before and avail >= self._mss and avail - before >= self._mss:
                self._ack_now = True

    def set_path_mss(self, mss: int) -> None:
        """Lower the send MSS after an ICMP "packet too big" / "fragmentation needed".

        ``mss`` is in the SYN option's sense: the path MTU minus the fixed IP and TCP
        headers.  It is floored (536 for IPv4, 1220 for IPv6: a forged ICMP must not make us
        send tiny segments) and never raises the MSS above what the handshake agreed.  Data in
        flight was most likely dropped for its size, so it is resent at the new size at once
        (as Linux's tcp_simple_retransmit does) without treating it as congestion.
        """
        floor = 1220 if len(self.local[0]) == 16 else 536
        if mss < floor:
            mss = floor
        negotiated = min(self._peer_mss, self.config.mss)
        if mss > negotiated:
            mss = negotiated
        new = mss - (12 if self._ts_ok else 0)
        if new >= self._mss:
            return
        self._mss = new
        self._cc.mss = new
        if self.state in _SENDING and self.snd_max > self.snd_una and not self._recovery:
            self._recovery = _RTO_RECOVERY
            self._pmtu_recovery = True
            self._recover = self.snd_max
            self._high_rxt = self.snd_una
            self._lost_end = self.snd_max
            self._rxt_log.clear()
            self._rack_at = None
            self._relost.clear()
            self._rtt_seq = None

    def next_event(self) -> TcpEvent | None:
        if self._events:
            return self._events.pop(0)
        if self._rx:
            data = bytes(self._rx)
            self._rx.clear()
            return DataReceived(data)
        return None

    def counters(self) -> dict[str, int]:
        return self.stats.as_dict()

    # ------------------------------------------------------------------ timers

    def get_timer(self) -> float | None:
        t = self._rto_at
        for d in (self._delack_at, self._persist_at, self._ka_at, self._tw_at, self._pace_at, self._rack_at):
            if d is not None and (t is None or d < t):
                t = d
        return t

    def handle_timer(self, now: float) -> None:
        if self._tw_at is not None and now >= self._tw_at:
            self._tw_at = None
            self.state = CLOSED
            self._clear_timers()
            return
        if self._delack_at is not None and now >= self._delack_at:
            self._delack_at = None
            self._ack_now = True
        if self._pace_at is not None and now >= self._pace_at:
            self._pace_at = None  # the next segments_to_send releases the next burst
        if self._rack_at is not None and now >= self._rack_at:
            self._rack_at = None
            if self._recovery and self._rxt_log:
                self._find_lost_retransmissions(now)
        if self._rto_at is not None and now >= self._rto_at:
            self._rto_at = None
            if self._pto:
                self._pto = False
                self._on_pto(now)
            else:
                self._on_rto(now)
        if self._persist_at is not None and now >= self._persist_at:
            self._persist_at = None
            self._on_persist(now)
        if self._ka_at is not None and now >= self._ka_at:
            self._ka_at = None
            self._on_keepalive(now)

    def _clear_timers(self) -> None:
        self._rto_at = self._delack_at = self._persist_at = self._ka_at = self._pace_at = None
        self._rack_at = None

    def _persist_interval(self) -> float:
        cfg = self.config
        base = self._rtt.rto if self._rtt.rto > cfg.persist_min else cfg.persist_min
        t = base * (1 << min(self._persist_backoff, 20))
        return t if t < cfg.persist_max else cfg.persist_max

    def _arm_persist(self, now: float) -> None:
        self._persist_at = now + self._persist_interval()

    def _on_persist(self, now: float) -> None:
        fin = self._fin_abs
        pending = self.snd_una < self._sb.end or (fin is not None and self.snd_una <= fin)
        if self.state not in _SENDING or not pending:
            self._persist_backoff = 0
            return
        if self.snd_wnd and (self.snd_max > self.snd_una or self.snd_wnd >= self._mss):
            # The window is open (or data is in flight and the retransmission timer watches it).
            self._persist_backoff = 0
            return
        self._persist_unanswered += 1
        if self._persist_unanswered > self.config.max_retries:
            self._terminate("timeout")
            return
        self._probe_pending = True
        self._persist_backoff += 1
        self._arm_persist(now)

    def _on_keepalive(self, now: float) -> None:
        cfg = self.config
        st = self.state
        if not cfg.keepalive or st not in (ESTABLISHED, CLOSE_WAIT, FIN_WAIT_2):
            return
        idle_until = self._last_rx + cfg.keepalive_idle
        if now < idle_until and self._ka_probes == 0:
            self._ka_at = idle_until
            return
        if self.snd_max > self.snd_una:
            self._ka_at = now + cfg.keepalive_idle  # the retransmission timer watches this peer
            return
        if self._ka_probes >= cfg.keepalive_count:
            self._terminate("timeout")
            return
        self._ka_probes += 1
        self.stats.keepalive_probes += 1
        self._oob.append(self._raw(self.snd_una - 1, ACK, self._opts(now, False), self._wnd_field(), b""))
        self._ka_at = now + cfg.keepalive_interval

    # ------------------------------------------------------------------ input

    def receive(self, seg: TcpSegment, now: float) -> None:
        """Process one segment addressed to this connection (checksum already verified)."""
        st = self.state
        stats = self.stats
        stats.segs_in += 1
        if st is CLOSED:
            return
        self._last_rx = now
        self._ka_probes = 0
        flags = seg.flags
        if st is SYN_SENT:
            self._receive_syn_sent(seg, now)
            return

        # PAWS (RFC 7323 5): an old timestamp means an old duplicate.
        ts_val = seg.ts_val
        if self._ts_ok and ts_val is not None and not flags & RST:
            if (
                (ts_val - self._ts_recent) & HALF
                and ts_val != self._ts_recent
                and now - self._ts_recent_at < PAWS_IDLE
            ):
                stats.paws_dropped += 1
                self._ack_now = True
                return

        rcv_nxt = self.rcv_nxt
        d = (seg.seq - self._irs - rcv_nxt) & MASK
        seq = rcv_nxt + (d - MOD if d & HALF else d)
        payload = seg.payload
        plen = len(payload)

        if st is SYN_RECEIVED and flags & SYN:
            if not flags & ACK and seq == 0 and not flags & RST:
                self._syn_pending = True  # the peer did not get our SYN-ACK
                return
            if flags & ACK and seq == 0 and seg.ack == (self._iss + 1) & MASK and not flags & RST:
                # Simultaneous open: their SYN-ACK completes our SYN-RECEIVED (RFC 9293 3.10.7.4 fig. 7).
                flags &= ~SYN
                seq = 1
                payload = payload[:0]
                plen = 0

        seg_len = plen + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        wnd = self._rcv_adv - rcv_nxt
        if wnd < 0:
            wnd = 0
        # RFC 9293 3.10.7.4 first check: is the segment acceptable?
        if seg_len == 0:
            ok = seq == rcv_nxt if wnd == 0 else rcv_nxt <= seq < rcv_nxt + wnd
        elif wnd == 0:
            # A bare FIN at RCV.NXT is taken even with a closed window (as Linux and smoltcp do):
            # it costs no buffer, and some stacks resend it forever otherwise.
            ok = seq == rcv_nxt and plen == 0 and flags & FIN != 0
        else:
            end = seq + seg_len - 1
            ok = (rcv_nxt <= seq < rcv_nxt + wnd) or (rcv_nxt <= end < rcv_nxt + wnd)
        if not ok:
            if flags & RST:
                stats.rst_ignored += 1
                return
            stats.out_of_window += 1
            if st is TIME_WAIT and flags & FIN:
                self._tw_at = now + self.config.time_wait
            self._ack_now = True
            # A zero-window probe (or data at the closed window's edge) still carries a valid ACK.
            if seq == rcv_nxt and flags & ACK and not flags & SYN:
                if plen:
                    stats.zero_window_drops += 1
                self._process_ack(seg, seq, now, flags)
            return

        # Second: RST (RFC 5961 3).
        if flags & RST:
            if seq == rcv_nxt:
                if st is TIME_WAIT:
                    self.state = CLOSED
                    self._clear_timers()
                    self._tw_at = None
                    return
                self._terminate("reset")
            else:
                self._challenge_ack(now)
            return

        # Fourth: SYN in a synchronized state draws a challenge ACK (RFC 5961 4).
        if flags & SYN:
            self._challenge_ack(now)
            return

        # Fifth: ACK.
        if not flags & ACK:
            return
        if self._ts_ok and ts_val is not None and seq <= self._last_ack_sent:
            if not (ts_val - self._ts_recent) & HALF:
                self._ts_recent = ts_val
                self._ts_recent_at = now
        if st is SYN_RECEIVED:
            d = (seg.ack - self._iss - self.snd_una) & MASK
            ack = self.snd_una + (d - MOD if d & HALF else d)
            if not (self.snd_una < ack <= self.snd_max):
                # RFC 9293: an unacceptable ACK in SYN-RECEIVED draws a reset.
                self._oob.append(
                    build_raw(self._lport, self._rport, seg.ack, 0, RST, 0, b"", b"", self._pseudo)
                )
                stats.bad_ack += 1
                return
            self.state = ESTABLISHED
            self._wl1 = seq
            self._wl2 = ack
            self.snd_wnd = seg.window << self._snd_wscale
            self._max_snd_wnd = max(self._max_snd_wnd, self.snd_wnd)
            self._retries = 0
            if self._syn_time is not None and not (self._ts_ok and seg.ts_ecr):
                self._rtt.sample(now - self._syn_time)
            self._syn_time = None
            self._established(now)
            if self._fin_abs is not None:
                self.state = FIN_WAIT_1
            st = self.state
        if not self._process_ack(seg, seq, now, flags):
            return
        st = self.state
        if st is CLOSED:
            return

        # Seventh: segment text.  Eighth: FIN.
        if st in _RECEIVING:
            if plen or flags & FIN:
                if plen and self._ts_ok and seg.ts_ecr:
                    self._rcv_rtt_sample(seg.ts_ecr, now)
                self._process_text(seq, payload, flags & FIN, now)
        elif flags & FIN and st is TIME_WAIT:
            self._tw_at = now + self.config.time_wait
            self._ack_now = True

    def _receive_syn_sent(self, seg: TcpSegment, now: float) -> None:
        flags = seg.flags
        if flags & ACK:
            if seg.ack != (self._iss + 1) & MASK:
                if not flags & RST:
                    self._oob.append(
                        build_raw(self._lport, self._rport, seg.ack, 0, RST, 0, b"", b"", self._pseudo)
                    )
                self.stats.bad_ack += 1
                return
        if flags & RST:
            if flags & ACK:
                self._terminate("reset")
            else:
                self.stats.rst_ignored += 1
            return
        if not flags & SYN:
            return
        self._take_syn(seg, now)
        self._rtt.backoff = 0
        if flags & ACK:
            self.snd_una = 1
            self.state = ESTABLISHED
            self._wl1 = 0
            self._wl2 = 1
            self._retries = 0
            self._rto_at = None
            if self._ts_ok and seg.ts_ecr:
                self._rtt.sample(((self._ts_now(now) - seg.ts_ecr) & MASK) / 1000)
            elif self._syn_time is not None:
                self._rtt.sample(now - self._syn_time)
            self._syn_time = None
            self._ack_now = True
            self._established(now)
            if self._fin_abs is not None:
                self.state = FIN_WAIT_1
            if len(seg.payload) or flags & FIN:
                self._process_text(1, seg.payload, flags & FIN, now)
        else:
            # Simultaneous open (RFC 9293 3.5 figure 7): answer with SYN-ACK.
            self.state = SYN_RECEIVED
            self._syn_pending = True

    def _challenge_ack(self, now: float) -> None:
        """RFC 5961 challenge ACK, rate limited per connection."""
        if now - self._challenge_epoch >= 1.0:
            self._challenge_epoch = now
            self._challenge_count = 0
        if self._challenge_count < self.config.challenge_ack_limit:
            self._challenge_count += 1
            self.stats.challenge_acks += 1
            self._ack_now = True

    # ------------------------------------------------------------------ endings

    def _push(self, ev: TcpEvent) -> None:
        if self._rx:
            self._events.append(DataReceived(bytes(self._rx)))
            self._rx.clear()
        self._events.append(ev)

    def _established(self, now: float) -> None:
        self._push(Connected())
        self._at_time = now
        self._at_seq = self.rcv_nxt
        if self.config.keepalive:
            self._ka_at = now + self.config.keepalive_idle

    def _enter_time_wait(self, now: float) -> None:
        self.state = TIME_WAIT
        self._clear_timers()
        self._tw_at = now + self.config.time_wait
        self._free_buffers()
        if not self._closed_emitted:
            self._closed_emitted = True
            self._push(Closed("closed"))

    def _terminate(self, reason: str) -> None:
        self.state = CLOSED
        self._clear_timers()
        self._tw_at = None
        self._free_buffers()
        if not self._closed_emitted:
            self._closed_emitted = True
            self._push(Closed(reason))

    def _free_buffers(self) -> None:
        self._sb = SendBuffer(self._sb.end)
        if self._ooo is not None:
            self._ooo = None
        self._score.clear()
        if self._rs is not None:
            self._rs.clear()
        self._probe_pending = False
        self._syn_pending = False
