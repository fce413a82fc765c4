"""WebSocket messages and the per-connection ``WebSocketData`` an ``HTTPFlow`` carries
after an upgrade.

Messages are whole (defragmented) messages, as addons want them; ``drop()`` keeps a
message from being forwarded while still recording it.
"""

from __future__ import annotations

import time
from typing import Any

from wsproto.frame_protocol import Opcode

from gateway.coretypes.serializable import Serializable

__all__ = ["WebSocketMessage", "WebSocketData", "Opcode"]


class WebSocketMessage(Serializable):
    """One complete WebSocket message (TEXT or BINARY; control frames are not recorded)."""

    __slots__ = ("type", "from_client", "content", "timestamp", "dropped", "injected")

    type: Opcode
    """``Opcode.TEXT`` or ``Opcode.BINARY``."""
    from_client: bool
    content: bytes
    """The message payload; for TEXT messages the UTF-8 encoded text."""
    timestamp: float
    dropped: bool
    """True if an addon dropped the message: it was recorded but not forwarded."""
    injected: bool
    """True if an addon injected the message rather than a peer sending it."""

    def __init__(
        self,
        type: int | Opcode,
        from_client: bool,
        content: bytes,
        timestamp: float | None = None,
        dropped: bool = False,
        injected: bool = False,
    ) -> None:
        self.type = Opcode(type)
        self.from_client = from_client
        self.content = content
        self.timestamp = time.time() if timestamp is None else timestamp
        self.dropped = dropped
        self.injected = injected

    def __repr__(self) -> str:
        if self.type == Opcode.TEXT:
            return repr(self.content.decode(errors="replace"))
        return repr(self.content)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WebSocketMessage):
            return self.get_state() == other.get_state()
        return False

    __hash__ = None  # type: ignore[assignment]

    @property
    def is_text(self) -> bool:
        return self.type == Opcode.TEXT

    def drop(self) -> None:
        """Do not forward this message to the other side."""
        self.dropped = True

    def kill(self) -> None:
        """Old name of ``drop()``."""
        self.drop()

    @property
    def text(self) -> str:
        """The message as text; only TEXT messages have one (``AttributeError`` otherwise)."""
        if self.type != Opcode.TEXT:
            raise AttributeError(f"{self.type.name.title()} WebSocket frames do not have a 'text' attribute.")
        return self.content.decode()

    @text.setter
    def text(self, value: str) -> None:
        if self.type != Opcode.TEXT:
            raise AttributeError(f"{self.type.name.title()} WebSocket frames do not have a 'text' attribute.")
        self.content = value.encode()

    def get_state(self) -> tuple[int, bool, bytes, float, bool, bool]:
        return int(self.type), self.from_client, self.content, self.timestamp, self.dropped, self.injected

    def set_state(self, state: Any) -> None:
        typ, self.from_client, self.content, self.timestamp, self.dropped, self.injected = state
        self.type = Opcode(typ)

    @classmethod
    def from_state(cls, state: Any) -> WebSocketMessage:
        return cls(*state)


class WebSocketData(Serializable):
    """The WebSocket side of an upgraded ``HTTPFlow``: messages and how it closed."""

    __slots__ = ("messages", "closed_by_client", "close_code", "close_reason", "timestamp_end")

    def __init__(
        self,
        messages: list[WebSocketMessage] | None = None,
        closed_by_client: bool | None = None,
        close_code: int | None = None,
        close_reason: str | None = None,
        timestamp_end: float | None = None,
    ) -> None:
        self.messages: list[WebSocketMessage] = [] if messages is None else messages
        self.closed_by_client = closed_by_client
        """True if the client sent the first Close frame (or disconnected); None while open."""
        self.close_code = close_code
        """The close code (1000 normal, 1006 abnormal...), None while open."""
        self.close_reason = close_reason
        self.timestamp_end = timestamp_end

    def __repr__(self) -> str:
        return f"<WebSocketData ({len(self.messages)} messages)>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WebSocketData):
            return self.get_state() == other.get_state()
        return False

    __hash__ = None  # type: ignore[assignment]

    def get_state(self) -> dict[str, Any]:
        return {
            "messages": [m.get_state() for m in self.messages],
            "closed_by_client": self.closed_by_client,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "timestamp_end": self.timestamp_end,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.messages = [WebSocketMessage.from_state(m) for m in state["messages"]]
        self.closed_by_client = state["closed_by_client"]
        self.close_code = state["close_code"]
        self.close_reason = state["close_reason"]
        self.timestamp_end = state["timestamp_end"]

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> WebSocketData:
        data = cls()
        data.set_state(state)
        return data
