"""The timers of the paper's section 6, per peer, driven by the time the caller passes in.

Each timer is just a deadline (or None).  Protocol events (data sent, data received, a
handshake started or finished, ...) set or clear deadlines, exactly where wireguard-go's
timers.go arms and stops its timers; ``due(now)`` tells the device which ones expired.
Nothing sleeps, so tests can drive hours of protocol time in microseconds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gateway.links.wireguard import constants as c


@dataclass(frozen=True)
class TimerConfig:
    """Protocol limits; the defaults are the paper's.  Tests and the lab shorten them."""

    rekey_after_messages: int = c.REKEY_AFTER_MESSAGES
    reject_after_messages: int = c.REJECT_AFTER_MESSAGES
    rekey_after_time: float = c.REKEY_AFTER_TIME
    reject_after_time: float = c.REJECT_AFTER_TIME
    rekey_attempt_time: float = c.REKEY_ATTEMPT_TIME
    rekey_timeout: float = c.REKEY_TIMEOUT
    keepalive_timeout: float = c.KEEPALIVE_TIMEOUT
    cookie_refresh_time: float = c.COOKIE_REFRESH_TIME
    jitter_max: float = c.REKEY_TIMEOUT_JITTER_MAX
    handshake_initiation_rate: float = c.HANDSHAKE_INITIATION_RATE

    @property
    def max_handshake_attempts(self) -> int:
        return int(self.rekey_attempt_time / self.rekey_timeout)


RETRANSMIT_HANDSHAKE = "retransmit_handshake"
SEND_KEEPALIVE = "send_keepalive"
NEW_HANDSHAKE = "new_handshake"
ZERO_KEY_MATERIAL = "zero_key_material"
PERSISTENT_KEEPALIVE = "persistent_keepalive"
ALL = (RETRANSMIT_HANDSHAKE, SEND_KEEPALIVE, NEW_HANDSHAKE, ZERO_KEY_MATERIAL, PERSISTENT_KEEPALIVE)


class Timers:
    __slots__ = ("config", "rng", "deadlines", "persistent_keepalive", "handshake_attempts",
                 "need_another_keepalive", "sent_last_minute_handshake")

    def __init__(self, config: TimerConfig, rng: random.Random, persistent_keepalive: float = 0.0) -> None:
        self.config = config
        self.rng = rng
        self.deadlines: dict[str, float] = {}
        self.persistent_keepalive = persistent_keepalive
        self.handshake_attempts = 0
        self.need_another_keepalive = False
        self.sent_last_minute_handshake = False

    def _jitter(self) -> float:
        return self.rng.uniform(0.0, self.config.jitter_max)

    def next_deadline(self) -> float | None:
        return min(self.deadlines.values()) if self.deadlines else None

    def due(self, now: float) -> list[str]:
        """Expired timers in a fixed order, removed from the schedule."""
        fired = [name for name in ALL if self.deadlines.get(name, float("inf")) <= now]
        for name in fired:
            del self.deadlines[name]
        return fired

    def pending(self, name: str) -> bool:
        return name in self.deadlines

    def stop_all(self) -> None:
        self.deadlines.clear()

    # Events, named after where they happen (wireguard-go's timers.go uses the same points).
    def data_sent(self, now: float) -> None:
        if NEW_HANDSHAKE not in self.deadlines:
            self.deadlines[NEW_HANDSHAKE] = (now + self.config.keepalive_timeout + self.config.rekey_timeout
                                             + self._jitter())

    def data_received(self, now: float) -> None:
        if SEND_KEEPALIVE not in self.deadlines:
            self.deadlines[SEND_KEEPALIVE] = now + self.config.keepalive_timeout
        else:
            self.need_another_keepalive = True

    def any_authenticated_packet_sent(self) -> None:
        self.deadlines.pop(SEND_KEEPALIVE, None)

    def any_authenticated_packet_received(self) -> None:
        self.deadlines.pop(NEW_HANDSHAKE, None)

    def handshake_initiated(self, now: float) -> None:
        self.deadlines[RETRANSMIT_HANDSHAKE] = now + self.config.rekey_timeout + self._jitter()

    def handshake_complete(self) -> None:
        self.deadlines.pop(RETRANSMIT_HANDSHAKE, None)
        self.handshake_attempts = 0
        self.sent_last_minute_handshake = False

    def session_derived(self, now: float) -> None:
        self.deadlines[ZERO_KEY_MATERIAL] = now + self.config.reject_after_time * c.ZERO_KEY_MATERIAL_FACTOR

    def any_authenticated_packet_traversal(self, now: float) -> None:
        if self.persistent_keepalive > 0:
            self.deadlines[PERSISTENT_KEEPALIVE] = now + self.persistent_keepalive

    def keepalive_sent_again(self, now: float) -> None:
        """After the keepalive timer fired: arm it once more if data arrived meanwhile."""
        if self.need_another_keepalive:
            self.need_another_keepalive = False
            self.deadlines[SEND_KEEPALIVE] = now + self.config.keepalive_timeout

    def retry_handshake_later(self, now: float) -> None:
        self.deadlines[RETRANSMIT_HANDSHAKE] = now + self.config.rekey_timeout + self._jitter()

    def schedule_zeroing(self, now: float) -> None:
        if ZERO_KEY_MATERIAL not in self.deadlines:
            self.deadlines[ZERO_KEY_MATERIAL] = now + self.config.reject_after_time * c.ZERO_KEY_MATERIAL_FACTOR
