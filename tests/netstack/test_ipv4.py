"""IPv4 header parsing and building, with scapy as the independent oracle."""

from __future__ import annotations

import pytest
from scapy.all import IP, UDP, IPOption_RR, Raw, raw

from netstack.errors import PacketError
from netstack.ipv4 import build_ipv4, build_ipv4_header, is_unicast_source, parse_ipv4


def packet(**kw: object) -> bytes:
    return raw(IP(src="10.1.2.3", dst="192.0.2.9", **kw) / UDP(sport=1, dport=2) / b"payload")


def test_parse_fields_match_scapy() -> None:
    data = packet(ttl=17, id=4242, tos=0x10, flags="DF")
    p = parse_ipv4(memoryview(data))
    assert p.src == bytes([10, 1, 2, 3]) and p.dst == bytes([192, 0, 2, 9])
    assert (p.proto, p.ttl, p.ident, p.tos, p.df, p.mf, p.frag_offset) == (17, 17, 4242, 0x10, True, False, 0)
    assert bytes(p.payload) == data[20:]
    assert not p.is_fragment


def test_options_are_skipped() -> None:
    data = raw(IP(src="10.1.2.3", dst="192.0.2.9", options=[IPOption_RR()]) / UDP(sport=1, dport=2) / b"x")
    assert data[0] & 0x0F > 5
    p = parse_ipv4(memoryview(data))
    assert len(p.header) == (data[0] & 0x0F) * 4
    assert bytes(p.payload) == data[len(p.header) :]


def test_link_padding_after_total_length_is_cut() -> None:
    data = packet() + b"\x00" * 12
    p = parse_ipv4(memoryview(data))
    assert bytes(p.payload) == packet()[20:]


def test_fragment_fields() -> None:
    data = raw(IP(src="10.1.2.3", dst="192.0.2.9", flags="MF", frag=3, proto=17) / Raw(b"x" * 16))
    p = parse_ipv4(memoryview(data))
    assert p.mf and p.frag_offset == 24 and p.is_fragment


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d[:19], "ipv4.truncated"),
        (lambda d: b"\x65" + d[1:], "ipv4.bad_version"),
        (lambda d: b"\x44" + d[1:], "ipv4.bad_ihl"),
        (lambda d: d[:2] + (len(d) + 1).to_bytes(2, "big") + d[4:], "ipv4.truncated"),
        (lambda d: d[:2] + (19).to_bytes(2, "big") + d[4:], "ipv4.bad_total_length"),
        (lambda d: d[:10] + bytes([d[10] ^ 0xFF]) + d[11:], "ipv4.bad_checksum"),
        (lambda d: d[:8] + bytes([d[8] ^ 1]) + d[9:], "ipv4.bad_checksum"),
    ],
)
def test_bad_headers_are_refused_with_their_reason(mutate, reason: str) -> None:
    with pytest.raises(PacketError) as e:
        parse_ipv4(memoryview(mutate(packet())))
    assert e.value.reason == reason


def test_reserved_flag_is_refused() -> None:
    data = raw(IP(src="10.1.2.3", dst="192.0.2.9", flags=4) / UDP())
    with pytest.raises(PacketError, match="reserved_flag"):
        parse_ipv4(memoryview(data))


def test_built_packet_is_what_scapy_builds() -> None:
    src, dst = bytes([10, 0, 0, 1]), bytes([198, 51, 100, 7])
    built = build_ipv4(src, dst, 17, b"0123456789", ttl=33, ident=999, df=True)
    ref = IP(built)
    assert ref.version == 4 and ref.ihl == 5 and ref.len == 30 and ref.ttl == 33 and ref.id == 999
    assert ref.flags == "DF" and ref.src == "10.0.0.1" and ref.dst == "198.51.100.7"
    # scapy recomputes the checksum when it is deleted; ours must be the same value
    chk = ref.chksum
    del ref.chksum
    assert IP(raw(ref)).chksum == chk
    assert parse_ipv4(memoryview(built)).ttl == 33


def test_header_for_fragment_carries_offset_and_mf() -> None:
    hdr = build_ipv4_header(
        b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02", 17, 8, ident=7, df=False, mf=True, frag_offset=1480
    )
    ref = IP(hdr + b"\x00" * 8)
    assert ref.flags == "MF" and ref.frag == 185 and ref.id == 7


def test_oversized_packet_cannot_be_built() -> None:
    with pytest.raises(ValueError):
        build_ipv4(b"\x01\x02\x03\x04", b"\x01\x02\x03\x05", 17, b"x" * 65516)


@pytest.mark.parametrize(
    ("ip", "ok"),
    [
        ("10.0.0.1", True),
        ("0.0.0.0", False),
        ("127.0.0.1", False),
        ("224.0.0.1", False),
        ("255.255.255.255", False),
    ],
)
def test_martian_sources(ip: str, ok: bool) -> None:
    import socket

    assert is_unicast_source(socket.inet_aton(ip)) is ok
