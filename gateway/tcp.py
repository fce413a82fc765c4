"""Raw TCP flows: the chunks each side sent, in order, for connections no protocol
layer understood (or that the user asked to pass through as TCP)."""

from __future__ import annotations

from typing import ClassVar

from gateway.message_flows import Message, MessageFlow

__all__ = ["TCPMessage", "TCPFlow"]


class TCPMessage(Message):
    """One chunk of data as read from one side; boundaries are the reads', not the sender's."""

    __slots__ = ()


class TCPFlow(MessageFlow):
    """A TCP connection's conversation."""

    type: ClassVar[str] = "tcp"
    message_class = TCPMessage
    messages: list[TCPMessage]
