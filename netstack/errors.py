"""The one exception netstack's parsers raise.

A parser that meets bad input raises ``PacketError`` with a short, stable ``reason``
(``"ipv4.bad_checksum"``); the stack catches it, counts the reason in its drop counters and
carries on.  When the RFCs ask for an ICMP error in reply (parameter problem, protocol
unreachable), ``icmp`` holds (type, code, pointer-or-mtu) for the stack to answer with.
"""

from __future__ import annotations


class PacketError(Exception):
    __slots__ = ("reason", "icmp")

    def __init__(self, reason: str, icmp: tuple[int, int, int] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.icmp = icmp
