"""Counters for everything the stack drops, and why.

Bad input never raises out of the stack: it is dropped and counted here under a short,
dotted key (``"ipv4.bad_checksum"``, ``"tcp.syn_flood"``, ``"frag.timeout"``), so an
operator can see what arrives broken and a test can assert the exact reason.  Keys under
``rx.``/``tx.`` count traffic that was handled, not dropped.

A ``collections.Counter`` is used because a missing key reads as 0 and incrementing is
one dict operation on the hot path.
"""

from __future__ import annotations

from collections import Counter


class Counters(Counter[str]):
    def drops(self) -> dict[str, int]:
        """Only the drop reasons (everything that is not an ``rx.``/``tx.`` traffic count)."""
        return {k: v for k, v in self.items() if v and not k.startswith(("rx.", "tx."))}

    def total_drops(self) -> int:
        return sum(self.drops().values())
