"""Initial sequence numbers per RFC 6528: ISN = M + F(4-tuple, secret).

M is a 4-microsecond clock, F a keyed hash (BLAKE2s keyed with a per-process random
secret) of the local and remote address and port, so ISNs of one 4-tuple grow with time
(old duplicates stay out of the new window) while other tuples' ISNs are unpredictable.
"""

from __future__ import annotations

import hashlib
import os
import struct

_SECRET = os.urandom(32)
_PORTS = struct.Struct("!HH")


def new_iss(local: tuple[bytes, int], remote: tuple[bytes, int], now: float) -> int:
    """An RFC 6528 initial sequence number for the connection ``local`` <-> ``remote``."""
    h = hashlib.blake2s(key=_SECRET, digest_size=4)
    h.update(local[0])
    h.update(remote[0])
    h.update(_PORTS.pack(local[1], remote[1]))
    return (int(now * 250_000) + int.from_bytes(h.digest(), "big")) & 0xFFFFFFFF
