"""A small longest-prefix table from IP prefixes to peers (the cryptokey routing table).

The same table answers both questions of the paper's section 3: "which peer does this
destination go to?" when sending, and "may this peer use this source?" after decrypting
(the answer is yes only if the source's longest match is that very peer, which is how a
peer is kept from spoofing another's addresses).

Lookups are one dict probe per prefix length present, on integers; a gateway has a
handful of lengths (/32 and /128 for phones), so this is a few probes per packet.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Family(Generic[T]):
    __slots__ = ("bits", "by_length", "lengths")

    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.by_length: dict[int, dict[int, T]] = {}
        self.lengths: list[int] = []

    def insert(self, network: Network, value: T) -> None:
        length = network.prefixlen
        table = self.by_length.get(length)
        if table is None:
            table = self.by_length[length] = {}
            self.lengths = sorted(self.by_length, reverse=True)
        table[int(network.network_address) >> (self.bits - length)] = value

    def lookup(self, address: int) -> T | None:
        bits = self.bits
        for length in self.lengths:
            value = self.by_length[length].get(address >> (bits - length))
            if value is not None:
                return value
        return None

    def remove_value(self, value: T) -> None:
        for length in list(self.by_length):
            table = self.by_length[length]
            for key in [k for k, v in table.items() if v is value]:
                del table[key]
            if not table:
                del self.by_length[length]
        self.lengths = sorted(self.by_length, reverse=True)

    def items(self) -> Iterator[tuple[Network, T]]:
        make = ipaddress.IPv4Network if self.bits == 32 else ipaddress.IPv6Network
        for length, table in self.by_length.items():
            for key, value in table.items():
                yield make((key << (self.bits - length), length)), value


class AllowedIPs(Generic[T]):
    __slots__ = ("v4", "v6")

    def __init__(self) -> None:
        self.v4: _Family[T] = _Family(32)
        self.v6: _Family[T] = _Family(128)

    def insert(self, network: str | Network, value: T) -> None:
        """Add a prefix; a prefix already present moves to ``value`` (as in `wg set`)."""
        net = ipaddress.ip_network(network, strict=False)
        (self.v4 if net.version == 4 else self.v6).insert(net, value)

    def remove_value(self, value: T) -> None:
        self.v4.remove_value(value)
        self.v6.remove_value(value)

    def lookup_v4(self, address: bytes) -> T | None:
        return self.v4.lookup(int.from_bytes(address, "big"))

    def lookup_v6(self, address: bytes) -> T | None:
        return self.v6.lookup(int.from_bytes(address, "big"))

    def lookup(self, address: str | bytes) -> T | None:
        if isinstance(address, str):
            address = ipaddress.ip_address(address).packed
        return self.lookup_v4(address) if len(address) == 4 else self.lookup_v6(address)

    def prefixes_of(self, value: T) -> list[Network]:
        found: list[Network] = [n for n, v in self.v4.items() if v is value]
        found += [n for n, v in self.v6.items() if v is value]
        return found
