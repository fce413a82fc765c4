"""HTTP headers: a case-insensitive multi-dict over the raw header bytes, as mitmproxy's ``Headers``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from gateway.coretypes import multidict

_ENC = ("utf-8", "surrogateescape")


def _always_bytes(x: str | bytes) -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode(*_ENC)
    raise TypeError(f"expected str or bytes, not {type(x).__name__}")


def _native(x: bytes) -> str:
    return x.decode(*_ENC)


class Headers(multidict.MultiDict[str, str]):
    """HTTP headers: ordered, case-insensitive, repeatable, stored as raw bytes.

    Reading a repeated header joins its values with ``", "`` (``get_all`` gives them
    separately).  Names and values are bytes in ``fields`` and str everywhere else,
    decoded as UTF-8 with surrogate escapes so any byte survives a round trip.

    >>> h = Headers(host="example.com", content_type="text/html")
    >>> h["Content-Type"]
    'text/html'
    """

    __slots__ = ()

    fields: tuple[tuple[bytes, bytes], ...]  # type: ignore[assignment]

    def __init__(self, fields: Iterable[tuple[bytes, bytes]] = (), **headers: str | bytes) -> None:
        super().__init__(fields)  # type: ignore[arg-type]
        for key, value in self.fields:
            if not isinstance(key, bytes) or not isinstance(value, bytes):
                raise TypeError("Header fields must be bytes.")
        # Keyword arguments: content_type="..." -> Content-Type
        for name, value in headers.items():
            self[name.replace("_", "-")] = value  # type: ignore[assignment]

    @staticmethod
    def _kconv(key: Any) -> Any:
        return key.lower()

    @staticmethod
    def _reduce_values(values: list[str]) -> str:
        return ", ".join(values)

    def __bytes__(self) -> bytes:
        """The header block as sent in HTTP/1 (each line ending in CRLF, no blank line)."""
        if not self.fields:
            return b""
        return b"".join(k + b": " + v + b"\r\n" for k, v in self.fields)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str | bytes):
            return False
        k = _always_bytes(key).lower()
        return any(f[0].lower() == k for f in self.fields)

    def __delitem__(self, key: str | bytes) -> None:  # type: ignore[override]
        super().__delitem__(_always_bytes(key))  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        for key in super().__iter__():
            yield _native(key)  # type: ignore[arg-type]

    def get_all(self, name: str | bytes) -> list[str]:  # type: ignore[override]
        """Every value of header ``name``, in order, without joining."""
        k = _always_bytes(name).lower()
        return [_native(v) for key, v in self.fields if key.lower() == k]

    def set_all(self, name: str | bytes, values: Iterable[str | bytes]) -> None:  # type: ignore[override]
        """Replace all values of header ``name`` (positions of existing lines are kept)."""
        super().set_all(_always_bytes(name), [_always_bytes(v) for v in values])  # type: ignore[arg-type]

    def insert(self, index: int, key: str | bytes, value: str | bytes) -> None:  # type: ignore[override]
        super().insert(index, _always_bytes(key), _always_bytes(value))  # type: ignore[arg-type]

    def items(self, multi: bool = False):  # type: ignore[override]
        """``(name, value)`` str pairs; with ``multi=True`` one pair per header line."""
        if multi:
            return [(_native(k), _native(v)) for k, v in self.fields]
        return super().items()

    @classmethod
    def from_state(cls, state: Sequence[Sequence[bytes]]) -> Headers:
        h = cls.__new__(cls)
        fields = tuple((k, v) for k, v in state)
        for k, v in fields:
            if type(k) is not bytes or type(v) is not bytes:
                raise TypeError("Header fields must be bytes.")
        h.fields = fields
        return h


def _headers(value: Headers | Iterable[tuple[bytes, bytes]] | Mapping | None) -> Headers:
    if isinstance(value, Headers):
        return value
    if value is None:
        return Headers()
    if isinstance(value, Mapping):
        return Headers([(_always_bytes(k), _always_bytes(v)) for k, v in value.items()])
    if isinstance(value, Iterable):
        return Headers(value)  # type: ignore[arg-type]
    raise TypeError(f"Expected headers to be an iterable or dict, but is {type(value).__name__}.")
