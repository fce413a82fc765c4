"""Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s as WireGuard uses it (paper section 5.4.2-5.4.4).

Two layers:

* the Noise steps, written against a ``NoiseState`` (chaining key + hash) with the
  prologue and payloads as parameters, so the same code is checked against the generic
  Noise test vectors (prologue "John Galt", arbitrary payloads) and used by WireGuard
  (prologue IDENTIFIER, payload TAI64N timestamp / nothing);
* ``Handshake``, the per-peer state machine of WireGuard's two messages, which the device
  drives in both roles: as responder when a phone connects, as initiator when the server
  rekeys itself.

Nothing here touches the network or the clock: timestamps, ephemeral secrets and indices
are passed in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gateway.links.wireguard.constants import CONSTRUCTION, IDENTIFIER, KEY_LEN
from gateway.links.wireguard.crypto import (
    AEAD,
    DH,
    HASH,
    KDF1,
    KDF2,
    KDF3,
    AEAD_decrypt,
    DecryptError,
    DH_generate,
)
from gateway.links.wireguard.messages import (
    Initiation,
    Response,
    pack_initiation,
    pack_response,
)

INITIAL_CHAINING_KEY = HASH(CONSTRUCTION)
INITIAL_HASH = HASH(INITIAL_CHAINING_KEY + IDENTIFIER)
ZERO_PSK = bytes(KEY_LEN)


class HandshakeError(ValueError):
    """A handshake message that does not authenticate or does not fit the state."""


@dataclass(slots=True)
class NoiseState:
    chaining_key: bytes
    hash: bytes

    def mix_hash(self, data: bytes) -> None:
        self.hash = HASH(self.hash + data)


class StaticIdentity:
    """Our long-term key pair, with the X25519 object kept for repeated DH."""

    __slots__ = ("private_key", "public_key", "_private")

    def __init__(self, private_key: bytes) -> None:
        self._private, self.public_key = DH_generate(private_key)
        self.private_key = private_key

    def dh(self, public_key: bytes) -> bytes:
        return DH(self._private, public_key)


def initial_state(responder_public: bytes, prologue: bytes = IDENTIFIER) -> NoiseState:
    """Ci = HASH(CONSTRUCTION); Hi = HASH(HASH(Ci || prologue) || responder's static)."""
    if prologue == IDENTIFIER:
        h = INITIAL_HASH
    else:
        h = HASH(INITIAL_CHAINING_KEY + prologue)
    return NoiseState(INITIAL_CHAINING_KEY, HASH(h + responder_public))


# -- the Noise steps -------------------------------------------------------------------

def write_initiation(state: NoiseState, initiator: StaticIdentity, responder_public: bytes,
                     ephemeral_private: X25519PrivateKey, ephemeral_public: bytes, payload: bytes,
                     static_static: bytes | None = None) -> tuple[bytes, bytes]:
    """-> e, es, s, ss, {payload}; returns (encrypted static, encrypted payload)."""
    state.chaining_key = KDF1(state.chaining_key, ephemeral_public)
    state.mix_hash(ephemeral_public)
    state.chaining_key, key = KDF2(state.chaining_key, DH(ephemeral_private, responder_public))
    encrypted_static = AEAD(key, 0, initiator.public_key, state.hash)
    state.mix_hash(encrypted_static)
    ss = static_static if static_static is not None else initiator.dh(responder_public)
    state.chaining_key, key = KDF2(state.chaining_key, ss)
    encrypted_payload = AEAD(key, 0, payload, state.hash)
    state.mix_hash(encrypted_payload)
    return encrypted_static, encrypted_payload


def read_initiation_static(state: NoiseState, responder: StaticIdentity, ephemeral_public: bytes,
                           encrypted_static: bytes) -> bytes:
    """First half of reading message 1: returns the initiator's static public key."""
    state.chaining_key = KDF1(state.chaining_key, ephemeral_public)
    state.mix_hash(ephemeral_public)
    state.chaining_key, key = KDF2(state.chaining_key, responder.dh(ephemeral_public))
    initiator_public = AEAD_decrypt(key, 0, encrypted_static, state.hash)
    state.mix_hash(encrypted_static)
    return initiator_public


def read_initiation_payload(state: NoiseState, static_static: bytes, encrypted_payload: bytes) -> bytes:
    """Second half: once the initiator is known (and its ss precomputed), the payload."""
    state.chaining_key, key = KDF2(state.chaining_key, static_static)
    payload = AEAD_decrypt(key, 0, encrypted_payload, state.hash)
    state.mix_hash(encrypted_payload)
    return payload


def write_response(state: NoiseState, ephemeral_private: X25519PrivateKey, ephemeral_public: bytes,
                   initiator_ephemeral: bytes, initiator_public: bytes, psk: bytes,
                   payload: bytes = b"") -> bytes:
    """<- e, ee, se, psk, {payload}; returns the encrypted payload."""
    state.chaining_key = KDF1(state.chaining_key, ephemeral_public)
    state.mix_hash(ephemeral_public)
    state.chaining_key = KDF1(state.chaining_key, DH(ephemeral_private, initiator_ephemeral))
    state.chaining_key = KDF1(state.chaining_key, DH(ephemeral_private, initiator_public))
    state.chaining_key, tau, key = KDF3(state.chaining_key, psk)
    state.mix_hash(tau)
    encrypted = AEAD(key, 0, payload, state.hash)
    state.mix_hash(encrypted)
    return encrypted


def read_response(state: NoiseState, initiator: StaticIdentity, ephemeral_private: X25519PrivateKey,
                  responder_ephemeral: bytes, encrypted_payload: bytes, psk: bytes) -> bytes:
    state.chaining_key = KDF1(state.chaining_key, responder_ephemeral)
    state.mix_hash(responder_ephemeral)
    state.chaining_key = KDF1(state.chaining_key, DH(ephemeral_private, responder_ephemeral))
    state.chaining_key = KDF1(state.chaining_key, initiator.dh(responder_ephemeral))
    state.chaining_key, tau, key = KDF3(state.chaining_key, psk)
    state.mix_hash(tau)
    payload = AEAD_decrypt(key, 0, encrypted_payload, state.hash)
    state.mix_hash(encrypted_payload)
    return payload


def split(state: NoiseState) -> tuple[bytes, bytes]:
    """(initiator's sending key, responder's sending key) = KDF2(C, empty)."""
    return KDF2(state.chaining_key, b"")


# -- WireGuard's per-peer handshake ----------------------------------------------------

class HandshakeStage(enum.Enum):
    NONE = 0
    INITIATION_CREATED = 1
    INITIATION_CONSUMED = 2
    RESPONSE_CREATED = 3
    RESPONSE_CONSUMED = 4


@dataclass(slots=True)
class SessionKeys:
    """What a finished handshake hands to the session layer."""

    send_key: bytes
    receive_key: bytes
    local_index: int
    remote_index: int
    is_initiator: bool


class Handshake:
    """The handshake with one peer, in either role.

    ``last_timestamp`` is the greatest TAI64N accepted from this peer: an initiation whose
    timestamp is not strictly greater is a replay and is refused (paper section 5.1).
    """

    __slots__ = ("identity", "peer_public", "psk", "static_static", "stage", "state", "local_index",
                 "remote_index", "ephemeral_private", "ephemeral_public", "remote_ephemeral",
                 "last_timestamp", "last_initiation_consumed_at", "last_initiation_sent_at")

    def __init__(self, identity: StaticIdentity, peer_public: bytes, psk: bytes | None = None) -> None:
        self.identity = identity
        self.peer_public = peer_public
        self.psk = psk or ZERO_PSK
        self.static_static = identity.dh(peer_public)
        self.stage = HandshakeStage.NONE
        self.state: NoiseState | None = None
        self.local_index = 0
        self.remote_index = 0
        self.ephemeral_private: X25519PrivateKey | None = None
        self.ephemeral_public = b""
        self.remote_ephemeral = b""
        self.last_timestamp = bytes(12)
        self.last_initiation_consumed_at: float | None = None
        self.last_initiation_sent_at: float | None = None

    def clear(self) -> None:
        """Forget the ephemeral state (not the replay timestamp)."""
        self.stage = HandshakeStage.NONE
        self.state = None
        self.ephemeral_private = None
        self.ephemeral_public = b""
        self.remote_ephemeral = b""

    # initiator
    def create_initiation(self, local_index: int, ephemeral_secret: bytes, timestamp: bytes) -> bytearray:
        """Message 1 with zero MACs (the cookie layer adds them)."""
        state = initial_state(self.peer_public)
        private, public = DH_generate(ephemeral_secret)
        encrypted_static, encrypted_timestamp = write_initiation(
            state, self.identity, self.peer_public, private, public, timestamp, self.static_static)
        self.state = state
        self.ephemeral_private, self.ephemeral_public = private, public
        self.local_index = local_index
        self.stage = HandshakeStage.INITIATION_CREATED
        return pack_initiation(local_index, public, encrypted_static, encrypted_timestamp)

    def consume_response(self, message: Response) -> SessionKeys:
        if self.stage is not HandshakeStage.INITIATION_CREATED or message.receiver != self.local_index:
            raise HandshakeError("response does not match an initiation in flight")
        assert self.state is not None and self.ephemeral_private is not None
        state = NoiseState(self.state.chaining_key, self.state.hash)
        try:
            read_response(state, self.identity, self.ephemeral_private, message.ephemeral,
                          message.encrypted_nothing, self.psk)
        except DecryptError as e:
            raise HandshakeError("response does not authenticate") from e
        send, receive = split(state)
        keys = SessionKeys(send, receive, self.local_index, message.sender, True)
        self.remote_index = message.sender
        self.clear()
        self.stage = HandshakeStage.RESPONSE_CONSUMED
        return keys

    # responder
    def consume_initiation(self, state: NoiseState, message: Initiation, now: float,
                           min_interval: float) -> bytes:
        """Finish reading an initiation whose static key named this peer; returns its timestamp.

        ``state`` is the state after ``read_initiation_static``.  Refuses replayed or
        stale timestamps and initiations coming faster than ``min_interval``.
        """
        try:
            timestamp = read_initiation_payload(state, self.static_static, message.encrypted_timestamp)
        except DecryptError as e:
            raise HandshakeError("initiation payload does not authenticate") from e
        if timestamp <= self.last_timestamp:
            raise StaleTimestamp("initiation timestamp is not newer than the last one")
        if (self.last_initiation_consumed_at is not None
                and now - self.last_initiation_consumed_at < min_interval):
            raise InitiationFlood("initiations from this peer come too fast")
        self.last_timestamp = timestamp
        self.last_initiation_consumed_at = now
        self.state = state
        self.remote_ephemeral = message.ephemeral
        self.remote_index = message.sender
        self.stage = HandshakeStage.INITIATION_CONSUMED
        return timestamp

    def create_response(self, local_index: int, ephemeral_secret: bytes) -> tuple[bytearray, SessionKeys]:
        if self.stage is not HandshakeStage.INITIATION_CONSUMED:
            raise HandshakeError("no initiation to respond to")
        assert self.state is not None
        private, public = DH_generate(ephemeral_secret)
        encrypted = write_response(self.state, private, public, self.remote_ephemeral, self.peer_public,
                                   self.psk)
        self.local_index = local_index
        message = pack_response(local_index, self.remote_index, public, encrypted)
        initiator_send, responder_send = split(self.state)
        keys = SessionKeys(responder_send, initiator_send, local_index, self.remote_index, False)
        self.clear()
        self.stage = HandshakeStage.RESPONSE_CREATED
        return message, keys


class StaleTimestamp(HandshakeError):
    """A replayed initiation (or one older than the last accepted)."""


class InitiationFlood(HandshakeError):
    """Initiations from one peer faster than HANDSHAKE_INITIATION_RATE."""


def begin_initiation_read(identity: StaticIdentity, message: Initiation) -> tuple[NoiseState, bytes]:
    """Decrypt who an initiation claims to be from; the device then looks that key up."""
    state = initial_state(identity.public_key)
    try:
        initiator_public = read_initiation_static(state, identity, message.ephemeral,
                                                  message.encrypted_static)
    except DecryptError as e:
        raise HandshakeError("initiation static does not authenticate") from e
    return state, initiator_public
