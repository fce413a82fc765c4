"""Sliding anti-replay window for transport counters (RFC 6479, as wireguard-go does it).

The window is a ring of 64-bit words.  Moving forward clears whole words instead of
shifting a bitmap, so a far-future counter costs at most one pass over the ring.  The
device calls ``check`` before decrypting (cheap rejection of old or duplicate counters)
and ``update`` only after the AEAD has authenticated the packet, so a forged packet with
a huge counter cannot push the window forward and make genuine packets look stale.
"""

from __future__ import annotations

WORD_BITS_LOG = 6
WORD_BITS = 1 << WORD_BITS_LOG
BITS_TOTAL = 8192
WINDOW_SIZE = BITS_TOTAL - WORD_BITS
"""How far behind the greatest counter seen a packet may still be accepted: 8128."""
WORDS = BITS_TOTAL // WORD_BITS


class ReplayWindow:
    __slots__ = ("greatest", "words")

    def __init__(self) -> None:
        self.greatest = 0
        self.words = [0] * WORDS

    def check(self, counter: int, limit: int) -> bool:
        """Would ``counter`` be accepted?  Changes nothing."""
        if counter >= limit:
            return False
        if counter > self.greatest:
            return True
        if self.greatest - counter > WINDOW_SIZE:
            return False
        return not (self.words[(counter >> WORD_BITS_LOG) % WORDS] >> (counter & (WORD_BITS - 1))) & 1

    def update(self, counter: int, limit: int) -> bool:
        """Accept ``counter`` if it is new and in the window, and remember it."""
        if counter >= limit:
            return False
        index = counter >> WORD_BITS_LOG
        words = self.words
        if counter > self.greatest:
            current = self.greatest >> WORD_BITS_LOG
            for i in range(1, min(index - current, WORDS) + 1):
                words[(current + i) % WORDS] = 0
            self.greatest = counter
        elif self.greatest - counter > WINDOW_SIZE:
            return False
        index %= WORDS
        bit = 1 << (counter & (WORD_BITS - 1))
        old = words[index]
        if old & bit:
            return False
        words[index] = old | bit
        return True
