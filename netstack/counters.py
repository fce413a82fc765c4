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

NOT_DROPS = frozenset(
    {
        # an answer withheld about a packet already counted under its own drop reason
        "icmp.error_suppressed",
        "icmp6.error_suppressed",
        "icmp.rate_limited",
        "tcp.rst_rate_limited",
        # state given up, not a packet
        "tcp.time_wait_evicted",
        "udp.flow_evicted",
        # a SYN that reuses a TIME_WAIT 4-tuple goes on to a new connection
        "tcp.time_wait_reused",
    }
)
"""Keys that are neither traffic (``rx.``/``tx.``) nor a dropped packet, so that
``drops()`` counts each dropped packet exactly once."""


class Counters(Counter[str]):
    def drops(self) -> dict[str, int]:
        """Only the drop reasons: not ``rx.``/``tx.`` traffic, not the ``NOT_DROPS`` keys."""
        return {
            k: v for k, v in self.items() if v and not k.startswith(("rx.", "tx.")) and k not in NOT_DROPS
        }

    def total_drops(self) -> int:
        return sum(self.drops().values())
