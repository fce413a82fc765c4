"""A scripted remote peer for TcpConnection tests, with scapy as the independent oracle.

The test plays the remote side: segments it sends are built by scapy (with scapy's
checksum) and parsed by ``parse_segment``; segments our connection emits are checked with
scapy's checksum code and decoded by scapy.  Time is virtual (``advance``).  Every test
starts both initial sequence numbers just below 2**32 so the exchange crosses the wrap.
"""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, in4_chksum
from scapy.packet import Raw

from netstack.tcp import Closed, DataReceived, TcpConfig, TcpConnection, parse_segment
from netstack.tcp.segment import TcpSegment

LOCAL_IP = "192.0.2.1"  # the intercepted destination: our side answers as this address
REMOTE_IP = "10.0.0.2"  # the client: the test side
LOCAL = (bytes((192, 0, 2, 1)), 443)
REMOTE = (bytes((10, 0, 0, 2)), 50000)
ISS = 0xFFFFFFF0  # ours: the SYN-ACK's sequence number, 16 bytes below the wrap
PEER_ISS = 0xFFFFFFFA  # theirs
MASK = 0xFFFFFFFF

DEFAULT_SYN_OPTIONS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1000, 0)), ("NOP", None), ("WScale", 7)]


def scapy_segment(
    flags: str,
    seq: int,
    ack: int = 0,
    payload: bytes = b"",
    window: int = 65535,
    options: list | None = None,
    sport: int = REMOTE[1],
    dport: int = LOCAL[1],
    src: str = REMOTE_IP,
    dst: str = LOCAL_IP,
) -> bytes:
    """TCP header + payload built and checksummed by scapy (the IP header stripped)."""
    t = TCP(
        sport=sport,
        dport=dport,
        seq=seq & MASK,
        ack=ack & MASK,
        flags=flags,
        window=window,
        options=options or [],
    )
    pkt = IP(src=src, dst=dst) / t
    if payload:
        pkt = pkt / Raw(payload)
    return bytes(pkt)[20:]


def check_checksum(raw: bytes, src: str = LOCAL_IP, dst: str = REMOTE_IP) -> None:
    zeroed = raw[:16] + b"\x00\x00" + raw[18:]
    expected = in4_chksum(6, IP(src=src, dst=dst, proto=6), zeroed)
    got = int.from_bytes(raw[16:18], "big")
    assert got == expected, f"bad checksum {got:#x} != {expected:#x}"


def opts(pkt: TCP) -> dict:
    return {name: value for name, value in pkt.options if name not in ("NOP", "EOL")}


class Peer:
    """Drives one TcpConnection from the remote side."""

    def __init__(
        self, config: TcpConfig | None = None, iss: int = ISS, peer_iss: int = PEER_ISS, now: float = 0.0
    ):
        self.config = config or TcpConfig()
        self.iss = iss
        self.peer_iss = peer_iss
        self.now = now
        self.conn: TcpConnection | None = None
        self.seq = peer_iss  # our (the peer's) next sequence number
        self.ack = 0  # what the peer has received from the connection (next expected)
        self.ts = 1000
        self.use_ts = True
        self.events: list = []
        self.data = bytearray()
        self.window = 65535
        self.wscale = 7

    # -- the connection under test -------------------------------------------------

    def open(self, syn_options: list | None = DEFAULT_SYN_OPTIONS, window: int = 65535) -> list[TCP]:
        """Send a SYN and build the connection from it (as the stack does); returns its output."""
        options = syn_options if syn_options is not None else []
        names = {o[0] for o in options}
        self.use_ts = "Timestamp" in names
        if "WScale" not in names:
            self.wscale = 0
        raw = scapy_segment("S", self.peer_iss, 0, window=window, options=options)
        syn = parse_segment(raw)
        self.conn = TcpConnection.from_syn(syn, LOCAL, REMOTE, self.now, self.config, self.iss)
        self.seq = (self.peer_iss + 1) & MASK
        return self.out()

    def handshake(
        self, syn_options: list | None = DEFAULT_SYN_OPTIONS, window: int = 65535, rtt: float = 0.05
    ) -> TCP:
        """SYN, SYN-ACK, ACK (``rtt`` later): returns the SYN-ACK (scapy); the connection is ESTABLISHED."""
        out = self.open(syn_options, window)
        assert len(out) == 1 and out[0].flags == "SA", out
        synack = out[0]
        assert synack.seq == self.iss
        self.ack = (synack.seq + 1) & MASK
        self.now += rtt
        self.send("A", window=window)
        assert self.out() == []
        return synack

    def options(self, extra: list | None = None) -> list:
        o = []
        if self.use_ts:
            self.ts = (self.ts + 1) & MASK
            o.append(("Timestamp", (self.ts, self.last_tsval)))
        if extra:
            o.extend(extra)
        return o

    last_tsval = 0

    def segment(
        self,
        flags: str = "A",
        payload: bytes = b"",
        seq: int | None = None,
        ack: int | None = None,
        window: int | None = None,
        options: list | None = None,
        sack: list[tuple[int, int]] | None = None,
    ) -> TcpSegment:
        extra = []
        if sack:
            flat: list[int] = []
            for left, right in sack:
                flat += [left & MASK, right & MASK]
            extra.append(("SAck", tuple(flat)))
        o = options if options is not None else self.options(extra)
        raw = scapy_segment(
            flags,
            self.seq if seq is None else seq,
            self.ack if ack is None else ack,
            payload,
            window=self.window if window is None else window,
            options=o,
        )
        return parse_segment(raw)

    def send(self, flags: str = "A", payload: bytes = b"", advance_seq: bool = True, **kw) -> None:
        """Deliver one segment to the connection; by default our sequence number moves on."""
        seg = self.segment(flags, payload, **kw)
        assert self.conn is not None
        self.conn.receive(seg, self.now)
        if advance_seq and kw.get("seq") is None:
            self.seq = (self.seq + len(payload) + ("S" in flags) + ("F" in flags)) & MASK

    def out(self) -> list[TCP]:
        """The connection's output, checksum-verified and decoded by scapy."""
        assert self.conn is not None
        result = []
        for raw in self.conn.segments_to_send(self.now):
            check_checksum(raw)
            pkt = TCP(raw)
            for name, value in pkt.options:
                if name == "Timestamp":
                    self.last_tsval = value[0]
            result.append(pkt)
        return result

    def take(self) -> list[TCP]:
        """Output, with the peer's view of the received stream advanced over in-order data."""
        pkts = self.out()
        for p in pkts:
            data = bytes(p.payload) if p.payload else b""
            if p.seq == self.ack:
                self.ack = (self.ack + len(data) + (1 if "F" in p.flags else 0)) & MASK
                self.data += data
        return pkts

    def advance(self, dt: float) -> None:
        """Move virtual time, firing the connection's timers that fall due on the way."""
        assert self.conn is not None
        end = self.now + dt
        for _ in range(10_000):
            t = self.conn.get_timer()
            if t is None or t > end:
                break
            self.now = max(self.now, t)
            self.conn.handle_timer(self.now)
        self.now = end

    def run_timers_until(self, t_end: float) -> list[tuple[float, list[TCP]]]:
        """Fire timers up to ``t_end`` collecting what is sent at each firing."""
        assert self.conn is not None
        log = []
        for _ in range(10_000):
            t = self.conn.get_timer()
            if t is None or t > t_end:
                break
            self.now = max(self.now, t)
            self.conn.handle_timer(self.now)
            log.append((self.now, self.out()))
        self.now = t_end
        return log

    def drain(self) -> list:
        """The connection's events (data also gathered into ``received``)."""
        assert self.conn is not None
        evs = []
        while (ev := self.conn.next_event()) is not None:
            evs.append(ev)
        self.events += evs
        return evs

    def received(self, consume: bool = True) -> bytes:
        assert self.conn is not None
        got = bytearray()
        for ev in self.drain():
            if isinstance(ev, DataReceived):
                got += ev.data
        if consume and got:
            self.conn.consumed(len(got))
        return bytes(got)

    def closed_reason(self) -> str | None:
        for ev in self.events + self.drain():
            if isinstance(ev, Closed):
                return ev.reason
        return None
