"""The primitives of the paper's section 5.4, on cryptography, hashlib and pynacl.

Names follow the paper: HASH, MAC, HMAC, KDF1/2/3, AEAD, XAEAD, DH, TAI64N.  The KDF is
HKDF as the paper writes it (HMAC over BLAKE2s, outputs chained with a counter byte),
which is not RFC 5869's HKDF with BLAKE2s in cryptography's API (that one adds an
info string and a length), so it is written out here.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

from gateway.links.wireguard.constants import MAC_LEN

_blake2s = hashlib.blake2s
_NONCE = struct.Struct("<4xQ")
_TAI64N = struct.Struct(">QI")
_TAI64_EPOCH = 2**62 + 10
"""TAI64 label of 1970-01-01 00:00:00 TAI; WireGuard adds the 10 s as the paper does."""


class DecryptError(ValueError):
    """Authentication of a ciphertext failed."""


def HASH(data: bytes) -> bytes:  # noqa: N802 - the paper's name
    return _blake2s(data).digest()


def MAC(key: bytes, data: bytes) -> bytes:  # noqa: N802
    return _blake2s(data, key=key, digest_size=MAC_LEN).digest()


def HMAC(key: bytes, data: bytes) -> bytes:  # noqa: N802
    return hmac.new(key, data, _blake2s).digest()


def KDF1(key: bytes, data: bytes) -> bytes:  # noqa: N802
    t0 = HMAC(key, data)
    return HMAC(t0, b"\x01")


def KDF2(key: bytes, data: bytes) -> tuple[bytes, bytes]:  # noqa: N802
    t0 = HMAC(key, data)
    t1 = HMAC(t0, b"\x01")
    return t1, HMAC(t0, t1 + b"\x02")


def KDF3(key: bytes, data: bytes) -> tuple[bytes, bytes, bytes]:  # noqa: N802
    t0 = HMAC(key, data)
    t1 = HMAC(t0, b"\x01")
    t2 = HMAC(t0, t1 + b"\x02")
    return t1, t2, HMAC(t0, t2 + b"\x03")


def nonce(counter: int) -> bytes:
    """32 zero bits then the 64-bit little-endian counter, as ChaCha20Poly1305 wants."""
    return _NONCE.pack(counter)


def AEAD(key: bytes, counter: int, plaintext: bytes, auth: bytes) -> bytes:  # noqa: N802
    return ChaCha20Poly1305(key).encrypt(_NONCE.pack(counter), plaintext, auth)


def AEAD_decrypt(key: bytes, counter: int, ciphertext: bytes, auth: bytes) -> bytes:  # noqa: N802
    try:
        return ChaCha20Poly1305(key).decrypt(_NONCE.pack(counter), ciphertext, auth)
    except InvalidTag as e:
        raise DecryptError("AEAD authentication failed") from e


def XAEAD(key: bytes, nonce24: bytes, plaintext: bytes, auth: bytes) -> bytes:  # noqa: N802
    return crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, auth, nonce24, key)


def XAEAD_decrypt(key: bytes, nonce24: bytes, ciphertext: bytes, auth: bytes) -> bytes:  # noqa: N802
    try:
        return crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, auth, nonce24, key)
    except CryptoError as e:
        raise DecryptError("XAEAD authentication failed") from e


def DH(private_key: X25519PrivateKey, public_key: bytes) -> bytes:  # noqa: N802
    """X25519; a low-order public key (all-zero result) raises DecryptError, never leaks."""
    try:
        return private_key.exchange(X25519PublicKey.from_public_bytes(public_key))
    except ValueError as e:
        raise DecryptError("invalid Curve25519 point") from e


def DH_generate(secret: bytes) -> tuple[X25519PrivateKey, bytes]:  # noqa: N802
    """A key pair from 32 secret bytes (taken from the caller's RNG, so tests can fix it)."""
    private = X25519PrivateKey.from_private_bytes(secret)
    return private, private.public_key().public_bytes_raw()


def TAI64N(unix_time: float) -> bytes:  # noqa: N802
    """12-byte TAI64N label of a wall-clock time.

    The nanoseconds are rounded down to a multiple of 2**24 ns (about 16 ms), as
    wireguard-go does, so the timestamp does not leak a precise clock to an observer
    who can decrypt it; it only has to grow between two initiations.
    """
    seconds = int(unix_time)
    nanos = int((unix_time - seconds) * 1e9) & ~0xFFFFFF
    return _TAI64N.pack(_TAI64_EPOCH + seconds, nanos)
