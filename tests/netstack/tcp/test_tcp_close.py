"""Closing: every state of the close, TIME_WAIT, resets in every state, challenge ACKs."""

import pytest
from tcp_peer import ISS, MASK, PEER_ISS, Peer

from netstack.tcp import Closed, EofReceived, TcpConfig, TcpState

S = TcpState


def established(**cfg):
    p = Peer(TcpConfig(**cfg))
    p.handshake()
    p.drain()
    return p


def fin_wait_1(p):
    p.conn.close()
    out = p.take()
    assert "F" in out[-1].flags and p.conn.state is S.FIN_WAIT_1
    return out[-1]


def fin_wait_2(p):
    fin_wait_1(p)
    p.send("A")
    assert p.conn.state is S.FIN_WAIT_2


def close_wait(p):
    p.send("FA")
    assert p.conn.state is S.CLOSE_WAIT
    p.take()


def last_ack(p):
    close_wait(p)
    p.conn.close()
    out = p.take()
    assert out[-1].flags == "FA" and p.conn.state is S.LAST_ACK


def closing(p):
    fin_wait_1(p)
    # the peer's FIN crosses ours: it does not acknowledge our FIN yet
    p.send("FA", ack=(ISS + 1) & MASK)
    assert p.conn.state is S.CLOSING
    p.out()


def time_wait(p):
    fin_wait_2(p)
    p.send("FA")
    assert p.conn.state is S.TIME_WAIT
    p.out()


def syn_received(p):
    p.open()


REACH = {
    "SYN-RECEIVED": syn_received,
    "ESTABLISHED": lambda p: p.handshake(),
    "FIN-WAIT-1": lambda p: (p.handshake(), fin_wait_1(p)),
    "FIN-WAIT-2": lambda p: (p.handshake(), fin_wait_2(p)),
    "CLOSE-WAIT": lambda p: (p.handshake(), close_wait(p)),
    "CLOSING": lambda p: (p.handshake(), closing(p)),
    "LAST-ACK": lambda p: (p.handshake(), last_ack(p)),
    "TIME-WAIT": lambda p: (p.handshake(), time_wait(p)),
}


def reach(state):
    p = Peer()
    REACH[state](p)
    if state == "SYN-RECEIVED":
        p.ack = (ISS + 1) & MASK
    assert p.conn.state.value == state
    p.drain()
    p.out()
    return p


def test_active_close_through_fin_wait_and_time_wait():
    p = established(time_wait=30.0)
    p.conn.send(b"bye")
    fin = fin_wait_1(p)
    assert bytes(fin.payload) == b"bye"  # the FIN rides on the last data
    p.send("A")
    assert p.conn.state is S.FIN_WAIT_2
    # half-closed: the peer may still send, and we still deliver
    p.send("PA", b"more")
    assert p.received() == b"more"
    p.send("FA")
    assert p.conn.state is S.TIME_WAIT
    assert p.conn.lingering
    evs = p.drain()
    assert any(isinstance(e, EofReceived) for e in evs) and Closed("closed") in evs
    out = p.out()
    assert out[-1].flags == "A" and out[-1].ack == p.seq
    t = p.conn.get_timer()
    assert t == pytest.approx(p.now + 30.0)
    p.advance(30.0)
    assert p.conn.state is S.CLOSED
    assert p.conn.get_timer() is None


def test_passive_close_through_close_wait_and_last_ack():
    p = established()
    p.send("PA", b"last words")
    p.send("FA")
    assert p.conn.state is S.CLOSE_WAIT
    evs = p.drain()
    assert [type(e).__name__ for e in evs] == ["DataReceived", "EofReceived"]
    out = p.take()
    assert out[-1].ack == p.seq
    p.conn.send(b"reply")
    p.conn.close()
    assert p.conn.state is S.LAST_ACK
    out = p.take()
    assert bytes(out[-1].payload) == b"reply" and "F" in out[-1].flags
    p.send("A")
    assert p.conn.state is S.CLOSED
    assert Closed("closed") in p.drain()


def test_simultaneous_close_goes_through_closing():
    p = established()
    closing(p)
    p.send("A")  # now our FIN is acknowledged
    assert p.conn.state is S.TIME_WAIT


def test_fin_and_ack_together_in_fin_wait_1_goes_to_time_wait():
    p = established()
    fin_wait_1(p)
    p.send("FA")
    assert p.conn.state is S.TIME_WAIT


def test_time_wait_answers_a_retransmitted_fin_and_restarts_its_timer():
    p = established(time_wait=30.0)
    time_wait(p)
    p.advance(20.0)
    p.send("FA", seq=(p.seq - 1) & MASK, advance_seq=False)  # the peer did not get our ACK
    out = p.out()
    assert len(out) == 1 and out[0].flags == "A" and out[0].ack == p.seq
    assert p.conn.get_timer() == pytest.approx(p.now + 30.0)
    assert p.conn.state is S.TIME_WAIT
    p.advance(30.0)
    assert p.conn.state is S.CLOSED


def test_fin_retransmitted_on_timeout_in_fin_wait_1():
    p = established()
    fin_wait_1(p)
    p.advance(p.conn.get_timer() - p.now)
    out = p.out()
    assert len(out) == 1 and out[0].flags == "FA" and (out[0].seq - ISS) & MASK == 1


def test_fin_retransmitted_on_timeout_in_last_ack_then_gives_up():
    p = established(max_retries=3)
    last_ack(p)
    log = p.run_timers_until(p.now + 60)
    fins = [pk for _, pkts in log for pk in pkts if "F" in pk.flags]
    assert len(fins) == 3
    assert p.conn.state is S.CLOSED and p.closed_reason() == "timeout"


def test_abort_sends_rst_and_reports_aborted():
    p = established()
    p.conn.send(b"unsent" * 100)
    p.conn.abort()
    out = p.out()
    assert len(out) == 1 and "R" in out[0].flags and (out[0].seq - ISS) & MASK == 1
    assert p.conn.state is S.CLOSED
    assert p.closed_reason() == "aborted"
    assert p.conn.send(b"x") == 0


STATES = list(REACH)


@pytest.mark.parametrize("state", STATES)
def test_rst_with_exact_sequence_closes_in_every_state(state):
    p = reach(state)
    p.send("R")
    assert p.conn.state is S.CLOSED
    if state == "TIME-WAIT":
        assert p.drain() == []  # Closed was already reported on entering TIME-WAIT
    else:
        assert p.closed_reason() == "reset"
    assert p.out() == []  # a reset is never answered


@pytest.mark.parametrize("state", [s for s in STATES if s != "SYN-RECEIVED"])
def test_rst_in_window_but_not_exact_draws_challenge_ack(state):
    p = reach(state)
    p.send("R", seq=(p.seq + 100) & MASK, advance_seq=False)
    assert p.conn.state.value == state
    out = p.out()
    assert len(out) == 1 and out[0].flags == "A" and out[0].ack == p.seq
    assert p.conn.stats.challenge_acks == 1


@pytest.mark.parametrize("state", STATES)
def test_rst_outside_the_window_is_ignored(state):
    p = reach(state)
    p.send("R", seq=(p.seq + 2**30) & MASK, advance_seq=False)
    assert p.conn.state.value == state
    assert p.out() == []


@pytest.mark.parametrize(
    "state", ["ESTABLISHED", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "LAST-ACK", "CLOSING"]
)
def test_syn_in_synchronized_state_draws_challenge_ack(state):
    p = reach(state)
    for seq in (p.seq, (p.seq + 10) & MASK, (p.seq + 2**30) & MASK, PEER_ISS):
        p.send("S", seq=seq, advance_seq=False, options=[("MSS", 1460)])
        out = p.out()
        assert len(out) == 1 and out[0].flags == "A" and out[0].ack == p.seq, (state, seq)
    assert p.conn.state.value == state


def test_challenge_acks_are_rate_limited():
    p = established(challenge_ack_limit=5)
    sent = 0
    for _ in range(20):
        p.send("R", seq=(p.seq + 10) & MASK, advance_seq=False)
        sent += len(p.out())
    assert sent == 5
    p.advance(1.0)
    p.send("R", seq=(p.seq + 10) & MASK, advance_seq=False)
    assert len(p.out()) == 1


@pytest.mark.parametrize("state", ["ESTABLISHED", "FIN-WAIT-2", "CLOSE-WAIT", "TIME-WAIT"])
def test_out_of_window_segments_draw_an_ack(state):
    p = reach(state)
    cases = [
        ("A", b"old", (p.seq - 1000) & MASK),  # old data
        ("A", b"future", (p.seq + 2**29) & MASK),  # far beyond the window
        ("FA", b"", (p.seq + 2**29) & MASK),  # a FIN beyond the window
        ("A", b"", (p.seq - 2**20) & MASK),  # a bare ACK with an old sequence number
    ]
    for flags, payload, seq in cases:
        p.send(flags, payload, seq=seq, advance_seq=False)
        out = p.out()
        assert len(out) == 1 and out[0].flags == "A" and out[0].ack == p.seq, (state, flags, payload)
    assert p.conn.state.value == state


def test_data_after_peer_fin_is_not_delivered():
    p = established()
    close_wait(p)
    p.drain()
    p.send("PA", b"late")
    assert p.received() == b""
