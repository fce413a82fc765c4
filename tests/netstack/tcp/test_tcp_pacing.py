"""Pacing: data that the window allows leaves over time, in bursts of about a millisecond.

Time is virtual (the scripted peer's clock); each test checks release times against the
rate the congestion controller asks for.
"""

import pytest
from tcp_peer import ISS, MASK, Peer

from netstack.tcp import TcpConfig
from netstack.tcp.connection import PACING_CREDIT, PACING_HORIZON

MSS = 1448


def established(rtt=0.05, **cfg):
    cfg.setdefault("congestion_control", "cubic")  # grow_window sets CUBIC's state; BBR's pacing is in test_tcp_bbr.py
    p = Peer(TcpConfig(**cfg))
    p.handshake(rtt=rtt)
    p.drain()
    return p


def ack_through(p, n_segments):
    p.send("A", ack=(ISS + 1 + n_segments * MSS) & MASK)


def grow_window(p, cwnd_segments):
    """Put the connection in congestion avoidance with a large window (the test's arrangement)."""
    p.conn._cc.cwnd = cwnd_segments * MSS
    p.conn._cc.ssthresh = cwnd_segments * MSS


def release_times(p, until):
    """(time, payload bytes) of every data segment sent while only timers run, up to ``until``."""
    log = []
    for _ in range(100_000):
        t = p.conn.get_timer()
        if t is None or t > until:
            break
        p.now = max(p.now, t)
        p.conn.handle_timer(p.now)
        for s in p.out():
            if s.payload:
                log.append((p.now, len(s.payload)))
    return log


def test_a_large_window_is_released_over_time_not_in_one_burst():
    p = established(rtt=0.05)
    grow_window(p, 100)
    p.conn.send(b"p" * 100 * MSS)
    first = [s for s in p.out() if s.payload]
    # the initial-window allowance plus about one burst; far from the 100 segments cwnd allows
    assert 10 <= len(first) < 20
    log = release_times(p, p.now + 0.05)
    sent = len(first) + len(log)
    assert sent == 100  # all of the window within about one RTT (rate 1.2 cwnd / srtt)
    assert log[-1][0] - p.now + 0.05 > 0.03  # ...but spread over most of it
    # no timer burst is larger than ~1 ms at the pacing rate (and at least two segments)
    rate = 1.2 * 100 * MSS / p.conn._rtt.srtt
    per_burst = {}
    for t, n in log:
        per_burst[t] = per_burst.get(t, 0) + n
    assert max(per_burst.values()) <= max(2 * MSS, 2 * rate * PACING_HORIZON) + MSS


def test_nothing_is_released_before_the_pacing_time():
    p = established(rtt=0.05)
    grow_window(p, 100)
    p.conn.send(b"p" * 100 * MSS)
    p.out()
    due = p.conn.get_timer()
    assert due is not None and due > p.now
    p.now = due - 0.0002
    p.conn.handle_timer(p.now)  # a timer a little early releases nothing
    assert [s for s in p.out() if s.payload] == []
    p.now = due
    p.conn.handle_timer(p.now)
    assert len([s for s in p.out() if s.payload]) >= 2


def test_an_ack_never_lets_more_than_a_burst_out():
    p = established(rtt=0.05)
    grow_window(p, 200)
    p.conn.send(b"p" * 600 * MSS)
    p.out()
    release_times(p, p.now + 0.045)  # the pacer sends most of the window over the RTT
    flight = (p.conn.snd_max - p.conn.snd_una) // MSS
    assert flight > 150
    p.now += 0.005
    p.send("A", ack=(ISS + p.conn.snd_max) & MASK)  # all of it acknowledged at once
    burst = [s for s in p.out() if s.payload]
    rate = 1.2 * 200 * MSS / p.conn._rtt.srtt
    horizon = max(PACING_HORIZON, 2 * MSS / rate)
    assert 2 <= len(burst) and len(burst) * MSS <= (1 + PACING_CREDIT) * rate * horizon + MSS
    assert len(burst) < flight / 4  # cwnd would allow the whole flight again


def test_paced_transfer_is_byte_exact_and_timer_driven():
    """The pacer's timer, not the peer's ACKs, releases the rest: a silent peer still gets the window."""
    p = established(rtt=0.02)
    grow_window(p, 50)
    data = bytes(range(256)) * (50 * MSS // 256)
    p.conn.send(data)
    got = bytearray()
    for _ in range(1000):
        for s in p.out():
            got += bytes(s.payload)
        t = p.conn.get_timer()
        if t is None or p.conn.snd_max - 1 == len(data):
            break
        p.now = max(p.now, t)
        p.conn.handle_timer(p.now)
    assert bytes(got) == data
    assert p.conn.stats.retransmits == 0


def test_pacing_off_sends_the_whole_window_at_once():
    p = established(rtt=0.05, pacing=False)
    grow_window(p, 100)
    p.conn.send(b"p" * 100 * MSS)
    assert len([s for s in p.out() if s.payload]) == 100
    assert p.conn._pace_at is None


def test_no_pacing_timer_when_nothing_waits():
    """A stale pacing time must not keep the timer due (the driver would spin)."""
    p = established(rtt=0.05)
    grow_window(p, 100)
    p.conn.send(b"p" * 30 * MSS)
    p.out()
    release_times(p, p.now + 0.1)
    assert p.conn.snd_max - 1 == 30 * MSS
    assert p.conn._pace_at is None
    t = p.conn.get_timer()
    assert t is None or t > p.now  # only the retransmission timer / probe remains, in the future


@pytest.mark.parametrize("cc", ["cubic", "newreno"])
def test_slow_start_paces_at_twice_the_avoidance_rate(cc):
    p = established(rtt=0.05, congestion_control=cc)
    c = p.conn._cc
    c.cwnd = 100 * MSS
    c.ssthresh = 1 << 40
    ss = c.pacing_rate(0.05, 0)
    c.ssthresh = c.cwnd
    ca = c.pacing_rate(0.05, 0)
    assert ss == pytest.approx(2 * 100 * MSS / 0.05)
    assert ca == pytest.approx(1.2 * 100 * MSS / 0.05)
