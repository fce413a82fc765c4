"""The flow base class: what every flow type (HTTP, TCP, UDP, DNS) has in common.

A flow is the unit users script against and the unit flow files store.  Flow control
(``intercept``/``resume``/``kill``) is cooperative: the protocol layer that owns a flow
``await flow.wait_for_resume()`` after each hook, and checks ``flow.error`` for a kill.
"""

from __future__ import annotations

import asyncio
import copy
import importlib
import time
import uuid
from typing import Any, ClassVar

from gateway import connection
from gateway.coretypes.serializable import Serializable

STATE_VERSION = 1
"""Layout version of ``Flow.get_state()`` dicts (not of any file format)."""

# Flow types and the module that defines each, so ``Flow.from_state`` can rebuild a
# flow of a type whose module nobody imported yet.
_FLOW_MODULES = {
    "http": "gateway.http",
    "tcp": "gateway.tcp",
    "udp": "gateway.udp",
    "dns": "gateway.dns",
}
_FLOW_TYPES: dict[str, type[Flow]] = {}


class ControlException(Exception):
    """A flow-control request that cannot be honoured (e.g. killing a finished flow)."""


class Error(Serializable):
    """An error that ended a flow: a connection failure, a protocol error, a kill.

    ``msg`` is meant for humans; ``Error.KILLED_MESSAGE`` marks flows killed by the user.
    """

    __slots__ = ("msg", "timestamp")

    KILLED_MESSAGE: ClassVar[str] = "Connection killed."

    def __init__(self, msg: str, timestamp: float | None = None) -> None:
        self.msg = msg
        self.timestamp = time.time() if timestamp is None else timestamp

    def __str__(self) -> str:
        return self.msg

    def __repr__(self) -> str:
        return self.msg

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Error):
            return (self.msg, self.timestamp) == (other.msg, other.timestamp)
        return False

    __hash__ = None  # type: ignore[assignment]

    def get_state(self) -> dict[str, Any]:
        return {"msg": self.msg, "timestamp": self.timestamp}

    def set_state(self, state: dict[str, Any]) -> None:
        self.msg = state["msg"]
        self.timestamp = state["timestamp"]

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Error:
        return cls(state["msg"], state["timestamp"])


class Flow(Serializable):
    """Base of ``HTTPFlow``, ``TCPFlow``, ``UDPFlow`` and ``DNSFlow``."""

    type: ClassVar[str] = "flow"
    """The flow type: ``"http"``, ``"tcp"``, ``"udp"``, ``"dns"``."""

    client_conn: connection.Client
    server_conn: connection.Server
    error: Error | None
    intercepted: bool
    """True while the flow is paused by ``intercept()``."""
    marked: str
    """A marker shown in flow lists; ``""`` means unmarked (any truthy value marks)."""
    is_replay: str | None
    """``"request"`` or ``"response"`` if that part was replayed, else None."""
    live: bool
    """True while the flow is being handled by the proxy (it can still be killed)."""
    timestamp_created: float
    comment: str
    metadata: dict[str, Any]
    """Free-form data for addons; it is saved with the flow, so keep it plain data."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "type" in cls.__dict__:
            _FLOW_TYPES[cls.type] = cls

    def __init__(
        self,
        client_conn: connection.Client,
        server_conn: connection.Server,
        live: bool = False,
    ) -> None:
        self._setup(client_conn, server_conn, live, str(uuid.uuid4()))

    def _setup(self, client_conn: Any, server_conn: Any, live: bool, id: str) -> None:
        self.id = id
        self.client_conn = client_conn
        self.server_conn = server_conn
        self.live = live
        self.timestamp_created = time.time()
        self.error = None
        self.intercepted = False
        self.marked = ""
        self.is_replay = None
        self.comment = ""
        self.metadata = {}
        self._backup: dict[str, Any] | None = None
        self._resume_event: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id[:8]} client={self.client_conn} server={self.server_conn}>"

    # -- state ----------------------------------------------------------------------

    def get_state(self) -> dict[str, Any]:
        state = self._base_state()
        state["backup"] = copy.deepcopy(self._backup)
        return state

    def _base_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "type": self.type,
            "id": self.id,
            "error": self.error.get_state() if self.error else None,
            "client_conn": self.client_conn.get_state(),
            "server_conn": self.server_conn.get_state(),
            "intercepted": self.intercepted,
            "is_replay": self.is_replay,
            "marked": self.marked,
            "metadata": copy.deepcopy(self.metadata),
            "comment": self.comment,
            "timestamp_created": self.timestamp_created,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("type", self.type) != self.type:
            raise ValueError(f"cannot set a {state.get('type')!r} state on a {self.type!r} flow")
        self.id = state["id"]
        self.error = Error.from_state(state["error"]) if state["error"] else None
        self.client_conn = connection.Client.from_state(state["client_conn"])
        self.server_conn = connection.Server.from_state(state["server_conn"])
        self.intercepted = state["intercepted"]
        self.is_replay = state["is_replay"]
        self.marked = state["marked"]
        self.metadata = copy.deepcopy(state["metadata"])
        self.comment = state["comment"]
        self.timestamp_created = state["timestamp_created"]
        backup = state.get("backup")
        self._backup = copy.deepcopy(backup) if backup is not None else None

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Flow:
        """Rebuild a flow; called on ``Flow`` it picks the class from ``state["type"]``."""
        klass: type[Flow] = cls
        if cls is Flow or state.get("type") != cls.type:
            klass = flow_class(state.get("type", ""))
            if not issubclass(klass, cls):
                raise ValueError(f"a {state.get('type')!r} state is not a {cls.__name__}")
        flow = klass.__new__(klass)
        flow._init_empty()
        flow.set_state(state)
        return flow

    def _init_empty(self) -> None:
        """Set every attribute to a neutral value before ``set_state`` fills them in
        (cheaper than ``__init__``: no id is generated)."""
        self._setup(None, None, False, "")

    def copy(self) -> Flow:
        """A copy with a new id that is not live (it is not attached to a connection)."""
        f = super().copy()
        f.live = False
        return f

    # -- backup -----------------------------------------------------------------------

    def modified(self) -> bool:
        """True if the flow changed since ``backup()``."""
        if self._backup is None:
            return False
        return self._backup != self._base_state_for_backup()

    def _base_state_for_backup(self) -> dict[str, Any]:
        state = self.get_state()
        state.pop("backup", None)
        return state

    def backup(self, force: bool = False) -> None:
        """Remember the current state so ``revert()`` can restore it.

        An existing backup is kept unless ``force`` is set: the first backup is the
        original as received.
        """
        if self._backup is None or force:
            self._backup = self._base_state_for_backup()

    def revert(self) -> None:
        """Restore the state saved by ``backup()`` and drop the backup."""
        if self._backup is not None:
            backup = self._backup
            live = self.live
            self.set_state(backup)
            self.live = live
            self._backup = None

    # -- flow control -------------------------------------------------------------------

    @property
    def killable(self) -> bool:
        """True if ``kill()`` can still act on the flow."""
        return self.live and not (self.error is not None and self.error.msg == Error.KILLED_MESSAGE)

    def kill(self) -> None:
        """Kill the flow: the connection is closed and the flow gets ``Error.KILLED_MESSAGE``.

        An intercepted flow is released so the layer holding it sees the kill.
        """
        if not self.killable:
            raise ControlException("Flow is not killable.")
        self.error = Error(Error.KILLED_MESSAGE)
        self.live = False
        if self.intercepted:
            self.intercepted = False
            if self._resume_event is not None:
                self._resume_event.set()

    def intercept(self) -> None:
        """Pause the flow: the layer holding it waits in ``wait_for_resume()``."""
        if self.intercepted:
            return
        self.intercepted = True
        if self._resume_event is not None:
            self._resume_event.clear()

    def resume(self) -> None:
        """Let an intercepted flow continue (may be called from any task of the loop)."""
        if not self.intercepted:
            return
        self.intercepted = False
        if self._resume_event is not None:
            self._resume_event.set()

    async def wait_for_resume(self) -> None:
        """Return at once unless intercepted; otherwise when ``resume()`` or ``kill()`` is called."""
        if not self.intercepted:
            return
        if self._resume_event is None:
            self._resume_event = asyncio.Event()
        # intercept() clears the event, so a flow re-intercepted before this task ran
        # keeps waiting.
        while self.intercepted:
            await self._resume_event.wait()

    @property
    def timestamp_start(self) -> float:
        """When the flow started; subclasses refine this (e.g. the request's start)."""
        return self.timestamp_created


def flow_class(type_name: str) -> type[Flow]:
    """The flow class for a ``type`` key, importing its module on first use."""
    if type_name not in _FLOW_TYPES and type_name in _FLOW_MODULES:
        importlib.import_module(_FLOW_MODULES[type_name])
    try:
        return _FLOW_TYPES[type_name]
    except KeyError:
        raise ValueError(f"unknown flow type: {type_name!r}") from None


__all__ = ["Flow", "Error", "ControlException", "STATE_VERSION", "flow_class"]
