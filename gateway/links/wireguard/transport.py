"""Transport data messages (paper section 5.4.6): sealing, opening and the inner packet.

A transport message is the receiver's index, a 64-bit counter (also the AEAD nonce) and
the encrypted, zero-padded IP packet.  Padding to a multiple of 16 (capped at the MTU)
hides exact packet sizes; the receiver finds the real length in the IP header.  An empty
plaintext is a keepalive.
"""

from __future__ import annotations

import struct

from cryptography.exceptions import InvalidTag

from gateway.links.wireguard.constants import MESSAGE_TRANSPORT, PADDING_MULTIPLE
from gateway.links.wireguard.session import Keypair

HEADER = struct.Struct("<IIQ")
INDEX_COUNTER = struct.Struct("<IQ")
NONCE = struct.Struct("<4xQ")
_U16 = struct.Struct(">H")
TAG_LEN = 16


def _padding(size: int, mtu: int) -> int:
    """Zero bytes to append: up to a multiple of 16, without passing the MTU."""
    if not size:
        return 0
    last = size % mtu if size > mtu else size
    target = min((last + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1), mtu)
    return target - last if target > last else 0


def padded(packet: bytes, mtu: int) -> bytes:
    pad = _padding(len(packet), mtu)
    return bytes(packet) + bytes(pad) if pad else packet


def seal(keypair: Keypair, packet: bytes, mtu: int) -> bytearray:
    """The transport datagram for ``packet`` under the keypair's next counter.

    The ciphertext is written straight behind the header in one buffer (``encrypt_into``)
    instead of concatenating a header and a fresh ciphertext: one allocation and copy of
    the packet fewer, on the path every byte sent to a peer takes.
    """
    counter = keypair.send_counter
    keypair.send_counter = counter + 1
    size = len(packet)
    pad = _padding(size, mtu)
    out = bytearray(HEADER.size + size + pad + TAG_LEN)
    HEADER.pack_into(out, 0, MESSAGE_TRANSPORT, keypair.remote_index, counter)
    keypair.send.encrypt_into(NONCE.pack(counter), bytes(packet) + bytes(pad) if pad else packet, None,
                              memoryview(out)[HEADER.size:])
    return out


def open_sealed(keypair: Keypair, datagram: bytes, counter: int) -> bytes | None:
    """The plaintext, or None when it does not authenticate."""
    try:
        return keypair.receive.decrypt(NONCE.pack(counter), memoryview(datagram)[16:], None)
    except InvalidTag:
        return None


def inner_packet(plaintext: bytes) -> tuple[bytes, bytes] | None:
    """(packet without padding, source address) of a decrypted IPv4/IPv6 packet, or None.

    Only the header fields needed to route are read: the AEAD already vouched for every
    byte, so checksums are not verified again here (the kernel skips them too).
    """
    size = len(plaintext)
    version = plaintext[0] >> 4
    if version == 4 and size >= 20:
        length = _U16.unpack_from(plaintext, 2)[0]
        source = plaintext[12:16]
    elif version == 6 and size >= 40:
        length = 40 + _U16.unpack_from(plaintext, 4)[0]
        source = plaintext[8:24]
    else:
        return None
    if length > size or length < 20:
        return None
    return (plaintext if length == size else plaintext[:length]), source
