"""UDP flows: the datagrams of one client address pair, both ways, for traffic no
protocol layer (DNS, QUIC) claimed."""

from __future__ import annotations

from typing import ClassVar

from gateway.message_flows import Message, MessageFlow

__all__ = ["UDPMessage", "UDPFlow"]


class UDPMessage(Message):
    """One datagram; boundaries are the sender's."""

    __slots__ = ()


class UDPFlow(MessageFlow):
    """A UDP "connection": the datagrams between one client address and one server."""

    type: ClassVar[str] = "udp"
    message_class = UDPMessage
    messages: list[UDPMessage]
