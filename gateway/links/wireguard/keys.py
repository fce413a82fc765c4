"""Curve25519 keys as WireGuard tools write them: 32 raw bytes, base64 in text."""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.links.wireguard.constants import KEY_LEN


class InvalidKey(ValueError):
    """A key in a config file or on the command line is not 32 bytes of base64."""


def clamp(private_key: bytes) -> bytes:
    """Clamp as `wg genkey` does, so the stored key is the one every tool computes with."""
    k = bytearray(private_key)
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    return bytes(k)


def generate_private_key() -> bytes:
    return clamp(os.urandom(KEY_LEN))


def generate_preshared_key() -> bytes:
    return os.urandom(KEY_LEN)


def public_key(private_key: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()


def to_base64(key: bytes) -> str:
    return base64.standard_b64encode(key).decode("ascii")


def from_base64(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise InvalidKey(f"not a base64 key: {text!r}") from e
    if len(key) != KEY_LEN:
        raise InvalidKey(f"a key is {KEY_LEN} bytes, this one is {len(key)}")
    return key
