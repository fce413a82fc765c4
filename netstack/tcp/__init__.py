"""A sans-IO TCP (RFC 9293) for netstack: segments and time in, segments and events out.

The stack builds a ``TcpConnection`` per accepted SYN (``TcpConnection.from_syn``), feeds
it parsed segments (``parse_segment``), and sends what ``segments_to_send`` returns after
prepending an IP header.  ``rst_for`` answers segments that match no connection (it returns
None for an incoming RST, which is never answered); ``new_iss`` makes RFC 6528 ISNs.
"""

from .config import TcpConfig
from .connection import TcpConnection, TcpState, TcpStats
from .events import Closed, Connected, DataReceived, EofReceived, SendSpaceAvailable, TcpEvent
from .iss import new_iss
from .reset import rst_for
from .segment import (
    ACK,
    CWR,
    ECE,
    FIN,
    PSH,
    RST,
    SYN,
    URG,
    SegmentError,
    TcpSegment,
    build_segment,
    parse_segment,
)

__all__ = [
    "ACK",
    "CWR",
    "ECE",
    "FIN",
    "PSH",
    "RST",
    "SYN",
    "URG",
    "Closed",
    "Connected",
    "DataReceived",
    "EofReceived",
    "SegmentError",
    "SendSpaceAvailable",
    "TcpConfig",
    "TcpConnection",
    "TcpEvent",
    "TcpSegment",
    "TcpState",
    "TcpStats",
    "build_segment",
    "new_iss",
    "parse_segment",
    "rst_for",
]
