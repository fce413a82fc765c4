"""TLS over plain asyncio streams without loop.start_tls, against the kernel's TLS peers."""

import asyncio
import hashlib
import ssl

import pytest

from gateway.certs import CertStore
from gateway.proxy import tlsstream
from gateway.proxy.streams import PeekableReader


@pytest.fixture
def store(tmp_path):
    s = CertStore(tmp_path)
    yield s
    s.close()


async def test_we_are_the_server(store):
    """A stdlib asyncio TLS client talks to our MemoryBIO server; data both ways, EOF both ways."""
    result = {}

    async def on_conn(r, w):
        sctx, _ = store.server_context("localhost", alpn=[b"h2"])
        tr, tw = await tlsstream.wrap(PeekableReader(r), w, sctx, server_side=True)
        result["alpn"] = tw.get_extra_info("alpn")
        data = await tr.readexactly(1024 * 1024)
        line = await tr.readuntil(b"\n")
        tw.write(hashlib.sha256(data).digest() + line)
        await tw.drain()
        tw.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cctx = ssl.create_default_context(cafile=str(store.ca_cert_pem_path))
    cctx.set_alpn_protocols(["http/1.1", "h2"])
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=cctx, server_hostname="localhost")
    assert w.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
    payload = bytes(range(256)) * 4096
    w.write(payload + b"line\n")
    await w.drain()
    reply = await asyncio.wait_for(r.read(), 10)  # ends with our close_notify
    assert reply == hashlib.sha256(payload).digest() + b"line\n"
    assert result["alpn"] == "h2"
    w.close()
    server.close()
    await server.wait_closed()


async def test_half_close_both_ways_between_two_wrapped_ends(store):
    """Our client end against our server end over a real socket: TLS half-close works."""
    got = {}

    async def on_conn(r, w):
        sctx, _ = store.server_context("localhost")
        tr, tw = await tlsstream.wrap(PeekableReader(r), w, sctx, server_side=True)
        data = await tr.read()  # returns at the client's close_notify
        got["server_saw"] = data
        tw.write(b"reply after your EOF:" + data[::-1])
        await tw.drain()
        tw.write_eof()
        tw.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port)
    cctx = ssl.create_default_context(cafile=str(store.ca_cert_pem_path))
    tr, tw = await tlsstream.wrap(PeekableReader(r), w, cctx, server_side=False, server_hostname="localhost")
    assert tw.get_extra_info("peercert")["subject"][0][0] == ("commonName", "localhost")
    assert tw.get_extra_info("peername")[0] == "127.0.0.1"
    tw.write(b"hello")
    await tw.drain()
    tw.write_eof()
    reply = await asyncio.wait_for(tr.read(), 10)
    assert reply == b"reply after your EOF:olleh"
    assert tr.at_eof()
    tw.close()
    server.close()
    await server.wait_closed()


async def test_verification_failure_raises(tmp_path, store):
    """A client that trusts another CA fails the handshake with an SSL error, not a hang."""
    other = CertStore(tmp_path / "other")
    errors = []

    async def on_conn(r, w):
        sctx, _ = store.server_context("localhost")
        try:
            await tlsstream.wrap(PeekableReader(r), w, sctx, server_side=True)
        except (ssl.SSLError, OSError) as e:
            errors.append(e)
        w.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port)
    cctx = ssl.create_default_context(cafile=str(other.ca_cert_pem_path))
    with pytest.raises(ssl.SSLCertVerificationError):
        await tlsstream.wrap(PeekableReader(r), w, cctx, server_side=False, server_hostname="localhost")
    w.close()
    for _ in range(100):
        if errors:
            break
        await asyncio.sleep(0.02)
    assert errors and isinstance(errors[0], ssl.SSLError)
    server.close()
    await server.wait_closed()
    other.close()


async def test_eof_during_handshake(store):
    async def on_conn(r, w):
        w.write(b"\x16\x03")  # then hang up mid-record
        await w.drain()
        w.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    r, w = await asyncio.open_connection("127.0.0.1", port)
    cctx = ssl.create_default_context(cafile=str(store.ca_cert_pem_path))
    with pytest.raises((ssl.SSLError, OSError)):
        await tlsstream.wrap(PeekableReader(r), w, cctx, server_side=False, server_hostname="localhost")
    w.close()
    server.close()
    await server.wait_closed()
