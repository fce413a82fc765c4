"""The protocol's constants, named as in the WireGuard paper (sections 5.4 and 6)."""

from __future__ import annotations

CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
LABEL_MAC1 = b"mac1----"
LABEL_COOKIE = b"cookie--"

# Section 6.1.  REJECT_AFTER_MESSAGES leaves room below 2**64 for the replay window,
# as wireguard-go and the kernel do.
REKEY_AFTER_MESSAGES = 2**60
REJECT_AFTER_MESSAGES = 2**64 - 2**13 - 1
REKEY_AFTER_TIME = 120.0
REJECT_AFTER_TIME = 180.0
REKEY_ATTEMPT_TIME = 90.0
REKEY_TIMEOUT = 5.0
KEEPALIVE_TIMEOUT = 10.0
COOKIE_REFRESH_TIME = 120.0

# Implementation choices shared with wireguard-go.
REKEY_TIMEOUT_JITTER_MAX = 1 / 3
"""Random extra delay on handshake retries, so two peers do not retry in lockstep."""
HANDSHAKE_INITIATION_RATE = 1 / 50
"""At most one initiation per peer is consumed in this interval (flood protection)."""
ZERO_KEY_MATERIAL_FACTOR = 3
"""Keys are erased after this many REJECT_AFTER_TIMEs without a new session."""

MESSAGE_INITIATION = 1
MESSAGE_RESPONSE = 2
MESSAGE_COOKIE_REPLY = 3
MESSAGE_TRANSPORT = 4

KEY_LEN = 32
HASH_LEN = 32
MAC_LEN = 16
AEAD_TAG_LEN = 16
TIMESTAMP_LEN = 12
COOKIE_LEN = 16
COOKIE_NONCE_LEN = 24
PADDING_MULTIPLE = 16

DEFAULT_PORT = 51820
DEFAULT_MTU = 1420
MAX_STAGED_PACKETS = 128
"""Packets kept per peer while a handshake is under way (wireguard-go keeps 128 too)."""
