"""UDP parsing and building (RFC 768; RFC 8200 8.1 for IPv6), and the flow table.

Over IPv4 a zero checksum means "none sent"; over IPv6 the checksum is mandatory and a
zero one is dropped.  A length field shorter than the IP payload trims the datagram
(trailing bytes are not data); a longer one is a truncated datagram and is dropped.

Flows are what the owner sees as UDP "connections": the datagrams of one 4-tuple, both
ways.  They end after an idle timeout, so the owner can release whatever it holds per flow
(an upstream socket); the table is bounded, the oldest flow making room for a new one.
"""

from __future__ import annotations

import struct
from collections import OrderedDict

from netstack.checksum import ones_sum, pseudo_header_sum
from netstack.counters import Counters
from netstack.errors import PacketError

HEADER = struct.Struct("!HHHH")
HEADER_LEN = 8
PROTO_UDP = 17

FlowKey = tuple[bytes, int, bytes, int]
"""(client ip, client port, destination ip, destination port), addresses packed."""


def parse_udp(
    payload: memoryview, src: bytes, dst: bytes, verify: bool, ipv6: bool
) -> tuple[int, int, memoryview]:
    """Return (source port, destination port, data); raise ``PacketError`` on bad datagrams."""
    n = len(payload)
    if n < HEADER_LEN:
        raise PacketError("udp.truncated")
    sport, dport, length, csum = HEADER.unpack_from(payload)
    if length < HEADER_LEN:
        raise PacketError("udp.bad_length")
    if length > n:
        raise PacketError("udp.truncated")
    if length < n:
        payload = payload[:length]
    if csum == 0:
        if ipv6:
            raise PacketError("udp.zero_checksum_ipv6")
    elif verify and ones_sum(payload, pseudo_header_sum(src, dst, PROTO_UDP, length)) != 0xFFFF:
        raise PacketError("udp.bad_checksum")
    if dport == 0:
        raise PacketError("udp.port_zero")
    return sport, dport, payload[HEADER_LEN:]


def build_udp(sport: int, dport: int, data: bytes | memoryview, src: bytes, dst: bytes) -> bytes:
    """A UDP header + data with its checksum (never 0: 0xFFFF stands in, RFC 768)."""
    length = HEADER_LEN + len(data)
    if length > 0xFFFF:
        raise ValueError(f"UDP datagram too large: {length}")
    hdr = HEADER.pack(sport, dport, length, 0)
    s = ones_sum(data, ones_sum(hdr, pseudo_header_sum(src, dst, PROTO_UDP, length)))
    csum = (~s) & 0xFFFF or 0xFFFF
    return HEADER.pack(sport, dport, length, csum) + bytes(data)


class UdpFlows:
    """Flows by 4-tuple in order of last use, with an idle timeout and a size bound."""

    def __init__(self, counters: Counters, *, idle_timeout: float, max_flows: int) -> None:
        self.counters = counters
        self.idle_timeout = idle_timeout
        self.max_flows = max_flows
        self._last: OrderedDict[FlowKey, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._last)

    def __contains__(self, key: FlowKey) -> bool:
        return key in self._last

    def touch(self, key: FlowKey, now: float) -> tuple[bool, FlowKey | None]:
        """Record use of a flow; returns (is new, flow evicted to make room or None)."""
        last = self._last
        if key in last:
            last[key] = now
            last.move_to_end(key)
            return False, None
        evicted = None
        if len(last) >= self.max_flows:
            evicted, _t = last.popitem(last=False)
            self.counters["udp.flow_evicted"] += 1
        last[key] = now
        return True, evicted

    def remove(self, key: FlowKey) -> bool:
        return self._last.pop(key, None) is not None

    def next_timer(self) -> float | None:
        for t in self._last.values():
            return t + self.idle_timeout
        return None

    def expire(self, now: float) -> list[FlowKey]:
        out = []
        limit = now - self.idle_timeout
        last = self._last
        while last:
            key, t = next(iter(last.items()))
            if t > limit:
                break
            del last[key]
            out.append(key)
        return out
