"""Events a ``TcpConnection`` hands to its owner through ``next_event()``."""

from __future__ import annotations

from dataclasses import dataclass


class TcpEvent:
    """Base class of everything ``TcpConnection.next_event()`` returns."""

    __slots__ = ()


@dataclass(slots=True)
class Connected(TcpEvent):
    """The three-way handshake completed (ESTABLISHED)."""


@dataclass(slots=True)
class DataReceived(TcpEvent):
    """In-order bytes from the peer.  Call ``consumed(len(data))`` once the application took them."""

    data: bytes


@dataclass(slots=True)
class EofReceived(TcpEvent):
    """The peer sent FIN: no more data will arrive (we may still send)."""


@dataclass(slots=True)
class SendSpaceAvailable(TcpEvent):
    """The send buffer drained below its low-water mark after being full."""


@dataclass(slots=True)
class Closed(TcpEvent):
    """The connection is over; ``reason`` is one of "closed", "reset", "timeout", "aborted", "refused"."""

    reason: str
