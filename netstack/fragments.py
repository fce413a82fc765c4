"""IP fragment reassembly (RFC 791, RFC 8200 4.5) and fragmentation of outgoing packets.

Reassembly is where a stack is easiest to exhaust, so everything is bounded: bytes held
over all datagrams, the number of datagrams in progress, fragments per datagram, and the
time a datagram may take (30 s for IPv4 like Linux, 60 s for IPv6 per RFC 8200).  When a
bound is hit the oldest datagram in progress is evicted.

Overlapping fragments discard the whole datagram, for IPv6 as RFC 5722 requires and for
IPv4 too (as Linux has done since 2018): overlaps are how teardrop-style attacks and
IDS evasion work, and no honest sender produces them.  Exact duplicates (the network
duplicating a fragment) are dropped alone, as RFC 8200 allows.  A discarded datagram stays
as a tombstone until its timeout so its remaining fragments are dropped as well.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

from netstack.counters import Counters
from netstack.ipv4 import HEADER_LEN as IPV4_HEADER_LEN
from netstack.ipv4 import build_ipv4_header
from netstack.ipv6 import FRAGMENT, NH_FRAGMENT, build_ipv6_header

MAX_DATAGRAM = 0xFFFF


class _Datagram:
    __slots__ = ("created", "frags", "total", "size", "first", "dead")

    def __init__(self, created: float) -> None:
        self.created = created
        self.frags: list[tuple[int, int, bytes]] = []
        self.total = -1
        self.size = 0
        self.first: object = None
        self.dead = False


class Reassembler:
    """Reassembly of one IP version's fragments, keyed by the caller.

    ``add`` returns ``(payload, first)`` once a datagram is complete, where ``first`` is
    whatever the caller passed along with the fragment at offset 0 (the IPv4 header, or
    the IPv6 unfragmentable part and next header).  ``expire`` returns the ``first`` of
    each datagram that timed out with its first fragment received, for the ICMP "fragment
    reassembly time exceeded" message.
    """

    def __init__(
        self,
        counters: Counters,
        prefix: str,
        *,
        timeout: float,
        max_bytes: int,
        max_datagrams: int,
        max_fragments: int,
        max_size: int = MAX_DATAGRAM,
    ) -> None:
        self.counters = counters
        self.prefix = prefix
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_datagrams = max_datagrams
        self.max_fragments = max_fragments
        self.max_size = max_size
        self.bytes = 0
        self._datagrams: OrderedDict[Hashable, _Datagram] = OrderedDict()

    def __len__(self) -> int:
        return len(self._datagrams)

    def _count(self, reason: str) -> None:
        self.counters[f"{self.prefix}.{reason}"] += 1

    def _kill(self, dg: _Datagram, reason: str) -> None:
        self._count(reason)
        self.bytes -= dg.size
        dg.frags = []
        dg.size = 0
        dg.first = None
        dg.dead = True

    def _evict_oldest(self, keep: _Datagram | None) -> bool:
        for key, dg in self._datagrams.items():
            if dg is not keep:
                del self._datagrams[key]
                self.bytes -= dg.size
                if not dg.dead:
                    self._count("evicted")
                return True
        return False

    def add(
        self,
        key: Hashable,
        offset: int,
        more: bool,
        data: bytes | memoryview,
        now: float,
        first: object = None,
    ) -> tuple[bytes, object] | None:
        length = len(data)
        end = offset + length
        if end > self.max_size:
            self._count("too_big")
            return None
        if more and (length == 0 or length & 7):
            self._count("bad_length")
            return None
        dg = self._datagrams.get(key)
        if dg is None:
            if len(self._datagrams) >= self.max_datagrams:
                self._evict_oldest(None)
            dg = _Datagram(now)
            self._datagrams[key] = dg
        if dg.dead:
            self._count("dead")
            return None
        if not more:
            if dg.total >= 0 and dg.total != end:
                self._kill(dg, "inconsistent")
                return None
            if any(e > end for _s, e, _d in dg.frags):
                self._kill(dg, "inconsistent")
                return None
            dg.total = end
        elif dg.total >= 0 and end > dg.total:
            self._kill(dg, "inconsistent")
            return None
        for s, e, d in dg.frags:
            if offset < e and s < end:
                if s == offset and e == end and d == data:
                    self._count("duplicate")
                    return None
                self._kill(dg, "overlap")
                return None
        if len(dg.frags) >= self.max_fragments:
            self._kill(dg, "too_many_fragments")
            return None
        dg.frags.append((offset, end, bytes(data)))
        dg.size += length
        self.bytes += length
        if offset == 0:
            dg.first = first
        if dg.total >= 0 and dg.size == dg.total:
            del self._datagrams[key]
            self.bytes -= dg.size
            dg.frags.sort()
            self.counters[f"rx.{self.prefix}.reassembled"] += 1
            return b"".join(d for _s, _e, d in dg.frags), dg.first
        while self.bytes > self.max_bytes and self._evict_oldest(dg):
            pass
        if self.bytes > self.max_bytes:
            # This datagram alone is over the limit.
            del self._datagrams[key]
            self.bytes -= dg.size
            self._count("evicted")
        return None

    def next_timer(self) -> float | None:
        for dg in self._datagrams.values():
            return dg.created + self.timeout
        return None

    def expire(self, now: float) -> list[object]:
        """Drop timed-out datagrams; return the ``first`` of those that had one."""
        firsts: list[object] = []
        limit = now - self.timeout
        while self._datagrams:
            key, dg = next(iter(self._datagrams.items()))
            if dg.created > limit:
                break
            del self._datagrams[key]
            self.bytes -= dg.size
            if not dg.dead:
                self._count("timeout")
                if dg.first is not None:
                    firsts.append(dg.first)
        return firsts


def fragment_ipv4(
    src: bytes,
    dst: bytes,
    proto: int,
    payload: bytes | memoryview,
    mtu: int,
    *,
    ident: int,
    ttl: int = 64,
    tos: int = 0,
) -> list[bytes]:
    """Split a payload too big for ``mtu`` into IPv4 fragments (DF clear)."""
    if len(payload) + IPV4_HEADER_LEN <= mtu:
        return [
            build_ipv4_header(src, dst, proto, len(payload), ttl=ttl, ident=ident, df=False, tos=tos)
            + bytes(payload)
        ]
    step = (mtu - IPV4_HEADER_LEN) & ~7
    if step <= 0:
        raise ValueError(f"MTU too small to fragment: {mtu}")
    view = memoryview(payload)
    out = []
    n = len(view)
    for off in range(0, n, step):
        chunk = view[off : off + step]
        more = off + step < n
        hdr = build_ipv4_header(
            src, dst, proto, len(chunk), ttl=ttl, ident=ident, df=False, mf=more, frag_offset=off, tos=tos
        )
        out.append(hdr + chunk)
    return out


def fragment_ipv6(
    src: bytes,
    dst: bytes,
    nh: int,
    payload: bytes | memoryview,
    mtu: int,
    *,
    ident: int,
    hop_limit: int = 64,
) -> list[bytes]:
    """Split an upper-layer payload into IPv6 fragments of at most ``mtu`` bytes (>= 1280)."""
    step = (mtu - 40 - 8) & ~7
    if step <= 0:
        raise ValueError(f"MTU too small to fragment: {mtu}")
    view = memoryview(payload)
    out = []
    n = len(view)
    for off in range(0, n, step):
        chunk = view[off : off + step]
        more = off + step < n
        fh = FRAGMENT.pack(nh, 0, off | (1 if more else 0), ident & 0xFFFFFFFF)
        out.append(build_ipv6_header(src, dst, NH_FRAGMENT, 8 + len(chunk), hop_limit=hop_limit) + fh + chunk)
    return out
