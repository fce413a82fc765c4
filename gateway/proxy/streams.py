"""StreamReader-compatible readers that can peek, and the base the TLS reader builds on.

Choosing the next layer means looking at a connection's first bytes without consuming
them (a TLS ClientHello must still reach the TLS engine; an HTTP request line must
still reach the HTTP parser).  ``asyncio.StreamReader`` has no peek and no public way
to push bytes back, so connections are wrapped once in a ``PeekableReader`` that keeps
its own buffer and otherwise behaves like ``asyncio.StreamReader`` (same methods, same
exceptions), which is all the layers rely on.
"""

from __future__ import annotations

import asyncio
from typing import Any

CHUNK = 65536
DEFAULT_LIMIT = 2**16


class BufferedReader:
    """``asyncio.StreamReader`` semantics over a ``_fill()`` coroutine; adds ``peek``."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._buf = bytearray()
        self._eof = False
        self._limit = limit
        self._exception: BaseException | None = None

    async def _fill(self) -> bytes:
        """The next chunk of the underlying stream; ``b""`` at its end."""
        raise NotImplementedError

    async def _more(self) -> bool:
        if self._eof:
            return False
        if self._exception is not None:
            raise self._exception
        data = await self._fill()
        if not data:
            self._eof = True
            return False
        self._buf += data
        return True

    # -- peeking (not in asyncio.StreamReader) -------------------------------------------------
    async def peek(self, n: int) -> bytes:
        """Up to ``n`` bytes without consuming them; fewer only at EOF."""
        while len(self._buf) < n and await self._more():
            pass
        return bytes(self._buf[:n])

    async def peek_more(self) -> bytes:
        """Everything buffered after reading one more chunk (unchanged at EOF)."""
        await self._more()
        return bytes(self._buf)

    def buffered(self) -> bytes:
        return bytes(self._buf)

    # -- asyncio.StreamReader interface -----------------------------------------------------
    def at_eof(self) -> bool:
        return self._eof and not self._buf

    def exception(self) -> BaseException | None:
        return self._exception

    def set_exception(self, exc: BaseException) -> None:
        self._exception = exc

    async def read(self, n: int = -1) -> bytes:
        if n == 0:
            return b""
        if n < 0:
            while await self._more():
                pass
            data = bytes(self._buf)
            self._buf.clear()
            return data
        if not self._buf:
            if self._eof:
                return b""
            if self._exception is not None:
                raise self._exception
            data = await self._fill()
            if not data:
                self._eof = True
                return b""
            if len(data) <= n:
                return data
            self._buf += data
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def readexactly(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        while len(self._buf) < n:
            if not await self._more():
                partial = bytes(self._buf)
                self._buf.clear()
                raise asyncio.IncompleteReadError(partial, n)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        if not separator:
            raise ValueError("Separator should be at least one-byte string")
        seplen = len(separator)
        offset = 0
        while True:
            i = self._buf.find(separator, offset)
            if i >= 0:
                end = i + seplen
                if end > self._limit:
                    raise asyncio.LimitOverrunError("Separator is found, but chunk is longer than limit", i)
                data = bytes(self._buf[:end])
                del self._buf[:end]
                return data
            offset = max(0, len(self._buf) + 1 - seplen)
            if offset > self._limit:
                raise asyncio.LimitOverrunError("Separator is not found, and chunk exceed the limit", offset)
            if not await self._more():
                partial = bytes(self._buf)
                self._buf.clear()
                raise asyncio.IncompleteReadError(partial, None)

    async def readline(self) -> bytes:
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as e:
            return e.partial
        except asyncio.LimitOverrunError as e:
            if self._buf.startswith(b"\n", e.consumed):
                del self._buf[: e.consumed + 1]
            else:
                self._buf.clear()
            raise ValueError(e.args[0]) from None

    def __aiter__(self) -> BufferedReader:
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if line == b"":
            raise StopAsyncIteration
        return line


class PeekableReader(BufferedReader):
    """A peekable view of another StreamReader-like object."""

    def __init__(self, inner: Any, limit: int = DEFAULT_LIMIT) -> None:
        super().__init__(limit)
        self.inner = inner

    async def _fill(self) -> bytes:
        return await self.inner.read(CHUNK)


def peekable(reader: Any) -> BufferedReader:
    """``reader`` itself if it can already peek, else a ``PeekableReader`` around it."""
    return reader if isinstance(reader, BufferedReader) else PeekableReader(reader)
