"""``HTTPFlow``: a request, its response and the WebSocket conversation if it upgraded."""

from __future__ import annotations

from typing import Any, ClassVar

from gateway import flow
from gateway.connection import Client, Server
from gateway.http.request import Request
from gateway.http.response import Response
from gateway.websocket import WebSocketData


class HTTPFlow(flow.Flow):
    """An HTTP request/response pair, plus the WebSocket conversation if it upgraded."""

    type: ClassVar[str] = "http"

    request: Request
    response: Response | None
    websocket: WebSocketData | None
    """The WebSocket messages, if this request was upgraded to one."""

    def __init__(self, client_conn: Client, server_conn: Server, live: bool = False) -> None:
        super().__init__(client_conn, server_conn, live)
        self.request = None  # type: ignore[assignment]
        self.response = None
        self.websocket = None

    def _init_empty(self) -> None:
        flow.Flow._init_empty(self)
        self.request = None
        self.response = None
        self.websocket = None

    def __repr__(self) -> str:
        s = "<HTTPFlow"
        for a in ("request", "response", "websocket", "error", "client_conn", "server_conn"):
            if getattr(self, a, False):
                s += f"\r\n  {a} = {{flow.{a}}}"
        s += ">"
        return s.format(flow=self)

    @property
    def timestamp_start(self) -> float:
        """When the request started."""
        return self.request.timestamp_start if self.request is not None else self.timestamp_created

    def _base_state(self) -> dict[str, Any]:
        state = super()._base_state()
        state["request"] = self.request.get_state() if self.request is not None else None
        state["response"] = self.response.get_state() if self.response is not None else None
        state["websocket"] = self.websocket.get_state() if self.websocket is not None else None
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.request = Request.from_state(state["request"]) if state["request"] is not None else None  # type: ignore
        self.response = Response.from_state(state["response"]) if state["response"] is not None else None  # type: ignore
        ws = state.get("websocket")
        self.websocket = WebSocketData.from_state(ws) if ws is not None else None

    def copy(self) -> HTTPFlow:
        return super().copy()  # type: ignore[return-value]
