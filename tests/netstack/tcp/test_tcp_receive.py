"""Receiving: in-order and out-of-order data, ACK policy, SACK blocks, windows, FIN placement."""

from tcp_peer import ISS, MASK, PEER_ISS, Peer, opts

from netstack.tcp import EofReceived, TcpConfig, TcpState

NOQUICK = dict(quickack_segments=0)


def established(**cfg):
    p = Peer(TcpConfig(**cfg))
    p.handshake()
    p.drain()
    return p


def sack_of(pkt):
    blocks = opts(pkt).get("SAck", ())
    return [
        ((blocks[i] - PEER_ISS) & MASK, (blocks[i + 1] - PEER_ISS) & MASK) for i in range(0, len(blocks), 2)
    ]


def test_in_order_data_across_the_wrap_is_delivered_and_acked():
    p = established()
    chunks = [bytes([i]) * 1000 for i in range(5)]
    for c in chunks:
        p.send("PA", c)
    assert p.received() == b"".join(chunks)
    acks = p.out()
    assert acks[-1].ack == (PEER_ISS + 1 + 5000) & MASK  # crossed 2**32
    assert p.conn.rcv_nxt == 5001


def test_delayed_ack_every_second_full_segment():
    p = established(**NOQUICK)
    seg = b"a" * 1448
    p.send("A", seg)
    assert p.out() == []  # the first full segment waits
    p.send("A", seg)
    out = p.out()
    assert len(out) == 1 and out[0].ack == (PEER_ISS + 1 + 2 * 1448) & MASK


def test_delayed_ack_timer_40ms():
    p = established(**NOQUICK)
    p.send("PA", b"small")
    assert p.out() == []
    t0 = p.now
    assert p.conn.get_timer() == t0 + 0.040
    p.advance(0.039)
    assert p.out() == []
    p.advance(0.001)
    out = p.out()
    assert len(out) == 1 and out[0].ack == (PEER_ISS + 6) & MASK


def test_ack_piggybacks_on_data_and_cancels_delayed_ack():
    p = established(**NOQUICK)
    p.send("PA", b"question")
    p.conn.send(b"answer")
    out = p.out()
    assert len(out) == 1 and bytes(out[0].payload) == b"answer" and out[0].ack == (PEER_ISS + 9) & MASK
    p.advance(1.0)
    assert [x for x in p.out() if not x.payload] == []


def test_out_of_order_segment_draws_immediate_dup_ack_with_sack():
    p = established(**NOQUICK)
    base = p.seq
    p.send("A", b"B" * 100, seq=(base + 100) & MASK)
    out = p.out()
    assert len(out) == 1
    assert out[0].ack == base
    assert sack_of(out[0]) == [(101, 201)]
    assert p.received() == b""
    # filling the hole is acknowledged at once and delivers both
    p.send("A", b"A" * 100, seq=base)
    out = p.out()
    assert len(out) == 1 and out[0].ack == (base + 200) & MASK and "SAck" not in opts(out[0])
    assert p.received() == b"A" * 100 + b"B" * 100


def test_sack_blocks_list_the_latest_first():
    p = established(**NOQUICK)
    base = p.seq
    for off in (1000, 3000, 2000):
        p.send("A", b"x" * 100, seq=(base + off) & MASK)
        last = p.out()[-1]
    assert sack_of(last) == [(2001, 2101), (3001, 3101), (1001, 1101)]


def test_overlapping_out_of_order_segments_merge():
    p = established(**NOQUICK)
    base = p.seq
    data = bytes(range(256)) * 8
    p.send("A", data[300:700], seq=(base + 300) & MASK)
    p.send("A", data[600:1000], seq=(base + 600) & MASK)
    p.send("A", data[1000:1200], seq=(base + 1000) & MASK)
    assert sack_of(p.out()[-1]) == [(301, 1201)]
    p.send("A", data[0:400], seq=base)
    assert p.received() == data[:1200]


def test_fin_with_a_hole_before_it_waits_for_the_hole():
    p = established(**NOQUICK)
    base = p.seq
    p.send("FA", b"tail", seq=(base + 10) & MASK)
    assert p.conn.state is TcpState.ESTABLISHED
    out = p.out()
    assert out[-1].ack == base
    assert not any(isinstance(e, EofReceived) for e in p.drain())
    p.send("A", b"0123456789", seq=base)
    assert p.received() == b"0123456789tail"
    assert any(isinstance(e, EofReceived) for e in p.events)
    assert p.conn.state is TcpState.CLOSE_WAIT
    out = p.out()
    assert out[-1].ack == (base + 15) & MASK


def small_window_peer():
    p = Peer(TcpConfig(recv_buffer=4096, recv_buffer_initial=4096, recv_autotune=False, **NOQUICK))
    p.handshake()
    p.drain()
    return p


def test_data_partly_outside_the_window_is_trimmed():
    p = small_window_peer()
    assert p.conn._rcv_adv - p.conn.rcv_nxt == 4096
    data = bytes(range(256)) * 24  # 6144 bytes: 2048 beyond the window
    p.send("PA", data)
    got = p.received(consume=False)
    assert got == data[:4096]
    out = p.out()
    assert out[-1].ack == (PEER_ISS + 1 + 4096) & MASK
    assert out[-1].window == 0
    assert p.conn.stats.out_of_window >= 1


def test_data_entirely_beyond_the_window_draws_an_ack():
    p = small_window_peer()
    p.send("A", b"z" * 100, seq=(p.seq + 5000) & MASK)
    out = p.out()
    assert len(out) == 1 and out[0].ack == p.seq
    assert p.received() == b""


def test_zero_window_then_consumed_reopens_with_window_update():
    p = small_window_peer()
    p.send("PA", b"q" * 4096)
    got = b""
    for ev in p.drain():
        got += getattr(ev, "data", b"")
    assert len(got) == 4096
    out = p.out()
    assert out[-1].window == 0
    # a zero-window probe: one byte at the edge is not accepted, the ACK repeats window 0
    p.send("A", b"P", advance_seq=False)
    out = p.out()
    assert len(out) == 1 and out[0].window == 0 and out[0].ack == p.seq
    assert p.conn.stats.zero_window_drops == 1
    # the application reads a little: not worth announcing (receiver SWS avoidance)
    p.conn.consumed(100)
    assert p.out() == []
    p.conn.consumed(3996)
    out = p.out()
    assert len(out) == 1 and out[0].window == 4096 and out[0].ack == p.seq


def test_window_never_shrinks():
    p = small_window_peer()
    p.send("PA", b"1" * 1000)
    p.out()
    edge = p.conn._rcv_adv
    p.send("PA", b"2" * 1000)
    p.out()
    assert p.conn._rcv_adv >= edge


def test_announced_window_is_scaled():
    p = Peer(TcpConfig(recv_buffer=4 << 20, recv_buffer_initial=1 << 20))
    sa = p.handshake()
    shift = opts(sa)["WScale"]
    assert shift == 7
    p.send("PA", b"x")
    out = p.out()
    assert out[-1].window << shift >= (1 << 20) - 1 - 128


def test_old_duplicate_data_draws_ack_and_is_not_redelivered():
    p = established()
    p.send("PA", b"hello")
    assert p.received() == b"hello"
    p.out()
    p.send("PA", b"hello", seq=(p.seq - 5) & MASK)
    out = p.out()
    assert len(out) == 1 and out[0].ack == p.seq
    assert p.received() == b""


def test_retransmission_overlapping_new_data_delivers_only_the_new_part():
    p = established()
    p.send("PA", b"abc")
    p.received()
    p.send("PA", b"abcdef", seq=(p.seq - 3) & MASK, advance_seq=False)
    p.seq = (p.seq + 3) & MASK
    assert p.received() == b"def"


def test_paws_drops_old_timestamp_and_acks():
    p = established()
    p.send("PA", b"new")
    p.received()
    p.out()
    # same sequence space, but a timestamp older than the last one seen: an old duplicate
    p.conn.receive(p.segment("PA", b"old", options=[("Timestamp", (500, 0))]), p.now)
    assert p.received() == b""
    out = p.out()
    assert len(out) == 1 and out[0].ack == p.seq
    assert p.conn.stats.paws_dropped == 1


def test_timestamps_are_echoed():
    p = established()
    p.send("PA", b"data", options=[("Timestamp", (123456, 0))])
    out = p.out()
    assert opts(out[-1])["Timestamp"][1] == 123456


def test_receive_buffer_autotuning_grows_with_delivery_rate():
    p = established()
    start = p.conn._rcv_buf
    windows = []
    for _rtt in range(12):
        # a sender that fills whatever window we announce, once per round trip
        for _ in range((p.conn._rcv_adv - p.conn.rcv_nxt) // 1448):
            p.send("A", b"r" * 1448)
        p.received()
        out = p.out()
        if out:
            windows.append(out[-1].window << 7)
        p.advance(0.04)
        p.out()
        if p.conn._rcv_buf > 2 * start:
            break
    assert p.conn._rcv_buf > 2 * start
    assert p.conn._rcv_buf <= p.config.recv_buffer
    assert max(windows) > start  # the announced window follows


def test_ooo_flood_is_bounded_in_memory():
    p = Peer(TcpConfig(max_ooo_ranges=64))
    p.handshake()
    base = p.seq
    # 5000 one-byte segments, each alone beyond a gap, all inside the window
    for i in range(5000):
        p.send("A", b"x", seq=(base + 2 + 2 * i) & MASK)
    ooo = p.conn._ooo
    assert len(ooo.ranges) <= 64
    assert ooo.nbytes <= 64
    assert p.conn.stats.ooo_dropped > 0
    # the lowest ranges were kept (they are the useful ones); the hole still fills
    p.send("A", b"hh", seq=base)
    got = p.received()
    assert got == b"hhx"


def test_ooo_data_beyond_window_is_not_kept():
    p = small_window_peer()
    p.send("A", b"y" * 3000, seq=(p.seq + 3000) & MASK)
    assert p.conn._ooo.nbytes == 1096  # only what fits below the window edge


def test_syn_ack_retransmission_after_established_is_answered_with_ack():
    p = established()
    p.send("SA", seq=PEER_ISS, ack=(ISS + 1) & MASK, advance_seq=False)
    out = p.out()
    assert len(out) == 1 and out[0].flags == "A"


def test_paws_compares_timestamps_across_their_wrap():
    p = Peer()
    p.ts = 0xFFFFFFF0  # the peer's timestamp clock is about to wrap
    p.handshake(syn_options=[("MSS", 1460), ("Timestamp", (0xFFFFFFF0, 0)), ("WScale", 7)])
    p.drain()
    for ts, data, accepted in [
        (0xFFFFFFFF, b"a", True),
        (0x00000005, b"b", True),  # wrapped: newer
        (0xFFFFFFF8, b"c", False),  # older than 5 across the wrap: an old duplicate
        (0x00000006, b"d", True),
    ]:
        p.conn.receive(p.segment("PA", data, options=[("Timestamp", (ts, 0))]), p.now)
        got = p.received()
        assert (got == data) is accepted, (hex(ts), got)
        if accepted:
            p.seq = (p.seq + len(data)) & MASK
        p.out()
    assert p.conn.stats.paws_dropped == 1
