"""A seeded lossy, slow link between the kernel and netstack.

The kernel here has no netem, so impairment is done in our own process on the packet
path: each direction of the TUN link passes through a ``LossyLink`` that drops,
duplicates, corrupts (one flipped bit, which checksums must catch) and reorders packets at
given rates and delays them.  It is seeded, so a failing run can be replayed.

Delays are kept cheap: packets due in the same millisecond share one ``loop.call_at``.
Reordering holds a packet back by ``reorder_delay`` so the ones behind it overtake.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class Impairment:
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.0
    """Seconds added to every packet (one way)."""
    jitter: float = 0.0
    reorder_delay: float = 0.005
    rate: float = 0.0
    """Bytes per second (0: unlimited): packets queue behind each other like on a slow link."""
    queue_limit: int = 1 << 20
    """Bytes queued at most behind a rate limit before drop-tail."""
    seed: int = 0

    @property
    def passthrough(self) -> bool:
        return not (
            self.drop
            or self.duplicate
            or self.reorder
            or self.corrupt
            or self.delay
            or self.jitter
            or self.rate
        )


class LossyLink:
    def __init__(
        self, impairment: Impairment, deliver: Callable[[list[bytes]], None], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.imp = impairment
        self.deliver = deliver
        self.loop = loop
        self.rng = random.Random(impairment.seed)
        self._due: dict[int, list[bytes]] = {}
        self._busy_until = 0.0
        self.passed = 0
        self.dropped = 0
        self.duplicated = 0
        self.corrupted = 0
        self.reordered = 0

    def push(self, packets: list[bytes]) -> None:
        imp = self.imp
        if imp.passthrough:
            self.passed += len(packets)
            self.deliver(packets)
            return
        rng = self.rng
        now = self.loop.time()
        for pkt in packets:
            if imp.drop and rng.random() < imp.drop:
                self.dropped += 1
                continue
            if imp.corrupt and rng.random() < imp.corrupt:
                b = bytearray(pkt)
                i = rng.randrange(len(b))
                b[i] ^= 1 << rng.randrange(8)
                pkt = bytes(b)
                self.corrupted += 1
            copies = 1
            if imp.duplicate and rng.random() < imp.duplicate:
                copies = 2
                self.duplicated += 1
            at = now + imp.delay
            if imp.rate:
                start = max(now, self._busy_until)
                if (start - now) * imp.rate > imp.queue_limit:
                    self.dropped += 1
                    continue
                self._busy_until = start + len(pkt) / imp.rate
                at = self._busy_until + imp.delay
            if imp.jitter:
                at += rng.random() * imp.jitter
            if imp.reorder and rng.random() < imp.reorder:
                at += imp.reorder_delay
                self.reordered += 1
            for _ in range(copies):
                self._schedule(at, pkt)
            self.passed += 1

    def _schedule(self, at: float, pkt: bytes) -> None:
        slot = int(at * 1000) + 1
        bucket = self._due.get(slot)
        if bucket is None:
            self._due[slot] = [pkt]
            self.loop.call_at(slot / 1000, self._fire, slot)
        else:
            bucket.append(pkt)

    def _fire(self, slot: int) -> None:
        bucket = self._due.pop(slot, None)
        if bucket:
            self.deliver(bucket)

    @property
    def in_flight(self) -> int:
        return sum(len(b) for b in self._due.values())
