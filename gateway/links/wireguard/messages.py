"""Wire formats of the four message types (paper section 5.4), as precompiled structs.

Every message starts with a little-endian u32 whose low byte is the type and whose
three reserved bytes must be zero; reading the whole word and comparing it with the
type rejects non-zero reserved bytes for free, as wireguard-go does.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from gateway.links.wireguard.constants import (
    MESSAGE_COOKIE_REPLY,
    MESSAGE_INITIATION,
    MESSAGE_RESPONSE,
    MESSAGE_TRANSPORT,
)

INITIATION = struct.Struct("<II32s48s28s16s16s")
RESPONSE = struct.Struct("<III32s16s16s16s")
COOKIE_REPLY = struct.Struct("<II24s32s")
TRANSPORT_HEADER = struct.Struct("<IIQ")

INITIATION_LEN = INITIATION.size  # 148
RESPONSE_LEN = RESPONSE.size  # 92
COOKIE_REPLY_LEN = COOKIE_REPLY.size  # 64
TRANSPORT_HEADER_LEN = TRANSPORT_HEADER.size  # 16
TRANSPORT_MIN_LEN = TRANSPORT_HEADER_LEN + 16  # header + an empty payload's tag (keepalive)

MAC1_OFFSET_INITIATION = INITIATION_LEN - 32
MAC1_OFFSET_RESPONSE = RESPONSE_LEN - 32


class Initiation(NamedTuple):
    sender: int
    ephemeral: bytes
    encrypted_static: bytes
    encrypted_timestamp: bytes
    mac1: bytes
    mac2: bytes


class Response(NamedTuple):
    sender: int
    receiver: int
    ephemeral: bytes
    encrypted_nothing: bytes
    mac1: bytes
    mac2: bytes


class CookieReply(NamedTuple):
    receiver: int
    nonce: bytes
    encrypted_cookie: bytes


class MalformedMessage(ValueError):
    """Wrong length or reserved bits for the message type."""


def message_type(data: bytes) -> int:
    """The type of a datagram, or 0 when it cannot be a WireGuard message."""
    if len(data) < 4:
        return 0
    word = data[0] | (data[1] << 8) | (data[2] << 16) | (data[3] << 24)
    return word if word <= MESSAGE_TRANSPORT else 0


def pack_initiation(sender: int, ephemeral: bytes, encrypted_static: bytes,
                    encrypted_timestamp: bytes) -> bytearray:
    """An initiation with zero MACs; cookie.MacWriter fills them in place."""
    return bytearray(INITIATION.pack(MESSAGE_INITIATION, sender, ephemeral, encrypted_static,
                                     encrypted_timestamp, bytes(16), bytes(16)))


def unpack_initiation(data: bytes) -> Initiation:
    if len(data) != INITIATION_LEN:
        raise MalformedMessage(f"initiation of {len(data)} bytes")
    kind, *fields = INITIATION.unpack(data)
    if kind != MESSAGE_INITIATION:
        raise MalformedMessage("not an initiation")
    return Initiation(*fields)


def pack_response(sender: int, receiver: int, ephemeral: bytes, encrypted_nothing: bytes) -> bytearray:
    return bytearray(RESPONSE.pack(MESSAGE_RESPONSE, sender, receiver, ephemeral, encrypted_nothing,
                                   bytes(16), bytes(16)))


def unpack_response(data: bytes) -> Response:
    if len(data) != RESPONSE_LEN:
        raise MalformedMessage(f"response of {len(data)} bytes")
    kind, *fields = RESPONSE.unpack(data)
    if kind != MESSAGE_RESPONSE:
        raise MalformedMessage("not a response")
    return Response(*fields)


def pack_cookie_reply(receiver: int, nonce: bytes, encrypted_cookie: bytes) -> bytes:
    return COOKIE_REPLY.pack(MESSAGE_COOKIE_REPLY, receiver, nonce, encrypted_cookie)


def unpack_cookie_reply(data: bytes) -> CookieReply:
    if len(data) != COOKIE_REPLY_LEN:
        raise MalformedMessage(f"cookie reply of {len(data)} bytes")
    kind, *fields = COOKIE_REPLY.unpack(data)
    if kind != MESSAGE_COOKIE_REPLY:
        raise MalformedMessage("not a cookie reply")
    return CookieReply(*fields)
