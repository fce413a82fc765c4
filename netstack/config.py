"""Tunables of a ``Stack``: the link, the limits, and what the stack answers itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from netstack.tcp.config import TcpConfig

EchoPolicy = Literal["any", "own", "owner", "none"]


@dataclass(slots=True)
class StackConfig:
    mtu: int = 1500
    """The link MTU: TCP MSS is clamped to it and larger outgoing datagrams fragmented."""
    addresses: tuple[str, ...] = ()
    """The stack's own addresses (for ``echo_reply="own"`` and as the source of ICMP errors
    about packets that were not addressed to anyone in particular)."""
    echo_reply: EchoPolicy = "any"
    """Who answers pings: "any" destination is answered by the stack (an interception stack
    impersonates every destination), "own" addresses only, "owner" asks the owner with an
    ``IcmpEchoRequest`` event, "none" never."""
    ttl: int = 64
    """TTL / hop limit of packets the stack sends."""
    router_hop: bool = False
    """Act as one router hop before the impersonated destinations: packets arriving with
    TTL/hop limit <= 1 are answered with ICMP time exceeded (so traceroute shows the
    gateway).  Off by default: a host must not drop packets for a low TTL (RFC 1122)."""
    tcp: TcpConfig = field(default_factory=TcpConfig)
    """TCP tunables; ``mss`` is replaced per connection by the one the MTU allows."""
    max_half_open: int = 1024
    """SYNs waiting for the owner's answer plus connections in SYN-RECEIVED."""
    max_connections: int = 100_000
    max_time_wait: int = 16_384
    """Closed connections kept in TIME_WAIT to answer retransmitted FINs; beyond this the
    oldest are forgotten (like Linux's tcp_max_tw_buckets)."""
    tcp_request_timeout: float = 30.0
    """How long a SYN waits for the owner's accept/refuse/drop before it is dropped."""
    udp_idle_timeout: float = 60.0
    max_udp_flows: int = 65_536
    frag_timeout_v4: float = 30.0
    frag_timeout_v6: float = 60.0
    frag_max_bytes: int = 4 << 20
    frag_max_datagrams: int = 1024
    frag_max_fragments: int = 64
    icmp_error_rate: float = 100.0
    """ICMP errors per second (token bucket refill), across all destinations."""
    icmp_error_burst: float = 50.0
    rst_rate: float = 1000.0
    """RSTs per second for segments that match no connection (a scan must not become a
    reflected flood)."""
    rst_burst: float = 200.0
