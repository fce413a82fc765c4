"""Events the ``Stack`` hands its owner through ``next_event()``.

Addresses in events are ``(ip text, port)`` pairs, the form ``socket`` uses, because this
is where packets become something an application reasons about; inside the stack they stay
packed bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from netstack.tcp.events import TcpEvent as TcpConnectionEvent

Address = tuple[str, int]


@dataclass(slots=True)
class TcpConnectionRequest:
    """A SYN for a new 4-tuple.  The owner answers with ``accept_tcp(conn_id)``,
    ``refuse_tcp(conn_id)`` (a RST, as a closed port would) or ``drop_tcp(conn_id)``;
    until then retransmitted SYNs are absorbed.  ``dst`` is the original destination."""

    conn_id: int
    src: Address
    dst: Address


@dataclass(slots=True)
class TcpEvent:
    """Something happened on connection ``conn_id`` (see ``netstack.tcp.events``)."""

    conn_id: int
    event: TcpConnectionEvent


@dataclass(slots=True)
class UdpDatagram:
    """A datagram from ``src`` to ``dst``; ``new_flow`` is True for the first one of its
    4-tuple since the flow was last idle."""

    src: Address
    dst: Address
    data: bytes
    new_flow: bool = False


@dataclass(slots=True)
class UdpFlowExpired:
    """No datagram went either way on this 4-tuple for ``udp_idle_timeout`` seconds (or
    the flow table was full and this was the oldest flow)."""

    src: Address
    dst: Address


@dataclass(slots=True)
class IcmpEchoRequest:
    """An echo request the owner decides on (``echo_reply="owner"``): answer it with
    ``Stack.icmp_echo_reply(event)``, e.g. after pinging the real destination."""

    src: str
    dst: str
    ident: int
    seq: int
    data: bytes
    version: int


@dataclass(slots=True)
class IcmpEchoAnswered:
    """The stack answered an echo request itself (for logs and flows; nothing to do)."""

    src: str
    dst: str
    version: int


Event = TcpConnectionRequest | TcpEvent | UdpDatagram | UdpFlowExpired | IcmpEchoRequest | IcmpEchoAnswered
