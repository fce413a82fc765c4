"""MAC1, MAC2 and cookie replies (paper section 5.3 and 5.4.7).

Every handshake message carries MAC1, keyed with a hash of the receiver's public key:
anyone can compute it who knows whom they talk to, so a responder drops datagrams from
people who do not even know its key before doing any Curve25519 work.  Under load the
responder additionally demands MAC2, keyed with a cookie it hands out in an encrypted
cookie reply; the cookie is a MAC of the sender's IP address and port under a secret that
rotates every two minutes, so getting one proves the sender can receive at that address.

``CookieChecker`` is our side as a receiver of handshakes (one per device);
``CookieGenerator`` is our side as a sender to one peer (one per peer).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from gateway.links.wireguard.constants import COOKIE_NONCE_LEN, LABEL_COOKIE, LABEL_MAC1, MAC_LEN
from gateway.links.wireguard.crypto import HASH, MAC, XAEAD, DecryptError, XAEAD_decrypt
from gateway.links.wireguard.messages import (
    CookieReply,
    pack_cookie_reply,
)


def _mac_offsets(message: bytes | bytearray) -> tuple[int, int]:
    end = len(message)
    return end - 2 * MAC_LEN, end - MAC_LEN


class CookieChecker:
    __slots__ = ("mac1_key", "cookie_key", "secret", "secret_born", "refresh", "rng")

    def __init__(self, our_public: bytes, rng: Callable[[int], bytes], refresh: float) -> None:
        self.mac1_key = HASH(LABEL_MAC1 + our_public)
        self.cookie_key = HASH(LABEL_COOKIE + our_public)
        self.secret = b""
        self.secret_born = float("-inf")
        self.refresh = refresh
        self.rng = rng

    def check_mac1(self, message: bytes) -> bool:
        mac1_at, mac2_at = _mac_offsets(message)
        return hmac.compare_digest(MAC(self.mac1_key, message[:mac1_at]), message[mac1_at:mac2_at])

    def _cookie(self, source: bytes, now: float) -> bytes:
        if now - self.secret_born >= self.refresh:
            self.secret = self.rng(32)
            self.secret_born = now
        return MAC(self.secret, source)

    def check_mac2(self, message: bytes, source: bytes, now: float) -> bool:
        if now - self.secret_born >= self.refresh:
            return False  # no cookie handed out under the current secret
        _, mac2_at = _mac_offsets(message)
        cookie = MAC(self.secret, source)
        return hmac.compare_digest(MAC(cookie, message[:mac2_at]), message[mac2_at:])

    def create_reply(self, message: bytes, receiver_index: int, source: bytes, now: float) -> bytes:
        mac1_at, mac2_at = _mac_offsets(message)
        cookie = self._cookie(source, now)
        nonce = self.rng(COOKIE_NONCE_LEN)
        encrypted = XAEAD(self.cookie_key, nonce, cookie, message[mac1_at:mac2_at])
        return pack_cookie_reply(receiver_index, nonce, encrypted)


class CookieGenerator:
    __slots__ = ("mac1_key", "cookie_key", "cookie", "cookie_received_at", "last_mac1", "refresh")

    def __init__(self, peer_public: bytes, refresh: float) -> None:
        self.mac1_key = HASH(LABEL_MAC1 + peer_public)
        self.cookie_key = HASH(LABEL_COOKIE + peer_public)
        self.cookie = b""
        self.cookie_received_at = float("-inf")
        self.last_mac1 = b""
        self.refresh = refresh

    def add_macs(self, message: bytearray, now: float) -> bytearray:
        """Fill MAC1 (always) and MAC2 (while we hold a fresh cookie) in place."""
        mac1_at, mac2_at = _mac_offsets(message)
        mac1 = MAC(self.mac1_key, bytes(message[:mac1_at]))
        message[mac1_at:mac2_at] = mac1
        self.last_mac1 = mac1
        if self.cookie and now - self.cookie_received_at < self.refresh:
            message[mac2_at:] = MAC(self.cookie, bytes(message[:mac2_at]))
        else:
            message[mac2_at:] = bytes(MAC_LEN)
        return message

    def consume_reply(self, reply: CookieReply, now: float) -> bool:
        if not self.last_mac1:
            return False
        try:
            cookie = XAEAD_decrypt(self.cookie_key, reply.nonce, reply.encrypted_cookie, self.last_mac1)
        except DecryptError:
            return False
        self.cookie = cookie
        self.cookie_received_at = now
        return True
