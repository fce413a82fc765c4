"""Opening a connection: passive (from_syn), active (connect) and simultaneous open."""

import pytest
from scapy.layers.inet import TCP
from tcp_peer import ISS, LOCAL, MASK, PEER_ISS, REMOTE, Peer, check_checksum, opts, scapy_segment

from netstack.tcp import Closed, Connected, TcpConfig, TcpConnection, TcpState, parse_segment


def test_passive_open_answers_as_destination_with_negotiated_options():
    p = Peer(TcpConfig(mss=1400))
    out = p.open()
    assert len(out) == 1
    sa = out[0]
    assert sa.flags == "SA"
    assert (sa.sport, sa.dport) == (LOCAL[1], REMOTE[1])
    assert sa.seq == ISS and sa.ack == (PEER_ISS + 1) & MASK
    o = opts(sa)
    assert o["MSS"] == 1400
    assert o["WScale"] == TcpConfig().window_shift()
    assert "SAckOK" in o
    assert o["Timestamp"][1] == 1000  # echoes the SYN's TSval
    assert p.conn.state is TcpState.SYN_RECEIVED
    assert sa.window <= 65535  # never scaled in a SYN


def test_handshake_completes_with_connected_event():
    p = Peer()
    p.handshake()
    assert p.conn.state is TcpState.ESTABLISHED
    assert any(isinstance(e, Connected) for e in p.drain())


def test_syn_without_options_disables_them():
    p = Peer()
    sa = p.handshake(syn_options=[])
    o = opts(sa)
    assert "WScale" not in o and "SAckOK" not in o and "Timestamp" not in o
    assert o["MSS"] == TcpConfig().mss
    c = p.conn
    assert not c._ts_ok and not c._sack_ok and c._rcv_wscale == 0 and c._snd_wscale == 0
    # default MSS (536) for sending when the peer gave none
    c.send(b"x" * 2000)
    sizes = [len(s.payload) for s in p.out()]
    assert max(sizes) == 536


def test_mss_clamped_to_link_and_to_peer():
    cfg = TcpConfig.for_mtu(1280)
    assert cfg.mss == 1240
    p = Peer(cfg)
    sa = p.handshake(syn_options=[("MSS", 1460), ("Timestamp", (5, 0))])
    assert opts(sa)["MSS"] == 1240
    p.conn.send(b"y" * 5000)
    assert max(len(s.payload) for s in p.out()) == 1240 - 12  # timestamps take 12 bytes
    cfg6 = TcpConfig.for_mtu(1280, ipv6=True)
    assert cfg6.mss == 1220
    p = Peer()
    p.handshake(syn_options=[("MSS", 1000)])
    p.conn.send(b"y" * 5000)
    assert max(len(s.payload) for s in p.out()) == 1000


def test_retransmitted_syn_gets_the_syn_ack_again():
    p = Peer()
    p.open()
    p.conn.receive(parse_segment(scapy_segment("S", PEER_ISS, options=[("MSS", 1460)])), p.now)
    out = p.out()
    assert len(out) == 1 and out[0].flags == "SA" and out[0].seq == ISS


def test_syn_ack_retransmitted_with_backoff_then_gives_up():
    p = Peer(TcpConfig(syn_retries=3, rto_initial=1.0))
    p.open()
    log = p.run_timers_until(100.0)
    times = [t for t, pkts in log if pkts]
    assert all(pk.flags == "SA" for _, pkts in log for pk in pkts)
    assert times == [1.0, 3.0, 7.0]  # 1, 2, 4 seconds apart
    assert p.conn.state is TcpState.CLOSED
    assert p.closed_reason() == "timeout"


def test_rst_in_syn_received_closes():
    p = Peer()
    p.open()
    p.send("R", seq=(PEER_ISS + 1) & MASK)
    assert p.conn.state is TcpState.CLOSED
    assert p.closed_reason() == "reset"


def test_rst_in_syn_received_out_of_window_is_ignored():
    p = Peer()
    p.open()
    p.send("R", seq=(PEER_ISS + 1 + 10_000_000) & MASK)
    assert p.conn.state is TcpState.SYN_RECEIVED
    assert p.out() == []


def test_bad_ack_in_syn_received_draws_reset():
    p = Peer()
    p.open()
    p.send("A", ack=(ISS + 1000) & MASK)
    out = p.out()
    assert len(out) == 1 and out[0].flags == "R" and out[0].seq == (ISS + 1000) & MASK
    assert p.conn.state is TcpState.SYN_RECEIVED


def test_data_on_the_handshake_ack_is_delivered():
    p = Peer()
    p.open()
    p.ack = (ISS + 1) & MASK
    p.send("PA", b"GET / HTTP/1.1\r\n\r\n")
    assert p.conn.state is TcpState.ESTABLISHED
    assert p.received() == b"GET / HTTP/1.1\r\n\r\n"


def test_close_in_syn_received_sends_fin_after_handshake():
    p = Peer()
    p.open()
    p.conn.send(b"early")
    p.conn.close()
    assert p.out() == []
    p.ack = (ISS + 1) & MASK
    p.send("A")
    out = p.out()
    assert p.conn.state is TcpState.FIN_WAIT_1
    assert bytes(out[-1].payload) == b"early" and "F" in out[-1].flags


# ---------------------------------------------------------------- active open


def active(config=None):
    cfg = config or TcpConfig()
    conn = TcpConnection.connect(LOCAL, REMOTE, 0.0, cfg, ISS)
    raws = conn.segments_to_send(0.0)
    assert len(raws) == 1
    check_checksum(raws[0])
    return conn, TCP(raws[0])


def test_connect_sends_syn_with_all_options():
    conn, syn = active()
    assert syn.flags == "S" and syn.seq == ISS
    o = opts(syn)
    assert o["MSS"] == 1460 and o["WScale"] == TcpConfig().window_shift() and "SAckOK" in o
    assert o["Timestamp"][1] == 0
    assert conn.state is TcpState.SYN_SENT


def test_connect_completes_on_syn_ack():
    conn, syn = active()
    sa = scapy_segment(
        "SA",
        PEER_ISS,
        ISS + 1,
        options=[("MSS", 1200), ("SAckOK", b""), ("Timestamp", (77, syn_ts(syn))), ("WScale", 2)],
        sport=REMOTE[1],
        dport=LOCAL[1],
    )
    conn.receive(parse_segment(sa), 0.05)
    assert conn.state is TcpState.ESTABLISHED
    assert isinstance(conn.next_event(), Connected)
    out = [TCP(r) for r in conn.segments_to_send(0.05)]
    assert len(out) == 1 and out[0].flags == "A" and out[0].ack == (PEER_ISS + 1) & MASK
    assert opts(out[0])["Timestamp"][1] == 77
    assert conn._snd_wscale == 2 and conn._sack_ok and conn._ts_ok
    assert conn._rtt.srtt == pytest.approx(0.05, abs=0.002)


def syn_ts(syn):
    return opts(syn)["Timestamp"][0]


def test_connect_without_wscale_in_syn_ack_disables_scaling():
    conn, syn = active()
    conn.receive(
        parse_segment(scapy_segment("SA", PEER_ISS, ISS + 1, window=1000, options=[("MSS", 1460)])), 0.01
    )
    assert conn._snd_wscale == 0 and conn._rcv_wscale == 0
    assert conn.snd_wnd == 1000
    out = [TCP(r) for r in conn.segments_to_send(0.01)]
    assert out[0].window == 65535  # unscaled, capped


def test_syn_sent_rst_with_good_ack_refuses():
    conn, _ = active()
    conn.receive(parse_segment(scapy_segment("RA", 0, ISS + 1)), 0.01)
    assert conn.state is TcpState.CLOSED
    assert conn.next_event() == Closed("reset")


def test_syn_sent_rst_without_ack_is_ignored():
    conn, _ = active()
    conn.receive(parse_segment(scapy_segment("R", 0, 0)), 0.01)
    assert conn.state is TcpState.SYN_SENT


def test_syn_sent_bad_ack_draws_reset():
    conn, _ = active()
    conn.receive(parse_segment(scapy_segment("SA", PEER_ISS, ISS + 77)), 0.01)
    out = [TCP(r) for r in conn.segments_to_send(0.01)]
    assert len(out) == 1 and out[0].flags == "R" and out[0].seq == (ISS + 77) & MASK
    assert conn.state is TcpState.SYN_SENT


def test_syn_retransmitted_then_timeout():
    conn, _ = active(TcpConfig(syn_retries=2))
    sent = []
    now = 0.0
    for _ in range(20):
        t = conn.get_timer()
        if t is None:
            break
        now = t
        conn.handle_timer(now)
        sent += [(now, TCP(r).flags) for r in conn.segments_to_send(now)]
    assert [s for s in sent] == [(1.0, "S"), (3.0, "S")]
    assert conn.state is TcpState.CLOSED and conn.next_event() == Closed("timeout")


def test_simultaneous_open():
    a = TcpConnection.connect(LOCAL, REMOTE, 0.0, TcpConfig(), ISS)
    b = TcpConnection.connect(REMOTE, LOCAL, 0.0, TcpConfig(), PEER_ISS)
    syn_a = a.segments_to_send(0.0)
    syn_b = b.segments_to_send(0.0)
    # The SYNs cross.
    a.receive(parse_segment(syn_b[0]), 0.01)
    b.receive(parse_segment(syn_a[0]), 0.01)
    assert a.state is TcpState.SYN_RECEIVED and b.state is TcpState.SYN_RECEIVED
    sa_a = a.segments_to_send(0.01)
    sa_b = b.segments_to_send(0.01)
    assert TCP(sa_a[0]).flags == "SA" and TCP(sa_a[0]).seq == ISS
    a.receive(parse_segment(sa_b[0]), 0.02)
    b.receive(parse_segment(sa_a[0]), 0.02)
    assert a.state is TcpState.ESTABLISHED and b.state is TcpState.ESTABLISHED
    assert isinstance(a.next_event(), Connected) and isinstance(b.next_event(), Connected)
    a.send(b"ping")
    for raw in a.segments_to_send(0.03):
        b.receive(parse_segment(raw), 0.03)
    assert b.next_event().data == b"ping"


def test_close_in_syn_sent_sends_queued_data_and_fin_after_the_handshake():
    conn, syn = active()
    conn.send(b"request")
    conn.close()
    assert conn.state is TcpState.SYN_SENT
    sa = scapy_segment("SA", PEER_ISS, ISS + 1, options=[("MSS", 1460)], sport=REMOTE[1], dport=LOCAL[1])
    conn.receive(parse_segment(sa), 0.05)
    assert conn.state is TcpState.FIN_WAIT_1
    out = [TCP(r) for r in conn.segments_to_send(0.05)]
    assert bytes(out[-1].payload) == b"request" and "F" in out[-1].flags


def test_abort_in_syn_sent_sends_nothing():
    conn, _ = active()
    conn.abort()
    assert conn.state is TcpState.CLOSED
    assert conn.next_event() == Closed("aborted")
    assert conn.segments_to_send(0.0) == []
