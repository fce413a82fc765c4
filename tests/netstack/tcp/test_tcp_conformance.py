"""Edge cases from the conformance suites used as a checklist (gVisor packetimpact's
tcp_* tests, smoltcp's socket tests) that the other files do not already cover.  Each test
names the case it mirrors."""

import pytest
from scapy.layers.inet import TCP
from tcp_peer import ISS, LOCAL, MASK, PEER_ISS, REMOTE, Peer, scapy_segment

from netstack.tcp import Connected, EofReceived, TcpConfig, TcpConnection, TcpState, parse_segment

S = TcpState


def established(**cfg):
    p = Peer(TcpConfig(**cfg))
    p.handshake()
    p.drain()
    return p


def test_window_msb_set():
    """packetimpact tcp_window_msb_set: a window >= 32768 is not negative."""
    p = Peer()
    p.handshake(syn_options=[("MSS", 1460)], window=0xFFFF)
    assert p.conn.snd_wnd == 0xFFFF
    p.send("A", window=0x8001)
    assert p.conn.snd_wnd == 0x8001


def test_queue_receive_in_syn_sent():
    """packetimpact tcp_queue_receive_in_syn_sent: data on the SYN-ACK is delivered."""
    conn = TcpConnection.connect(LOCAL, REMOTE, 0.0, TcpConfig(), ISS)
    conn.segments_to_send(0.0)
    sa = scapy_segment(
        "SA", PEER_ISS, ISS + 1, b"early data", options=[("MSS", 1460)], sport=REMOTE[1], dport=LOCAL[1]
    )
    conn.receive(parse_segment(sa), 0.01)
    assert isinstance(conn.next_event(), Connected)
    assert conn.next_event().data == b"early data"
    ack = TCP(conn.segments_to_send(0.01)[-1])
    assert ack.ack == (PEER_ISS + 1 + 10) & MASK


@pytest.mark.parametrize("offset", [0, 2, 100])
def test_acceptable_ack_syn_rcvd(offset):
    """packetimpact tcp_acceptable_ack_syn_rcvd: only SEG.ACK = ISS+1 completes the handshake."""
    p = Peer()
    p.open()
    p.send("A", ack=(ISS + offset) & MASK, advance_seq=False)
    out = p.out()
    assert len(out) == 1 and out[0].flags == "R" and out[0].seq == (ISS + offset) & MASK
    assert p.conn.state is S.SYN_RECEIVED
    p.send("A", ack=(ISS + 1) & MASK)
    assert p.conn.state is S.ESTABLISHED


def test_syn_received_fin_with_data():
    """smoltcp test_syn_received_fin: data and FIN on the handshake ACK."""
    p = Peer()
    p.open()
    p.ack = (ISS + 1) & MASK
    p.send("FPA", b"abcdef")
    assert p.conn.state is S.CLOSE_WAIT
    evs = p.drain()
    assert [type(e).__name__ for e in evs] == ["Connected", "DataReceived", "EofReceived"]
    assert p.out()[-1].ack == p.seq


@pytest.mark.parametrize("state", ["CLOSING", "LAST-ACK", "FIN-WAIT-1"])
def test_outside_the_window_closing(state):
    """packetimpact tcp_outside_the_window_closing: OTW segments in closing states draw an ACK."""
    from test_tcp_close import reach

    p = reach(state)
    for seq in ((p.seq + 2**29) & MASK, (p.seq - 5000) & MASK):
        p.send("A", b"Sample Data", seq=seq, advance_seq=False)
        out = p.out()
        assert len(out) == 1 and out[0].flags in ("A", "FA") and out[0].ack == p.seq
    assert p.conn.state.value == state


@pytest.mark.parametrize("offset", [0, 1, 2])
def test_unacc_seq_established(offset):
    """packetimpact tcp_unacc_seq_ack (OTWSeq): data starting at or past RCV.NXT+RCV.WND is ACKed, not taken."""
    p = Peer(TcpConfig(recv_buffer=8192, recv_buffer_initial=8192, recv_autotune=False))
    p.handshake()
    p.drain()
    wnd = p.conn._rcv_adv - p.conn.rcv_nxt
    p.send("A", b"Sample Data", seq=(p.seq + wnd + offset) & MASK, advance_seq=False)
    out = p.out()
    assert len(out) == 1 and out[0].ack == p.seq
    assert p.received() == b""


def test_unacc_ack_established_answered():
    """packetimpact tcp_unacc_seq_ack (UnaccAck): SEG.ACK > SND.NXT gets an ACK and is dropped
    (RFC 9293 3.10.7.4; gVisor/Linux drop it silently in ESTABLISHED, we follow the RFC)."""
    p = established()
    p.send("A", b"Sample Data", ack=(ISS + 2) & MASK, advance_seq=False)
    out = p.out()
    assert len(out) == 1 and out[0].ack == p.seq
    assert p.received() == b""


def test_zero_window_fin():
    """smoltcp test_zero_window_fin / Linux: a bare FIN is accepted while our window is zero."""
    p = Peer(TcpConfig(recv_buffer=4096, recv_buffer_initial=4096, recv_autotune=False))
    p.handshake()
    p.drain()
    p.send("A", b"z" * 4096)
    p.drain()  # delivered but not consumed: the window is zero
    assert p.conn._rcv_adv == p.conn.rcv_nxt
    p.send("FA")
    assert p.conn.state is S.CLOSE_WAIT
    assert any(isinstance(e, EofReceived) for e in p.drain())


def test_duplicate_seq_ack():
    """smoltcp test_duplicate_seq_ack: a duplicate of the last segment is ACKed once more."""
    p = established(quickack_segments=0)
    p.send("PA", b"abc")
    p.received()
    p.advance(0.05)
    p.out()
    p.send("PA", b"abc", seq=(p.seq - 3) & MASK, advance_seq=False)
    out = p.out()
    assert len(out) == 1 and out[0].ack == p.seq


def test_data_retransmit_after_syn_ack_retransmit():
    """smoltcp test_send_data_after_syn_ack_retransmit: a late ACK after a retransmitted SYN-ACK still works."""
    p = Peer()
    p.open()
    p.advance(p.conn.get_timer() - p.now)
    assert p.out()[0].flags == "SA"
    p.ack = (ISS + 1) & MASK
    p.send("A")
    assert p.conn.state is S.ESTABLISHED
    p.conn.send(b"hello")
    assert bytes(p.out()[0].payload) == b"hello"


def test_fill_peer_window():
    """smoltcp test_fill_peer_window: we send exactly up to the peer's window."""
    p = Peer()
    p.handshake(syn_options=[("MSS", 1460)], window=6000)
    p.conn.send(b"f" * 20_000)
    out = p.out()
    assert sum(len(x.payload) for x in out) == 4 * 1460  # the 5th segment would be a sliver (SWS)


def test_fin_wait_1_fin_ack_in_one_segment():
    """smoltcp test_fin_wait_1_fin_ack: FIN+ACK of our FIN goes straight to TIME-WAIT."""
    p = established()
    p.conn.close()
    p.take()
    p.send("FA")
    assert p.conn.state is S.TIME_WAIT
    assert p.out()[-1].ack == p.seq
