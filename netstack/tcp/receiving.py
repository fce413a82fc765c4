"""The receiving half of a ``TcpConnection``: accepting payload into the window (in order to
the application, out of order into the queue with SACK), the FIN, and receive-buffer
auto-tuning from the measured delivery rate.

A mixin of ``TcpConnection`` (its state lives there, in ``__slots__``).
"""

from __future__ import annotations

from .events import EofReceived
from .recvbuffer import OutOfOrderQueue
from .state import CLOSE_WAIT, CLOSING, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, HALF, MASK


class Receiving:
    __slots__ = ()

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
