"""Tunables of the TCP core, one ``TcpConfig`` shared by the connections of a stack."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

IPV4_HEADER = 20
IPV6_HEADER = 40
TCP_HEADER = 20
CONGESTION_CONTROLS = ("bbr", "cubic", "newreno", "westwood")


def default_congestion_control() -> str:
    """``NETSTACK_TCP_CC`` when set (as a sysctl would: benchmarks compare controllers on the
    same gateway without code changes), else ``DEFAULT_CONGESTION_CONTROL``."""
    name = os.environ.get("NETSTACK_TCP_CC", "").strip().lower()
    return name if name in CONGESTION_CONTROLS else DEFAULT_CONGESTION_CONTROL


# BBR by measurement (tests/netstack/tcp/sim_matrix.txt; scripts/bench-wireguard --cc bbr,cubic):
# a phone's link loses packets at random, and a loss-based controller reads each loss as
# congestion.  Lab, 200 MB download through the seeded relay, our TCP sending (MB/s, BBR vs
# CUBIC, one run): 20 ms each way 32.1 vs 14.5, 1% loss 42.2 vs 18.5, 5% loss 39.7 vs 1.6
# (CUBIC did not finish in 60 s).  The cost: on the clean relayed path BBR measured 35-56
# and CUBIC 39-59 over five runs (BBR's probing overruns the phone's wireguard-go socket
# buffer more often), a per-segment record for the delivery-rate sampler (~1.3x CPU per sent
# segment in ``bench-netstack-sim --cpu``), and less deference to loss-based flows in a
# shared queue.
DEFAULT_CONGESTION_CONTROL = "bbr"


@dataclass(slots=True)
class TcpConfig:
    """Defaults suit an interception gateway in front of phones (40 ms RTT, some loss).

    ``mss`` is what we announce and the ceiling of what we send: derive it from the link
    MTU with ``TcpConfig.for_mtu`` so segments never need IP fragmentation.
    ``send_buffer`` is what the application may queue (sent and unsent); it grows to twice the
    congestion window, up to ``send_buffer_max``, so a large window is never starved by it.
    ``recv_buffer`` is the most a connection will buffer for a slow reader (it also fixes
    the window scale); the advertised window starts at ``recv_buffer_initial`` and grows
    with the measured delivery rate (auto-tuning) when ``recv_autotune`` is on.
    ``congestion_control`` defaults to BBR (or ``NETSTACK_TCP_CC``): on a lossy phone link
    CUBIC cuts its window at every random loss and collapses (1.6 MB/s at 5% loss in the lab,
    where BBR kept 39.7); BBR models bandwidth and RTT instead and ignores random loss below
    a 20% ceiling.  The figures and the costs are beside DEFAULT_CONGESTION_CONTROL.
    """

    mss: int = 1460
    recv_buffer: int = 4 << 20
    recv_buffer_initial: int = 256 << 10
    recv_autotune: bool = True
    send_buffer: int = 1 << 20
    send_buffer_max: int = 8 << 20  # the send buffer grows to 2 x cwnd up to this
    send_low_water: int = 256 << 10
    window_scaling: bool = True
    timestamps: bool = True
    sack: bool = True
    nagle: bool = False
    delayed_ack: bool = True
    delayed_ack_timeout: float = 0.040
    quickack_segments: int = 16  # ACK the first segments at once, to speed up the peer's slow start
    keepalive: bool = True
    keepalive_idle: float = 600.0
    keepalive_interval: float = 75.0
    keepalive_count: int = 9
    rto_initial: float = 1.0
    rto_min: float = 0.2
    rto_max: float = 120.0
    max_retries: int = 12
    syn_retries: int = 5
    persist_min: float = 0.2
    persist_max: float = 60.0
    time_wait: float = 30.0
    congestion_control: str = field(default_factory=default_congestion_control)
    """"cubic" (RFC 9438), "newreno" (RFC 5681/6582), "westwood" (Westwood+) or "bbr"."""
    initial_cwnd_segments: int = 10
    hystart: bool = True
    loss_tolerant: bool = False
    """Never cut the window below the measured bandwidth-delay product on a loss (a Westwood+
    floor under CUBIC/NewReno): about doubles throughput on a link with random 1-10% loss
    (see tests/netstack/tcp/sim_matrix.txt), at some cost in fairness on a congested one."""
    pacing: bool = True
    """Release data at the congestion controller's pacing rate (Linux's 2x / 1.2x cwnd per RTT
    for CUBIC/NewReno, the model's rate for BBR) in ~1 ms bursts instead of whole windows at
    line rate: bursts overflow shallow queues (a phone's radio, wireguard-go's socket buffer)
    and turn into losses the path itself would not have."""
    max_ooo_ranges: int = 256
    challenge_ack_limit: int = 10
    default_peer_mss: int = 536

    @classmethod
    def for_mtu(cls, mtu: int, ipv6: bool = False, **kwargs: object) -> TcpConfig:
        """A config whose MSS fits ``mtu`` (the link's MTU) without fragmentation."""
        mss = mtu - (IPV6_HEADER if ipv6 else IPV4_HEADER) - TCP_HEADER
        return cls(mss=mss, **kwargs)  # type: ignore[arg-type]

    def window_shift(self) -> int:
        """The window scale we announce: the smallest shift that can express ``recv_buffer``."""
        shift = 0
        while shift < 14 and (self.recv_buffer >> shift) > 0xFFFF:
            shift += 1
        return shift
