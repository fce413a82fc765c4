"""Transport sealing against the paper's construction, written out independently here:
type 4, reserved zeros, receiver index and counter little-endian, then ChaCha20Poly1305
under the counter nonce of the packet zero-padded to 16 (capped at the MTU)."""

import os
import struct

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from gateway.links.wireguard.session import Keypair
from gateway.links.wireguard.transport import open_sealed, seal

MTU = 1420


def expected(key: bytes, remote_index: int, counter: int, packet: bytes) -> bytes:
    size = len(packet)
    last = size % MTU if size > MTU else size
    pad = min(-last % 16, MTU - last) if size else 0
    nonce = bytes(4) + struct.pack("<Q", counter)
    return (b"\x04\x00\x00\x00" + struct.pack("<I", remote_index) + struct.pack("<Q", counter)
            + ChaCha20Poly1305(key).encrypt(nonce, packet + bytes(pad), None))


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 40, 1379, 1404, 1415, 1419, 1420, 1425, 3000])
def test_seal_matches_the_construction(size: int) -> None:
    send, receive = os.urandom(32), os.urandom(32)
    ours = Keypair(send, receive, 7, 0x01020304, 0.0, True, None)
    theirs = Keypair(receive, send, 0x01020304, 7, 0.0, False, None)
    packet = os.urandom(size)
    for counter in range(3):
        datagram = seal(ours, packet, MTU)
        assert bytes(datagram) == expected(send, 0x01020304, counter, packet)
        plain = open_sealed(theirs, bytes(datagram), counter)
        assert plain is not None and plain[:size] == packet and not any(plain[size:])
    assert ours.send_counter == 3


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_seal_takes_any_buffer(kind: type) -> None:
    key = os.urandom(32)
    kp = Keypair(key, os.urandom(32), 1, 2, 0.0, True, None)
    packet = os.urandom(101)
    assert bytes(seal(kp, kind(packet), MTU)) == expected(key, 2, 0, packet)


def test_tampered_datagram_does_not_open() -> None:
    send, receive = os.urandom(32), os.urandom(32)
    ours = Keypair(send, receive, 7, 9, 0.0, True, None)
    theirs = Keypair(receive, send, 9, 7, 0.0, False, None)
    datagram = bytearray(seal(ours, b"\x45" + bytes(39), MTU))
    datagram[20] ^= 1
    assert open_sealed(theirs, bytes(datagram), 0) is None
