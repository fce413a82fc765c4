"""TLS hook data: the parsed ClientHello and what ``tls_clienthello`` / ``tls_*`` hooks get.

The ClientHello is parsed by hand because it is small, fixed and the only handshake
message we must read before choosing what to do with a connection (SNI for the
certificate, ALPN for HTTP/2, "ignore this host").  The parser is bounded: every length
is checked against the bytes present and malformed input raises ``ValueError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from gateway.connection import Connection
from gateway.net.server_spec import is_valid_host

__all__ = ["ClientHello", "ClientHelloData", "TlsData", "get_client_hello", "parse_client_hello"]

_EXT_SNI = 0
_EXT_ALPN = 16
_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01


class _Reader:
    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise ValueError("truncated ClientHello")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, len_size: int) -> _Reader:
        n = self.uint(len_size)
        sub = _Reader(self.data, self.pos, self.pos + n)
        self.take(n)
        return sub

    @property
    def done(self) -> bool:
        return self.pos >= self.end


class ClientHello:
    """A TLS (or DTLS) ClientHello: the client's first handshake message."""

    __slots__ = ("_raw_bytes", "_dtls", "version", "random", "session_id", "cookie",
                 "cipher_suites", "compression_methods", "extensions")  # fmt: skip

    def __init__(self, raw_client_hello: bytes, dtls: bool = False) -> None:
        """Parse the ClientHello body (without record and handshake headers).

        Raises ``ValueError`` if it is malformed.
        """
        self._raw_bytes = bytes(raw_client_hello)
        self._dtls = dtls
        r = _Reader(self._raw_bytes)
        self.version: int = r.uint(2)
        self.random: bytes = r.take(32)
        self.session_id: bytes = r.take(r.uint(1))
        self.cookie: bytes | None = r.take(r.uint(1)) if dtls else None
        suites = r.vector(2)
        if (suites.end - suites.pos) % 2:
            raise ValueError("odd cipher suite list length")
        self.cipher_suites: list[int] = [suites.uint(2) for _ in range((suites.end - suites.pos) // 2)]
        self.compression_methods: bytes = r.take(r.uint(1))
        self.extensions: list[tuple[int, bytes]] = []
        """``(type, data)`` of every extension, in order."""
        if not r.done:
            exts = r.vector(2)
            while not exts.done:
                ext_type = exts.uint(2)
                self.extensions.append((ext_type, exts.take(exts.uint(2))))
            if not r.done:
                raise ValueError("trailing bytes after ClientHello extensions")

    def __repr__(self) -> str:
        return f"ClientHello(sni: {self.sni}, alpn_protocols: {self.alpn_protocols})"

    def raw_bytes(self, wrap_in_record: bool = True) -> bytes:
        """The ClientHello bytes; by default wrapped in a handshake header and a TLS 1.2 record
        header, which is what tools such as JA3 calculators expect."""
        if not wrap_in_record:
            return self._raw_bytes
        body = self._raw_bytes
        if self._dtls:
            # DTLS: handshake header with message_seq and fragment fields, record with epoch/seq.
            hs = struct.pack("!B", _CLIENT_HELLO) + len(body).to_bytes(3, "big") + b"\x00\x00"
            hs += b"\x00\x00\x00" + len(body).to_bytes(3, "big") + body
            return b"\x16\xfe\xfd" + b"\x00" * 8 + len(hs).to_bytes(2, "big") + hs
        hs = struct.pack("!B", _CLIENT_HELLO) + len(body).to_bytes(3, "big") + body
        return b"\x16\x03\x03" + len(hs).to_bytes(2, "big") + hs

    def _extension(self, ext_type: int) -> bytes | None:
        for t, data in self.extensions:
            if t == ext_type:
                return data
        return None

    @property
    def sni(self) -> str | None:
        """The host name from the server_name extension, if present and valid."""
        data = self._extension(_EXT_SNI)
        if data is None:
            return None
        try:
            names = _Reader(data).vector(2)
            while not names.done:
                name_type = names.uint(1)
                name = names.take(names.uint(2))
                if name_type == 0:
                    host = name.decode("ascii")
                    return host if is_valid_host(host) else None
        except (ValueError, UnicodeError):
            return None
        return None

    @property
    def alpn_protocols(self) -> list[bytes]:
        """The protocols offered in the ALPN extension (e.g. ``[b"h2", b"http/1.1"]``)."""
        data = self._extension(_EXT_ALPN)
        if data is None:
            return []
        try:
            protos = _Reader(data).vector(2)
            out = []
            while not protos.done:
                out.append(protos.take(protos.uint(1)))
            return out
        except ValueError:
            return []


def get_client_hello(data: bytes) -> bytes | None:
    """The ClientHello body from the start of a client's TLS stream.

    Returns None while more bytes are needed; raises ``ValueError`` if the stream does not
    start with a ClientHello in handshake records.
    """
    handshake = bytearray()
    pos = 0
    while pos + 5 <= len(data):
        if data[pos] != _HANDSHAKE:
            raise ValueError(f"expected a TLS handshake record, got content type {data[pos]}")
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if length == 0 or length > 2**14 + 2048:
            raise ValueError(f"invalid TLS record length {length}")
        fragment = data[pos + 5 : pos + 5 + length]
        handshake += fragment
        pos += 5 + len(fragment)
        if len(handshake) >= 4:
            if handshake[0] != _CLIENT_HELLO:
                raise ValueError(f"expected a ClientHello, got handshake type {handshake[0]}")
            hs_len = int.from_bytes(handshake[1:4], "big")
            if len(handshake) >= 4 + hs_len:
                return bytes(handshake[4 : 4 + hs_len])
        if len(fragment) < length:
            break
    return None


def parse_client_hello(data: bytes) -> ClientHello | None:
    """The parsed ClientHello from the start of a TLS stream, or None if incomplete.

    Raises ``ValueError`` if the bytes are not a (valid) ClientHello.
    """
    body = get_client_hello(data)
    return ClientHello(body) if body is not None else None


@dataclass
class ClientHelloData:
    """Data of the ``tls_clienthello`` hook: decide how to handle the client's TLS."""

    context: Any
    """The connection's ``gateway.layers.context.LayerContext`` (``.client``, ``.server``...)."""
    client_hello: ClientHello
    ignore_connection: bool = False
    """Set to True to pass the connection through without intercepting TLS."""
    establish_server_tls_first: bool = False
    """Set to True to connect to the server (and learn its certificate and ALPN) before
    answering the client."""


@dataclass
class TlsData:
    """Data of the ``tls_start_client``/``tls_start_server``/``tls_established_*``/
    ``tls_failed_*`` hooks."""

    conn: Connection
    """The client or server connection TLS is (being) set up on."""
    context: Any
    ssl_conn: Any = None
    """The TLS object in use (``ssl.SSLObject``), set by the TLS layer."""
    is_dtls: bool = False
