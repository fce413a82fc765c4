"""Path MTU discovery's effect on the sender: ``set_path_mss`` after an ICMP packet-too-big."""

from tcp_peer import ISS, MASK, Peer, scapy_segment

from netstack.tcp import TcpConfig, TcpConnection, parse_segment

MSS = 1448  # 1460 minus the timestamp option


def established(**cfg):
    p = Peer(TcpConfig(**cfg))
    p.handshake()
    p.drain()
    return p


def rel(seq):
    return (seq - ISS) & MASK


def test_lower_path_mss_shrinks_new_segments():
    p = established()
    p.conn.set_path_mss(1200)
    p.conn.send(b"a" * 3000)
    sizes = [len(s.payload) for s in p.out()]
    assert sizes == [1188, 1188, 624]  # 1200 minus the 12-byte timestamp option


def test_path_mss_never_raises_above_the_negotiated_mss():
    p = established()
    p.conn.set_path_mss(1200)
    p.conn.set_path_mss(9000)
    p.conn.send(b"a" * 1500)
    assert [len(s.payload) for s in p.out()] == [1188, 312]


def test_path_mss_is_floored_against_forged_tiny_mtus():
    p = established()
    p.conn.set_path_mss(100)
    p.conn.send(b"a" * 1000)
    assert [len(s.payload) for s in p.out()] == [524, 476]  # 536 minus the timestamp option


def test_path_mss_floor_is_1220_on_ipv6():
    local = (bytes(15) + b"\x01", 443)
    remote = (bytes(15) + b"\x02", 50000)
    syn = parse_segment(scapy_segment("S", 1000, options=[("MSS", 1440)]))
    c = TcpConnection.from_syn(syn, local, remote, 0.0, TcpConfig(), ISS)
    c.set_path_mss(600)
    assert c._mss == 1220


def test_segments_in_flight_are_resent_at_the_new_size_without_a_window_cut():
    p = established()
    p.conn.send(b"b" * 4 * MSS)
    assert len(p.out()) == 4
    cwnd = p.conn._cc.cwnd
    p.now += 0.01
    p.conn.set_path_mss(1000)
    out = p.out()
    # everything in flight again, cut to 988 bytes, from the first unacknowledged byte
    assert rel(out[0].seq) == 1
    assert all(len(s.payload) <= 988 for s in out)
    assert sum(len(s.payload) for s in out) == 4 * MSS
    p.send("A", ack=(ISS + 1 + 4 * MSS) & MASK)
    assert p.conn.snd_una == 1 + 4 * MSS
    assert p.conn._cc.cwnd >= cwnd  # not a congestion event
    assert p.conn.stats.timeouts == 0
