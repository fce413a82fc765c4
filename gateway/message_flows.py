"""What TCP and UDP flows share: a conversation recorded as a list of messages.

``gateway.tcp`` and ``gateway.udp`` keep mitmproxy's public class names; they differ
only in what a message's boundaries mean, so the state layout and behaviour live here once.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from gateway import flow
from gateway.connection import Client, Server
from gateway.coretypes.serializable import Serializable


class Message(Serializable):
    __slots__ = ("from_client", "content", "timestamp")

    def __init__(self, from_client: bool, content: bytes, timestamp: float | None = None) -> None:
        self.from_client = from_client
        self.content = content
        self.timestamp = time.time() if timestamp is None else timestamp

    def __repr__(self) -> str:
        return f"{'->' if self.from_client else '<-'} {self.content!r}"

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self.get_state() == other.get_state()  # type: ignore[attr-defined]
        return False

    __hash__ = None  # type: ignore[assignment]

    def get_state(self) -> tuple[bool, bytes, float]:
        return self.from_client, self.content, self.timestamp

    def set_state(self, state: Any) -> None:
        self.from_client, self.content, self.timestamp = state

    @classmethod
    def from_state(cls, state: Any) -> Message:
        return cls(*state)


class MessageFlow(flow.Flow):
    """Base of ``TCPFlow`` and ``UDPFlow``; subclasses name their ``message_class``."""

    message_class: ClassVar[type[Message]] = Message
    messages: list[Any]

    def __init__(self, client_conn: Client, server_conn: Server, live: bool = False) -> None:
        super().__init__(client_conn, server_conn, live)
        self.messages = []

    def _init_empty(self) -> None:
        flow.Flow._init_empty(self)
        self.messages = []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} ({len(self.messages)} messages)>"

    def _base_state(self) -> dict[str, Any]:
        state = super()._base_state()
        state["messages"] = [m.get_state() for m in self.messages]
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.messages = [self.message_class.from_state(m) for m in state["messages"]]
