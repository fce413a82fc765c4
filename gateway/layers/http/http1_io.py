"""The asyncio edge of the HTTP/1 reader and writer: one peer's streams plus its parser."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.layers.http import http1_assemble
from gateway.layers.http.framing import Framing
from gateway.layers.http.http1_parse import NEED_DATA, Event, Fields, Http1Reader

READ_SIZE = 256 * 1024


class Http1Peer:
    """Events from one peer, read on demand so memory stays bounded by READ_SIZE."""

    def __init__(self, reader: asyncio.StreamReader, writer: Any, *, is_request: bool) -> None:
        self.reader = reader
        self.writer = writer
        self.parser = Http1Reader(is_request=is_request)

    async def next_event(self) -> Event:
        while True:
            ev = self.parser.next_event()
            if ev is not NEED_DATA:
                return ev
            try:
                data = await self.reader.read(READ_SIZE)
            except (ConnectionError, OSError):
                data = b""
            self.parser.receive_data(data)

    async def write(self, data: bytes) -> None:
        if data:
            self.writer.write(data)
            await self.writer.drain()

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - closing a broken transport is best effort
            pass


class BodyWriter:
    """Writes one message body in the framing chosen for it."""

    def __init__(self, peer: Http1Peer, framing: Framing) -> None:
        self.peer = peer
        self.framing = framing

    async def data(self, data: bytes) -> None:
        if not data or self.framing is Framing.NONE:
            return
        if self.framing is Framing.CHUNKED:
            await self.peer.write(http1_assemble.chunk(data))
        else:
            await self.peer.write(data)

    async def end(self, trailers: Fields | None = None) -> None:
        if self.framing is Framing.CHUNKED:
            await self.peer.write(http1_assemble.last_chunk(trailers))


def prefixed_reader(reader: Any, prefix: bytes) -> Any:
    """A StreamReader-like object yielding ``prefix`` (bytes our parser already read past
    a CONNECT or 101 head) before the rest of ``reader``."""
    if not prefix:
        return reader
    from gateway.proxy.streams import PeekableReader

    class _Prefixed(PeekableReader):
        def __init__(self) -> None:
            super().__init__(reader)
            self._buf += prefix

    return _Prefixed()
