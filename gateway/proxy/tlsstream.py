"""TLS over any reader/writer pair, sans-IO with ``ssl.MemoryBIO`` + ``SSLObject``.

``loop.start_tls`` only accepts transports the loop created itself, so it cannot wrap a
netstack connection (DESIGN.md, seam 1).  Instead the ``SSLObject`` is driven by hand:
ciphertext read from the underlying reader goes into the incoming BIO, whatever OpenSSL
puts in the outgoing BIO is written to the underlying writer.  The result is again a
reader/writer pair with the StreamReader/StreamWriter interface, so layers above cannot
tell TLS from plain TCP except through ``get_extra_info("ssl_object")``.

Reads are pulled on demand (no background task), which gives natural backpressure: a
layer that stops reading stops the decryption and, below it, the socket reads.

Reads are large on both sides of OpenSSL: up to ``READ_SIZE`` of ciphertext from the
underlying reader at once, and every record already in the incoming BIO decrypted into
one chunk (``SSLObject.read`` returns one record, at most 16 KiB, per call).  A layer
above then sees one chunk per burst of records instead of one per record, and each of
its per-chunk steps (h2 frame parsing, flow-control acknowledgements, the writes on the
other side) runs once per burst.
"""

from __future__ import annotations

import ssl
from typing import Any

from gateway.proxy.streams import BufferedReader

READ_SIZE = 256 * 1024
"""Most ciphertext taken from the underlying reader, and most plaintext returned, at once."""


class TlsConnection:
    """One ``SSLObject`` and its two BIOs, shared by the reader and the writer."""

    def __init__(self, raw_reader: Any, raw_writer: Any, sslobj: ssl.SSLObject,
                 incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO) -> None:
        self.raw_reader = raw_reader
        self.raw_writer = raw_writer
        self.sslobj = sslobj
        self.incoming = incoming
        self.outgoing = outgoing
        self.close_notify_sent = False

    def flush(self) -> None:
        """Hand whatever OpenSSL produced to the underlying writer (no drain)."""
        if self.outgoing.pending:
            data = self.outgoing.read()
            if not self.raw_writer.is_closing():
                self.raw_writer.write(data)

    async def receive(self) -> bool:
        """Feed one chunk of ciphertext into OpenSSL; False at the underlying EOF."""
        data = await self.raw_reader.read(READ_SIZE)
        if not data:
            self.incoming.write_eof()
            return False
        self.incoming.write(data)
        return True

    async def handshake(self) -> None:
        while True:
            try:
                self.sslobj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                await self.raw_writer.drain()
                if not await self.receive():
                    # Let OpenSSL turn the EOF into its own error (SSLEOFError).
                    try:
                        self.sslobj.do_handshake()
                    except ssl.SSLWantReadError:
                        raise ssl.SSLEOFError("EOF during TLS handshake") from None
                    break
        self.flush()
        await self.raw_writer.drain()

    def send_close_notify(self) -> None:
        if self.close_notify_sent:
            return
        self.close_notify_sent = True
        try:
            self.sslobj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass  # our close_notify is in the outgoing BIO; the peer's may come later
        except (ssl.SSLError, ValueError):
            return
        self.flush()


class TlsReader(BufferedReader):
    """Decrypted bytes of a ``TlsConnection``, with the StreamReader interface."""

    def __init__(self, conn: TlsConnection) -> None:
        super().__init__()
        self.conn = conn
        self._ended = False
        """The stream ended (close_notify or a ragged EOF) after the last chunk returned."""

    async def _fill(self) -> bytes:
        if self._ended:
            return b""
        conn = self.conn
        while True:
            try:
                data = conn.sslobj.read(READ_SIZE)
            except ssl.SSLWantReadError:
                conn.flush()
                if not await conn.receive():
                    try:
                        data = conn.sslobj.read(READ_SIZE)
                    except ssl.SSLWantReadError:
                        return b""
                    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                        return b""  # a ragged EOF (no close_notify) ends the stream too
                    conn.flush()
                    return self._more_records(data)
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                conn.flush()
                return b""
            data = self._more_records(data)
            conn.flush()  # TLS 1.3 key updates and tickets answered on read
            return data

    def _more_records(self, first: bytes) -> bytes:
        """``first`` and the plaintext of every further record OpenSSL can decrypt without
        more input, up to ``READ_SIZE`` in all."""
        sslobj = self.conn.sslobj
        parts = [first]
        size = len(first)
        while size < READ_SIZE:
            try:
                data = sslobj.read(READ_SIZE - size)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                self._ended = True  # reported by the next _fill, after these bytes
                break
            if not data:
                break
            parts.append(data)
            size += len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)


class TlsWriter:
    """Encrypting StreamWriter look-alike over a ``TlsConnection``."""

    def __init__(self, conn: TlsConnection) -> None:
        self.conn = conn

    @property
    def transport(self) -> Any:
        return getattr(self.conn.raw_writer, "transport", None)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self.conn.close_notify_sent:
            raise ConnectionResetError("write after write_eof on a TLS stream")
        self.conn.sslobj.write(data)
        self.conn.flush()

    def writelines(self, data: Any) -> None:
        for d in data:
            self.write(d)

    async def drain(self) -> None:
        await self.conn.raw_writer.drain()

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """TLS half-close: close_notify, then a TCP FIN where the transport can."""
        self.conn.send_close_notify()
        raw = self.conn.raw_writer
        if not raw.is_closing() and raw.can_write_eof():
            try:
                raw.write_eof()
            except OSError:
                pass

    def is_closing(self) -> bool:
        return self.conn.raw_writer.is_closing()

    def close(self) -> None:
        if not self.conn.raw_writer.is_closing():
            self.conn.send_close_notify()
        self.conn.raw_writer.close()

    async def wait_closed(self) -> None:
        try:
            await self.conn.raw_writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        obj = self.conn.sslobj
        if name == "ssl_object":
            return obj
        if name == "peercert":
            return obj.getpeercert()
        if name == "peercert_der":
            return obj.getpeercert(binary_form=True)
        if name == "alpn":
            return obj.selected_alpn_protocol()
        if name == "cipher":
            return obj.cipher()
        if name == "tls_version":
            return obj.version()
        if name == "sslcontext":
            return obj.context
        if name == "server_hostname":
            return obj.server_hostname
        return self.conn.raw_writer.get_extra_info(name, default)


async def wrap(
    reader: Any,
    writer: Any,
    context: ssl.SSLContext,
    *,
    server_side: bool,
    server_hostname: str | None = None,
    on_sslobj: Any = None,
) -> tuple[TlsReader, TlsWriter]:
    """Run the handshake over ``reader``/``writer`` and return the plaintext pair.

    ``on_sslobj(sslobj)`` is called once the ``SSLObject`` exists, before the handshake
    (for the ``tls_start_*`` hooks).  Raises ``ssl.SSLError`` / ``OSError`` on failure;
    the caller owns the underlying streams either way.
    """
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    sslobj = context.wrap_bio(
        incoming, outgoing, server_side=server_side,
        server_hostname=None if server_side else server_hostname,
    )
    if on_sslobj is not None:
        on_sslobj(sslobj)
    conn = TlsConnection(reader, writer, sslobj, incoming, outgoing)
    await conn.handshake()
    return TlsReader(conn), TlsWriter(conn)
