"""Content-Encoding (gzip, deflate, br, zstd) and text codecs behind one pair of calls.

``decode(data, "gzip")`` decompresses, ``decode(data, "utf-8")`` gives text, as
mitmproxy's ``net.encoding`` does, so message code can treat both the same way.  Every
failure is a ``ValueError`` (never zlib/brotli/zstd's own exception types), which is what
``Message.get_content(strict=...)`` relies on.  Bytes-to-bytes codecs such as ``base64``
or ``zlib_codec`` are refused: a peer must not be able to make us run them by naming
them in a header.
"""

from __future__ import annotations

import codecs
import gzip
import zlib
from collections.abc import Callable
from io import BytesIO
from typing import overload

import brotli
import zstandard

__all__ = ["decode", "encode", "CONTENT_ENCODINGS"]


def _identity(data: bytes) -> bytes:
    return data


def _decode_gzip(data: bytes) -> bytes:
    if not data:
        return b""  # e.g. a HEAD response that announces gzip
    return gzip.decompress(data)


def _encode_gzip(data: bytes) -> bytes:
    # mtime=0 keeps the output deterministic, which makes re-encoding idempotent.
    return gzip.compress(data, mtime=0)


def _decode_deflate(data: bytes) -> bytes:
    if not data:
        return b""
    # "deflate" is specified as zlib-wrapped, but many servers send raw deflate.
    try:
        return zlib.decompress(data)
    except zlib.error:
        return zlib.decompress(data, -zlib.MAX_WBITS)


def _decode_brotli(data: bytes) -> bytes:
    if not data:
        return b""
    return brotli.decompress(data)


def _decode_zstd(data: bytes) -> bytes:
    if not data:
        return b""
    # Frames written by streaming encoders carry no content size, and a body may hold
    # several frames: a stream reader handles both.
    reader = zstandard.ZstdDecompressor().stream_reader(BytesIO(data), read_across_frames=True)
    return reader.read()


def _encode_zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "identity": _identity,
    "none": _identity,
    "gzip": _decode_gzip,
    "x-gzip": _decode_gzip,
    "deflate": _decode_deflate,
    "br": _decode_brotli,
    "zstd": _decode_zstd,
}
_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "identity": _identity,
    "none": _identity,
    "gzip": _encode_gzip,
    "x-gzip": _encode_gzip,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": _encode_zstd,
}
CONTENT_ENCODINGS = frozenset(_DECODERS)


def _codings(encoding: str) -> list[str]:
    """``"gzip, br"`` -> ``["gzip", "br"]`` (RFC 9110: listed in the order applied)."""
    return [c.strip() for c in encoding.lower().split(",") if c.strip()]


def _text_codec(encoding: str) -> codecs.CodecInfo:
    try:
        info = codecs.lookup(encoding)
    except LookupError as e:
        raise ValueError(f"unknown encoding {encoding!r}") from e
    if not getattr(info, "_is_text_encoding", True):
        raise ValueError(f"{encoding!r} is not a text encoding")
    return info


@overload
def decode(encoded: None, encoding: str, errors: str = "strict") -> None: ...
@overload
def decode(encoded: bytes, encoding: str, errors: str = "strict") -> bytes | str: ...
@overload
def decode(encoded: str, encoding: str, errors: str = "strict") -> str: ...


def decode(encoded: bytes | str | None, encoding: str, errors: str = "strict") -> bytes | str | None:
    """Undo a Content-Encoding (bytes -> bytes) or decode text (bytes -> str).

    Raises ``ValueError`` if the data is not valid for the encoding or the encoding is
    unknown, ``TypeError`` for a non-bytes input to a content coding.
    """
    if encoded is None:
        return None
    codings = _codings(encoding)
    if codings and all(c in _DECODERS for c in codings):
        if not isinstance(encoded, bytes | bytearray | memoryview):
            raise TypeError(f"content codings apply to bytes, not {type(encoded).__name__}")
        data = bytes(encoded)
        try:
            for c in reversed(codings):
                data = _DECODERS[c](data)
        except (OSError, EOFError, zlib.error, brotli.error, zstandard.ZstdError, ValueError) as e:
            raise ValueError(
                f"{type(e).__name__} when decoding {bytes(encoded)[:10]!r} with {encoding!r}: {e}"
            ) from e
        return data
    if isinstance(encoded, str):
        return encoded
    info = _text_codec(encoding)
    try:
        return info.decode(encoded, errors)[0]
    except UnicodeError as e:
        raise ValueError(f"{type(e).__name__} when decoding with {encoding!r}: {e}") from e


@overload
def encode(decoded: None, encoding: str, errors: str = "strict") -> None: ...
@overload
def encode(decoded: str | bytes, encoding: str, errors: str = "strict") -> bytes: ...


def encode(decoded: bytes | str | None, encoding: str, errors: str = "strict") -> bytes | None:
    """Apply a Content-Encoding (bytes -> bytes) or encode text (str -> bytes).

    Raises ``ValueError`` for an unknown encoding or text the codec cannot represent.
    """
    if decoded is None:
        return None
    codings = _codings(encoding)
    if codings and all(c in _ENCODERS for c in codings):
        if isinstance(decoded, str):
            raise TypeError("content codings apply to bytes, not str")
        data = bytes(decoded)
        for c in codings:
            data = _ENCODERS[c](data)
        return data
    if isinstance(decoded, bytes):
        raise ValueError(f"invalid content encoding {encoding!r}")
    info = _text_codec(encoding)
    try:
        return info.encode(decoded, errors)[0]
    except UnicodeError as e:
        raise ValueError(f"{type(e).__name__} when encoding with {encoding!r}: {e}") from e
