"""Reassemble and parse a TLS ClientHello from the first bytes of a connection.

The proxy must read the ClientHello *before* any TLS engine sees it: the SNI picks the
certificate, the offered ALPN is relayed upstream, the ``tls_clienthello`` hook may
choose passthrough.  OpenSSL does not expose a parsed ClientHello to Python, so this is
a small, strict parser of the record layer (RFC 8446 5.1) and the ClientHello body
(4.1.2).  Every length is checked against what is left, so a short or lying message
raises ``ValueError`` (or asks for more bytes) instead of reading past its end.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RECORD_HANDSHAKE = 0x16
HANDSHAKE_CLIENT_HELLO = 0x01
EXT_SERVER_NAME = 0
EXT_ALPN = 16
EXT_SUPPORTED_VERSIONS = 43
# A ClientHello is at most a few KiB (post-quantum key shares make it ~1.8 KiB); anything
# past this is not a ClientHello worth waiting for.
MAX_CLIENT_HELLO = 64 * 1024

_record_header = struct.Struct("!BHH")


class NeedMoreData(Exception):
    """The bytes so far are a valid prefix; read more."""


@dataclass
class ParsedClientHello:
    raw: bytes
    """The ClientHello handshake message body (without the 4-byte handshake header)."""
    legacy_version: int
    random: bytes
    session_id: bytes
    cipher_suites: list[int]
    compression_methods: bytes
    extensions: list[tuple[int, bytes]] = field(default_factory=list)

    def _ext(self, typ: int) -> bytes | None:
        for t, data in self.extensions:
            if t == typ:
                return data
        return None

    @property
    def sni(self) -> str | None:
        data = self._ext(EXT_SERVER_NAME)
        if not data:
            return None
        r = _Cursor(data)
        body = _Cursor(r.vector(2))
        while body.left():
            name_type = body.u8()
            name = body.vector(2)
            if name_type == 0:
                try:
                    return name.decode("idna").lower()
                except UnicodeError:
                    return name.decode("ascii", "replace").lower()
        return None

    @property
    def alpn_protocols(self) -> list[bytes]:
        data = self._ext(EXT_ALPN)
        if data is None:
            return []
        r = _Cursor(data)
        body = _Cursor(r.vector(2))
        out = []
        while body.left():
            out.append(body.vector(1))
        return out

    @property
    def supported_versions(self) -> list[int]:
        """From the supported_versions extension, else the legacy version alone."""
        data = self._ext(EXT_SUPPORTED_VERSIONS)
        if data is None:
            return [self.legacy_version]
        body = _Cursor(_Cursor(data).vector(1))
        out = []
        while body.left():
            out.append(body.u16())
        return out


class _Cursor:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> bytes:
        if n > self.left():
            raise ValueError("ClientHello field runs past its end")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def vector(self, len_bytes: int) -> bytes:
        return self.take(int.from_bytes(self.take(len_bytes), "big"))


def looks_like_tls(data: bytes) -> bool:
    """A handshake record with a TLS 1.x (or SSL 3) record version."""
    return len(data) >= 3 and data[0] == RECORD_HANDSHAKE and data[1] == 0x03 and data[2] <= 0x04


def reassemble(data: bytes) -> bytes:
    """The ClientHello handshake message from the record stream ``data``.

    Raises ``NeedMoreData`` when ``data`` is a valid but incomplete prefix and
    ``ValueError`` when it is not a ClientHello at all.
    """
    handshake = bytearray()
    pos = 0
    while True:
        if len(handshake) >= 4:
            if handshake[0] != HANDSHAKE_CLIENT_HELLO:
                raise ValueError(f"first handshake message is type {handshake[0]}, not ClientHello")
            need = 4 + int.from_bytes(handshake[1:4], "big")
            if need > MAX_CLIENT_HELLO:
                raise ValueError(f"ClientHello of {need} bytes is implausibly large")
            if len(handshake) >= need:
                return bytes(handshake[4:need])
        if len(data) - pos < 5:
            raise NeedMoreData
        typ, version, length = _record_header.unpack_from(data, pos)
        if typ != RECORD_HANDSHAKE:
            raise ValueError(f"record type {typ} where a handshake record was expected")
        if version >> 8 != 0x03:
            raise ValueError(f"record version {version:#06x} is not TLS")
        if length == 0 or length > 2**14 + 2048:
            raise ValueError(f"bad TLS record length {length}")
        if len(data) - pos - 5 < length:
            raise NeedMoreData
        handshake += data[pos + 5 : pos + 5 + length]
        pos += 5 + length


def parse(body: bytes) -> ParsedClientHello:
    """Parse a ClientHello body (as returned by ``reassemble``); ``ValueError`` if malformed."""
    r = _Cursor(body)
    legacy_version = r.u16()
    random = r.take(32)
    session_id = r.vector(1)
    suites_raw = r.vector(2)
    if len(suites_raw) % 2:
        raise ValueError("odd cipher_suites length")
    cipher_suites = [int.from_bytes(suites_raw[i : i + 2], "big") for i in range(0, len(suites_raw), 2)]
    compression = r.vector(1)
    extensions: list[tuple[int, bytes]] = []
    if r.left():
        ext = _Cursor(r.vector(2))
        while ext.left():
            typ = ext.u16()
            extensions.append((typ, ext.vector(2)))
    hello = ParsedClientHello(
        raw=body,
        legacy_version=legacy_version,
        random=random,
        session_id=session_id,
        cipher_suites=cipher_suites,
        compression_methods=compression,
        extensions=extensions,
    )
    # Validate the extensions we interpret now, so that bad ones fail here, not in a hook.
    hello.sni  # noqa: B018
    hello.alpn_protocols  # noqa: B018
    hello.supported_versions  # noqa: B018
    return hello
