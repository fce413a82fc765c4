"""Constants shared by the parts of ``TcpConnection``: wire arithmetic, the states, the
recovery modes, and the per-connection counters."""

from __future__ import annotations

import enum

MASK = 0xFFFFFFFF
HALF = 0x80000000
MOD = 0x100000000
PAWS_IDLE = 24 * 86400.0  # RFC 7323 5.5: ts_recent older than 24 days is invalid
_INF = float("inf")
# Bursts of schedule a connection may catch up after its timer fired late (a busy event loop)
# or after idling.  More lets a sender paced at the path's rate (BBR) recover what a stall
# cost, but makes larger bursts; 3 measured no better than 1 in the lab (bench-wireguard).
PACING_CREDIT = 1
PACING_HORIZON = 0.001  # the shortest pacing burst, in seconds: asyncio timers are ~1 ms coarse


class TcpState(enum.Enum):
    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"


CLOSED = TcpState.CLOSED
SYN_SENT = TcpState.SYN_SENT
SYN_RECEIVED = TcpState.SYN_RECEIVED
ESTABLISHED = TcpState.ESTABLISHED
FIN_WAIT_1 = TcpState.FIN_WAIT_1
FIN_WAIT_2 = TcpState.FIN_WAIT_2
CLOSE_WAIT = TcpState.CLOSE_WAIT
CLOSING = TcpState.CLOSING
LAST_ACK = TcpState.LAST_ACK
TIME_WAIT = TcpState.TIME_WAIT

# States in which we may still send data / a FIN.
_SENDING = frozenset({ESTABLISHED, CLOSE_WAIT, FIN_WAIT_1, CLOSING, LAST_ACK})
# States in which the peer's data is still accepted.
_RECEIVING = frozenset({ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2})

_NO_RECOVERY = 0
_FAST_RECOVERY = 1
_RTO_RECOVERY = 2


class TcpStats:
    """Per-connection counters (what happened and what was dropped, by reason)."""

    __slots__ = (
        "segs_in",
        "segs_out",
        "bytes_in",
        "bytes_out",
        "retransmits",
        "retransmitted_bytes",
        "timeouts",
        "fast_retransmits",
        "dup_acks",
        "ooo_segments",
        "ooo_dropped",
        "out_of_window",
        "paws_dropped",
        "challenge_acks",
        "bad_ack",
        "rst_ignored",
        "persist_probes",
        "keepalive_probes",
        "zero_window_drops",
        "tail_loss_probes",
        "lost_retransmits",
    )

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}
