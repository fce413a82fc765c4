"""The state protocol every flow-model object speaks.

Flow files, ``copy()`` and ``backup()/revert()`` are all built on one idea: an object can be
turned into plain data (dicts, lists, tuples, str, bytes, numbers, bool, None) and back.
Keeping that data plain means the file format is independent of our classes.
"""

from __future__ import annotations

import abc
import uuid
from typing import Any, Self


class Serializable(metaclass=abc.ABCMeta):
    __slots__ = ()

    @classmethod
    @abc.abstractmethod
    def from_state(cls, state: Any) -> Self:
        """Build a new object from a state produced by ``get_state``."""

    @abc.abstractmethod
    def get_state(self) -> Any:
        """A fresh, plain-data snapshot; mutating it must never affect the object."""

    @abc.abstractmethod
    def set_state(self, state: Any) -> None:
        """Make this object equal to ``state``, in place."""

    def copy(self) -> Self:
        """An independent copy; objects with an ``id`` get a new one, like mitmproxy's."""
        state = self.get_state()
        if isinstance(state, dict) and "id" in state:
            state["id"] = str(uuid.uuid4())
        return self.from_state(state)
