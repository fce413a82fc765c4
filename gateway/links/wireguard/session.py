"""Transport keypairs and their rotation: current, previous and next (paper section 6).

A keypair is what one handshake produced: a sending and a receiving ChaCha20Poly1305
key, our index (receivers address us by it) and the peer's, a 64-bit sending counter
and a replay window for the receiving side.

Rotation follows wireguard-go's ``BeginSymmetricSession`` / ``ReceivedWithKeypair``:
the initiator may use a new keypair at once (it has seen the response), so it becomes
``current`` and the old one ``previous``; the responder parks it in ``next`` until the
first transport packet under it arrives, which proves the initiator has it too.
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from gateway.links.wireguard.replay import ReplayWindow


class Keypair:
    __slots__ = ("send", "receive", "local_index", "remote_index", "created", "is_initiator",
                 "send_counter", "replay", "peer")

    def __init__(self, send_key: bytes, receive_key: bytes, local_index: int, remote_index: int,
                 created: float, is_initiator: bool, peer: Any) -> None:
        self.send = ChaCha20Poly1305(send_key)
        self.receive = ChaCha20Poly1305(receive_key)
        self.local_index = local_index
        self.remote_index = remote_index
        self.created = created
        self.is_initiator = is_initiator
        self.send_counter = 0
        self.replay = ReplayWindow()
        self.peer = peer


class Keypairs:
    """The three slots of one peer.  ``index_table`` is the device's index -> owner map."""

    __slots__ = ("current", "previous", "next", "index_table")

    def __init__(self, index_table: dict[int, Any]) -> None:
        self.current: Keypair | None = None
        self.previous: Keypair | None = None
        self.next: Keypair | None = None
        self.index_table = index_table

    def _forget(self, keypair: Keypair | None) -> None:
        if keypair is not None and self.index_table.get(keypair.local_index) is keypair:
            del self.index_table[keypair.local_index]

    def install(self, keypair: Keypair) -> None:
        """A handshake just finished; the keypair's index is already in the table."""
        if keypair.is_initiator:
            if self.next is not None:
                self._forget(self.previous)
                self.previous = self.next
                self._forget(self.current)
                self.next = None
            else:
                self._forget(self.previous)
                self.previous = self.current
            self.current = keypair
        else:
            self._forget(self.next)
            self.next = keypair
            self._forget(self.previous)
            self.previous = None

    def received_with(self, keypair: Keypair) -> bool:
        """A packet authenticated under ``keypair``; True if that confirmed ``next``."""
        if keypair is not self.next:
            return False
        self._forget(self.previous)
        self.previous = self.current
        self.current = keypair
        self.next = None
        return True

    def clear(self) -> None:
        for keypair in (self.current, self.previous, self.next):
            self._forget(keypair)
        self.current = self.previous = self.next = None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(k for k in (self.current, self.previous, self.next) if k is not None)
