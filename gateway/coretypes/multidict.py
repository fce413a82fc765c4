"""Ordered multi-dicts: one key may appear several times and order matters.

HTTP headers, query strings, cookies and forms all repeat keys and users expect the
wire order to survive editing.  The data is kept as a tuple of ``(key, value)`` pairs
(``fields``); the mapping interface is a view over it.  ``MultiDictView`` is the same
interface over a getter/setter pair, so ``request.query["a"] = "b"`` writes straight back
into the request's path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableMapping, Sequence
from typing import Any, Generic, TypeVar

from gateway.coretypes.serializable import Serializable

KT = TypeVar("KT")
VT = TypeVar("VT")


class _MultiDict(MutableMapping[KT, VT], Serializable, Generic[KT, VT]):
    """Mapping behaviour shared by ``MultiDict``, ``MultiDictView`` and ``Headers``.

    Subclasses provide ``fields`` (a tuple of 2-tuples) and may override ``_kconv``
    (key normalisation, e.g. case folding) and ``_reduce_values`` (what ``d[key]`` returns
    when the key repeats).
    """

    __slots__ = ()

    fields: tuple[tuple[KT, VT], ...]

    def __repr__(self) -> str:
        return f"{type(self).__name__}[{', '.join(repr(f) for f in self.fields)}]"

    @staticmethod
    def _kconv(key: Any) -> Any:
        return key

    @staticmethod
    def _reduce_values(values: list[Any]) -> Any:
        return values[0]

    def __getitem__(self, key: KT) -> VT:
        values = self.get_all(key)
        if not values:
            raise KeyError(key)
        return self._reduce_values(values)

    def __setitem__(self, key: KT, value: VT) -> None:
        self.set_all(key, [value])

    def __delitem__(self, key: KT) -> None:
        if key not in self:
            raise KeyError(key)
        k = self._kconv(key)
        self.fields = tuple(f for f in self.fields if self._kconv(f[0]) != k)

    def __contains__(self, key: object) -> bool:
        k = self._kconv(key)
        return any(self._kconv(f[0]) == k for f in self.fields)

    def __iter__(self) -> Iterator[KT]:
        seen = set()
        for key, _ in self.fields:
            k = self._kconv(key)
            if k not in seen:
                seen.add(k)
                yield key

    def __len__(self) -> int:
        return len({self._kconv(key) for key, _ in self.fields})

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _MultiDict):
            return self.fields == other.fields
        return False

    __hash__ = None  # type: ignore[assignment]  # mutable

    def get_all(self, key: KT) -> list[VT]:
        """Every value stored for ``key``, in order; an empty list if there is none."""
        k = self._kconv(key)
        return [value for key_, value in self.fields if self._kconv(key_) == k]

    def set_all(self, key: KT, values: Iterable[VT]) -> None:
        """Replace all values of ``key``, keeping the positions of existing entries.

        Surplus old entries are removed, surplus new values are appended at the end.
        """
        values = list(values)
        k = self._kconv(key)
        new_fields: list[tuple[Any, Any]] = []
        pos = 0
        for field in self.fields:
            if self._kconv(field[0]) == k:
                if pos < len(values):
                    new_fields.append((field[0], values[pos]))
                    pos += 1
            else:
                new_fields.append(field)
        for value in values[pos:]:
            new_fields.append((key, value))
        self.fields = tuple(new_fields)

    def add(self, key: KT, value: VT) -> None:
        """Append a value for ``key`` at the end, even if the key exists."""
        self.insert(len(self.fields), key, value)

    def insert(self, index: int, key: KT, value: VT) -> None:
        """Insert ``(key, value)`` at position ``index`` of ``fields``."""
        fields = list(self.fields)
        fields.insert(index, (key, value))
        self.fields = tuple(fields)

    def keys(self, multi: bool = False):  # type: ignore[override]
        """Keys; with ``multi=True`` a key appears once per value."""
        return (k for k, _ in self.items(multi))

    def values(self, multi: bool = False):  # type: ignore[override]
        """Values; by default one (reduced) value per key, all of them with ``multi=True``."""
        return (v for _, v in self.items(multi))

    def items(self, multi: bool = False):  # type: ignore[override]
        """``(key, value)`` pairs; every stored pair in order with ``multi=True``."""
        if multi:
            return self.fields
        return [(key, self[key]) for key in self]


class MultiDict(_MultiDict[KT, VT]):
    """A concrete, serializable multi-dict holding its own fields."""

    __slots__ = ("fields",)

    def __init__(self, fields: Iterable[tuple[KT, VT]] = ()) -> None:
        if isinstance(fields, _MultiDict):
            fields = fields.fields  # iterating a mapping would give its keys only
        self.fields = tuple(tuple(i) for i in fields)  # type: ignore[misc]

    def get_state(self) -> tuple[tuple[KT, VT], ...]:
        return self.fields

    def set_state(self, state: Sequence[Sequence[Any]]) -> None:
        self.fields = tuple(tuple(x) for x in state)  # type: ignore[misc]

    @classmethod
    def from_state(cls, state: Sequence[Sequence[Any]]) -> MultiDict:
        return cls(state)  # type: ignore[arg-type]


class MultiDictView(_MultiDict[KT, VT]):
    """A multi-dict whose fields live elsewhere: reads call ``getter``, writes ``setter``.

    ``request.query``, ``.cookies`` and the forms are such views, so edits go straight
    back into the underlying message.
    """

    __slots__ = ("_getter", "_setter")

    def __init__(
        self,
        getter: Callable[[], tuple[tuple[KT, VT], ...]],
        setter: Callable[[tuple[tuple[KT, VT], ...]], None],
    ) -> None:
        self._getter = getter
        self._setter = setter

    @property  # type: ignore[override]
    def fields(self) -> tuple[tuple[KT, VT], ...]:
        return tuple(self._getter())

    @fields.setter
    def fields(self, value: Iterable[tuple[KT, VT]]) -> None:
        self._setter(tuple(value))

    def copy(self) -> MultiDict[KT, VT]:  # type: ignore[override]
        """A detached ``MultiDict`` with the current fields."""
        return MultiDict(self.fields)

    def get_state(self) -> tuple[tuple[KT, VT], ...]:
        return self.fields

    def set_state(self, state: Sequence[Sequence[Any]]) -> None:
        self.fields = tuple(tuple(x) for x in state)  # type: ignore[misc]

    @classmethod
    def from_state(cls, state: Any) -> MultiDictView:
        raise NotImplementedError("a MultiDictView is a view; build a MultiDict instead")
