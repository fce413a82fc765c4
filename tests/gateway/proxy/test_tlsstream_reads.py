"""TlsReader hands on every record already received in one chunk: a burst of small TLS
records reads as one piece, not one piece per record, and the stream's end comes after
the last byte.  Both ends are our own MemoryBIO TLS over an in-memory byte pipe, so what
arrived when is exact."""

import asyncio
import ssl

import pytest

from gateway.certs import CertStore
from gateway.proxy import tlsstream
from gateway.proxy.streams import PeekableReader


class PipeWriter:
    """The writing end of a one-way byte pipe into an asyncio.StreamReader."""

    def __init__(self, peer: asyncio.StreamReader) -> None:
        self.peer = peer
        self.closed = False

    def write(self, data: bytes) -> None:
        self.peer.feed_data(bytes(data))

    async def drain(self) -> None:
        pass

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.peer.feed_eof()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.peer.feed_eof()

    async def wait_closed(self) -> None:
        pass

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default


@pytest.fixture
def store(tmp_path):
    s = CertStore(tmp_path)
    yield s
    s.close()


async def tls_pair(store: CertStore):  # type: ignore[no-untyped-def]
    to_server, to_client = asyncio.StreamReader(), asyncio.StreamReader()
    sctx, _ = store.server_context("localhost")
    cctx = ssl.create_default_context(cafile=str(store.ca_cert_pem_path))
    server, client = await asyncio.gather(
        tlsstream.wrap(PeekableReader(to_server), PipeWriter(to_client), sctx, server_side=True),
        tlsstream.wrap(PeekableReader(to_client), PipeWriter(to_server), cctx, server_side=False,
                       server_hostname="localhost"),
    )
    return server, client


async def test_a_burst_of_records_reads_as_one_chunk(store) -> None:
    (_, server_w), (client_r, _) = await tls_pair(store)
    pieces = [bytes([i]) * 1000 for i in range(40)]
    for piece in pieces:
        server_w.write(piece)  # one TLS record each
    server_w.write_eof()  # close_notify after them
    first = await asyncio.wait_for(client_r.read(1 << 20), 5)
    assert first == b"".join(pieces)
    assert await asyncio.wait_for(client_r.read(1 << 20), 5) == b""
    assert client_r.at_eof()


async def test_reads_are_bounded_and_keep_order(store) -> None:
    (_, server_w), (client_r, _) = await tls_pair(store)
    payload = bytes(range(256)) * 4096  # 1 MiB in 16 KiB records
    server_w.write(payload)
    server_w.write_eof()
    chunks = []
    while True:
        chunk = await asyncio.wait_for(client_r.read(1 << 22), 5)
        if not chunk:
            break
        chunks.append(chunk)
    assert b"".join(chunks) == payload
    assert len(chunks) > 1
    assert max(len(c) for c in chunks) <= tlsstream.READ_SIZE


async def test_small_reads_still_see_every_byte(store) -> None:
    (_, server_w), (client_r, _) = await tls_pair(store)
    for i in range(10):
        server_w.write(b"line %d\n" % i)
    server_w.write_eof()
    lines = [await client_r.readline() for _ in range(10)]
    assert lines == [b"line %d\n" % i for i in range(10)]
    assert await client_r.read(3) == b""


async def test_ragged_eof_after_a_burst(store) -> None:
    """The peer's TCP ends without close_notify: the bytes before it still arrive, then EOF."""
    (server_r, _), (client_r, client_w) = await tls_pair(store)
    for _ in range(5):
        client_w.write(b"x" * 100)
    client_w.conn.raw_writer.write_eof()  # FIN only, no close_notify
    assert await asyncio.wait_for(server_r.read(1 << 20), 5) == b"x" * 500
    assert await asyncio.wait_for(server_r.read(1 << 20), 5) == b""
