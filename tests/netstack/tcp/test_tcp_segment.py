"""Segment parsing and building against scapy, option by option."""

import pytest
from scapy.layers.inet import IP, TCP
from tcp_peer import LOCAL, LOCAL_IP, REMOTE, REMOTE_IP, check_checksum, scapy_segment

from netstack.tcp import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    SegmentError,
    TcpSegment,
    build_segment,
    new_iss,
    parse_segment,
    rst_for,
)
from netstack.tcp.segment import build_options


def test_parse_all_options_from_scapy():
    raw = scapy_segment(
        "S",
        0xFFFFFFFF,
        0,
        window=29200,
        options=[
            ("MSS", 1400),
            ("SAckOK", b""),
            ("Timestamp", (0xDEADBEEF, 7)),
            ("NOP", None),
            ("WScale", 9),
        ],
    )
    seg = parse_segment(raw)
    assert (seg.src_port, seg.dst_port, seg.seq, seg.ack) == (REMOTE[1], LOCAL[1], 0xFFFFFFFF, 0)
    assert seg.flags == SYN and seg.window == 29200
    assert seg.mss == 1400 and seg.wscale == 9 and seg.sack_permitted
    assert (seg.ts_val, seg.ts_ecr) == (0xDEADBEEF, 7)
    assert bytes(seg.payload) == b""


def test_parse_sack_blocks_and_payload():
    raw = scapy_segment(
        "PA", 10, 20, b"hello", options=[("NOP", None), ("NOP", None), ("SAck", (0xFFFFFF00, 0x10, 50, 60))]
    )
    seg = parse_segment(raw)
    assert seg.sack_blocks == ((0xFFFFFF00, 0x10), (50, 60))
    assert seg.flags == PSH | ACK
    assert bytes(seg.payload) == b"hello"
    assert seg.ts_val is None and seg.mss is None


def test_parse_timestamp_fast_path_and_eol():
    seg = parse_segment(
        scapy_segment("A", 1, 2, options=[("NOP", None), ("NOP", None), ("Timestamp", (5, 6))])
    )
    assert (seg.ts_val, seg.ts_ecr) == (5, 6)
    seg = parse_segment(scapy_segment("A", 1, 2, b"x", options=[("EOL", None), ("MSS", 1000)]))
    assert seg.mss is None  # nothing after EOL is read
    assert bytes(seg.payload) == b"x"


def test_wscale_above_14_is_clamped():
    seg = parse_segment(scapy_segment("S", 1, options=[("WScale", 20)]))
    assert seg.wscale == 14


def test_unknown_option_is_skipped():
    seg = parse_segment(scapy_segment("S", 1, options=[(30, b"\x01\x02"), ("MSS", 1200)]))
    assert seg.mss == 1200


@pytest.mark.parametrize(
    "raw,reason",
    [
        (b"\x00" * 19, "truncated"),
        (bytes(TCP(dataofs=4)), "bad_data_offset"),
        (bytes(TCP(dataofs=15)), "bad_data_offset"),
        (bytes(TCP(dataofs=6)) + b"\x02\x04\x05", "bad_data_offset"),
        (
            bytes(TCP(dataofs=6, options=[]))[:20] + b"\x02\x09\x00\x00",
            "bad_option",
        ),  # length runs past the header
        (bytes(TCP(dataofs=6))[:20] + b"\x02\x03\x00\x00", "bad_option"),  # MSS with the wrong length
        (bytes(TCP(dataofs=6))[:20] + b"\x01\x01\x01\x08", "bad_option"),  # kind without its length byte
        (bytes(TCP(dataofs=6))[:20] + b"\x05\x03\x00\x00", "bad_option"),  # SACK of no whole block
        (bytes(TCP(dataofs=6))[:20] + b"\x08\x01\x00\x00", "bad_option"),  # length below 2
    ],
)
def test_malformed_segments_raise_segment_error(raw, reason):
    with pytest.raises(SegmentError) as e:
        parse_segment(raw)
    assert e.value.reason == reason


def test_build_is_read_back_by_scapy_with_valid_checksum():
    seg = TcpSegment(
        443,
        50000,
        0xFFFFFFFE,
        0x12345678,
        SYN | ACK,
        65535,
        mss=1360,
        wscale=7,
        sack_permitted=True,
        ts_val=99,
        ts_ecr=1000,
    )
    raw = build_segment(seg, LOCAL[0], REMOTE[0])
    check_checksum(raw)
    p = TCP(raw)
    assert (p.sport, p.dport, p.seq, p.ack, p.window) == (443, 50000, 0xFFFFFFFE, 0x12345678, 65535)
    assert p.flags == "SA"
    o = dict((k, v) for k, v in p.options if k != "NOP")
    assert o["MSS"] == 1360 and o["WScale"] == 7 and "SAckOK" in o and o["Timestamp"] == (99, 1000)
    assert len(raw) % 4 == 0


@pytest.mark.parametrize("payload", [b"", b"a", b"ab", b"\xff" * 1459, bytes(range(256)) * 5 + b"z"])
def test_checksum_of_odd_and_even_payloads(payload):
    seg = TcpSegment(1, 2, 3, 4, ACK | PSH, 5, ts_val=1, ts_ecr=2, payload=payload)
    raw = build_segment(seg, LOCAL[0], REMOTE[0])
    check_checksum(raw)
    assert bytes(TCP(raw).payload) == payload
    # and with IPv6 addresses: scapy computes the IPv6 pseudo-header checksum
    from scapy.layers.inet6 import IPv6

    src6 = bytes.fromhex("20010db8000000000000000000000001")
    dst6 = bytes.fromhex("20010db8000000000000000000000002")
    raw6 = build_segment(seg, src6, dst6)
    pkt = IPv6(bytes(IPv6(src="2001:db8::1", dst="2001:db8::2", nh=6, plen=len(raw6)) / TCP(raw6)))
    chk = pkt[TCP].chksum
    del pkt[TCP].chksum
    assert IPv6(bytes(pkt))[TCP].chksum == chk


def test_sack_blocks_fit_options_space():
    blocks = [(i, i + 1) for i in range(0, 50, 10)]
    with_ts = build_options(ts_val=1, ts_ecr=2, sack_blocks=blocks)
    assert len(with_ts) == 12 + 4 + 3 * 8 and len(with_ts) <= 40
    without_ts = build_options(sack_blocks=blocks)
    assert len(without_ts) == 4 + 4 * 8
    p = TCP(build_segment(TcpSegment(1, 2, 3, 4, ACK, 5, sack_blocks=tuple(blocks)), LOCAL[0], REMOTE[0]))
    assert dict(p.options)["SAck"] == (0, 1, 10, 11, 20, 21, 30, 31)


def test_rst_for_syn_acknowledges_it():
    syn = parse_segment(scapy_segment("S", 0xFFFFFFFF, 0, options=[("MSS", 1460)]))
    raw = rst_for(syn, LOCAL[0], REMOTE[0])
    check_checksum(raw)
    p = TCP(raw)
    assert p.flags == "RA" and p.seq == 0 and p.ack == 0  # SEG.SEQ + 1 wraps to 0
    assert (p.sport, p.dport) == (LOCAL[1], REMOTE[1])


def test_rst_for_ack_takes_its_sequence_from_the_ack():
    seg = parse_segment(scapy_segment("A", 5, 0xABCDEF01, b"data"))
    p = TCP(rst_for(seg, LOCAL[0], REMOTE[0]))
    assert p.flags == "R" and p.seq == 0xABCDEF01


def test_rst_for_fin_with_data_counts_both():
    seg = parse_segment(scapy_segment("F", 100, 0, b"abc"))
    p = TCP(rst_for(seg, LOCAL[0], REMOTE[0]))
    assert p.flags == "RA" and p.ack == 104


def test_rst_is_never_answered():
    assert rst_for(parse_segment(scapy_segment("R", 5, 0)), LOCAL[0], REMOTE[0]) is None
    assert rst_for(parse_segment(scapy_segment("RA", 5, 6)), LOCAL[0], REMOTE[0]) is None


def test_iss_grows_with_time_and_differs_per_tuple():
    a = new_iss(LOCAL, REMOTE, 100.0)
    b = new_iss(LOCAL, REMOTE, 101.0)
    assert (b - a) & 0xFFFFFFFF == 250_000  # the 4 microsecond clock
    other = new_iss(LOCAL, (REMOTE[0], REMOTE[1] + 1), 100.0)
    assert other != a
    assert 0 <= a <= 0xFFFFFFFF


def test_flag_constants_match_scapy():
    p = TCP(bytes(TCP(flags="FSRPAUEC")))
    assert int(p.flags) == FIN | SYN | RST | PSH | ACK | 0x20 | 0x40 | 0x80


def test_parse_accepts_memoryview_without_copy():
    raw = bytearray(bytes(IP(src=REMOTE_IP, dst=LOCAL_IP) / TCP() / b"payload")[20:])
    seg = parse_segment(memoryview(raw))
    raw[-1] = ord("X")
    assert bytes(seg.payload) == b"payloaX"
