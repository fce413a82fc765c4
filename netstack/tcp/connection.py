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
"""

from __future__ import annotations

import enum
import random

from .bbr import Bbr
from .config import TcpConfig
from .congestion import NewReno, make_congestion_control
from .delivery import DeliverySampler
from .events import Closed, Connected, DataReceived, EofReceived, SendSpaceAvailable, TcpEvent
from .recvbuffer import OutOfOrderQueue
from .rtt import RttEstimator
from .scoreboard import Scoreboard
from .segment import (
    _II,
    _TS_ALIGNED,
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    TcpSegment,
    build_options,
    build_raw,
    pseudo_sum_for,
)
from .sendbuffer import SendBuffer

MASK = 0xFFFFFFFF
HALF = 0x80000000
MOD = 0x100000000
PAWS_IDLE = 24 * 86400.0  # RFC 7323 5.5: ts_recent older than 24 days is invalid
_INF = float("inf")
PACING_HORIZON = 0.001  # the shortest pacing burst, in seconds: asyncio timers are ~1 ms coarse


class TcpState(enum.Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"


CLOSED = TcpState.CLOSED
SYN_SENT = TcpState.SYN_SENT
SYN_RECEIVED = TcpState.SYN_RECEIVED
ESTABLISHED = TcpState.ESTABLISHED
FIN_WAIT_1 = TcpState.FIN_WAIT_1
FIN_WAIT_2 = TcpState.FIN_WAIT_2
CLOSE_WAIT = TcpState.CLOSE_WAIT
CLOSING = TcpState.CLOSING
LAST_ACK = TcpState.LAST_ACK
TIME_WAIT = TcpState.TIME_WAIT

# States in which we may still send data / a FIN.
_SENDING = frozenset({ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK})
# States in which the peer's data is still accepted.
_RECEIVING = frozenset({ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2})

_NO_RECOVERY = 0
_FAST_RECOVERY = 1
_RTO_RECOVERY = 2


class TcpStats:
    """Per-connection counters (what happened and what was dropped, by reason)."""

    __slots__ = (
        "segs_in",
        "segs_out",
        "bytes_in",
        "bytes_out",
        "retransmits",
        "retransmitted_bytes",
        "timeouts",
        "fast_retransmits",
        "dup_acks",
        "ooo_segments",
        "ooo_dropped",
        "out_of_window",
        "paws_dropped",
        "challenge_acks",
        "bad_ack",
        "rst_ignored",
        "persist_probes",
        "keepalive_probes",
        "zero_window_drops",
        "tail_loss_probes",
        "lost_retransmits",
    )

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class TcpConnection:
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

    # ------------------------------------------------------------------ output

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
                if pace_next < now - horizon:
                    pace_next = now - horizon  # idle credit is capped at one burst
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

    def _rate_sample(self, rs: DeliverySampler, now: float, delivered: int, ack: int, tops: list[int]) -> None:
        """Feed a model-based controller one ACK's delivery-rate sample."""
        sample = rs.on_ack(now, delivered, ack, tops, self._rtt.min_rtt)
        cc = self._cc
        lost = cc._recovery_starting  # type: ignore[union-attr]  # this ACK started recovery
        cc.on_rate_sample(sample, rs.delivered, self._pipe(), delivered, now, lost)  # type: ignore[union-attr]

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

    def _take_sack(
        self, blocks: tuple[tuple[int, int], ...], ack: int, tops: list[int] | None = None
    ) -> int:
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

    def _process_text(self, seq: int, payload: bytes | memoryview, fin: int, now: float) -> None:
        """Accept payload (trimmed to the window) and a FIN; in-order bytes go to the application."""
        rcv_nxt = self.rcv_nxt
        plen = len(payload)
        if seq < rcv_nxt:
            skip = rcv_nxt - seq
            if skip >= plen:
                payload = b""
                plen = 0
                if seq + skip > rcv_nxt and not fin:
                    self._ack_now = True
                    return
            else:
                payload = payload[skip:]
                plen -= skip
            seq = rcv_nxt
        edge = self._rcv_adv
        if seq + plen > edge:
            keep = edge - seq
            if keep <= 0:
                self._ack_now = True
                self.stats.out_of_window += 1
                return
            payload = payload[:keep]
            plen = keep
            fin = 0  # the FIN lies beyond the window: not accepted yet
            self.stats.out_of_window += 1
            self._ack_now = True  # tell the sender at once where the window ends
        if seq == rcv_nxt:
            if plen:
                if plen > self._rcv_mss:
                    self._rcv_mss = plen if plen < self.config.mss else self.config.mss
                self._rx += payload
                rcv_nxt += plen
                self.stats.bytes_in += plen
            ooo = self._ooo
            filled = False
            if ooo:
                filled = True
                while True:
                    ready = ooo.pop_ready(rcv_nxt)
                    if ready is None:
                        break
                    end, data = ready
                    self._rx += data
                    self.stats.bytes_in += len(data)
                    rcv_nxt = end
            delivered = rcv_nxt - self.rcv_nxt
            self.rcv_nxt = rcv_nxt
            self._unconsumed += delivered
            if self.config.recv_autotune:
                self._autotune(now)
            if fin or (self._rcv_fin is not None and self._rcv_fin == rcv_nxt):
                self._take_fin(now)
                return
            self._ack_pending += plen
            if (
                filled
                or self._quickack > 0
                or not self.config.delayed_ack
                or self._ack_pending > self._rcv_mss
            ):
                if self._quickack > 0:
                    self._quickack -= 1
                self._ack_now = True
            elif self._delack_at is None:
                self._delack_at = now + self.config.delayed_ack_timeout
            return
        # Out of order: keep it (bounded), ACK at once with SACK blocks so the sender learns of the hole.
        self.stats.ooo_segments += 1
        if plen:
            if self._ooo is None:
                self._ooo = OutOfOrderQueue(self.config.max_ooo_ranges)
            if not self._ooo.insert(seq, payload):
                self.stats.ooo_dropped += 1
        if fin:
            self._rcv_fin = seq + plen
        self._ack_now = True

    def _take_fin(self, now: float) -> None:
        self.rcv_nxt += 1
        self._rcv_fin = None
        self._ack_now = True
        self._push(EofReceived())
        st = self.state
        if st is ESTABLISHED:
            self.state = CLOSE_WAIT
        elif st is FIN_WAIT_1:
            if self._fin_abs is not None and self.snd_una > self._fin_abs:
                self._enter_time_wait(now)
            else:
                self.state = CLOSING
        elif st is FIN_WAIT_2:
            self._enter_time_wait(now)

    def _rcv_rtt_sample(self, ecr: int, now: float) -> None:
        """Receiver-side RTT from the echo of our own timestamp (used by auto-tuning)."""
        elapsed = ((int(now * 1000) + self._ts_offset) - ecr) & MASK
        if elapsed >= HALF:
            return
        r = elapsed / 1000
        cur = self._rcv_rtt
        if cur is None or r < cur:
            self._rcv_rtt = r
        else:
            self._rcv_rtt = cur + (r - cur) * 0.125

    def _autotune(self, now: float) -> None:
        """Grow the receive buffer with the delivery rate (Linux's dynamic right-sizing).

        Once per RTT, the window is set to twice what arrived in the last RTT (plus slack and
        more while the rate is still growing), so a sender is never limited by our window
        while our application keeps up.
        """
        rtt = self._rcv_rtt if self._rcv_rtt is not None else self._rtt.srtt
        if rtt is None:
            rtt = 0.1
        elif rtt < 0.01:
            rtt = 0.01
        if now - self._at_time < rtt:
            return
        copied = self.rcv_nxt - self._at_seq
        space = self._at_space
        rcvwin = 2 * copied + 16 * self._mss
        if space and copied > space:
            rcvwin += 2 * rcvwin * (copied - space) // space
        maxbuf = self.config.recv_buffer
        if not self._ws_ok:
            maxbuf = min(maxbuf, 0xFFFF)
        if rcvwin > self._rcv_buf:
            self._rcv_buf = rcvwin if rcvwin < maxbuf else maxbuf
        if copied > space:
            self._at_space = copied
        self._at_time = now
        self._at_seq = self.rcv_nxt

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
