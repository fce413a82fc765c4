"""Drop counters: every reason is a key, traffic counts are kept apart from drops."""

from __future__ import annotations

from scapy.all import IP, UDP, raw

from netstack.counters import Counters
from netstack.stack import Stack


def test_drops_exclude_traffic_counts() -> None:
    c = Counters()
    c["rx.udp"] += 5
    c["tx.tcp.rst"] += 1
    c["ipv4.bad_checksum"] += 2
    c["tcp.syn_flood"] += 1
    assert c.drops() == {"ipv4.bad_checksum": 2, "tcp.syn_flood": 1}
    assert c.total_drops() == 3
    assert c["never.seen"] == 0


def test_every_dropped_packet_is_counted_once_under_its_reason() -> None:
    st = Stack()
    good = raw(IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=1, dport=2) / b"ok")
    bad_ip = good[:10] + b"\x00\x00" + good[12:]
    bad_udp = good[:-1] + b"X"
    for pkt in (good, bad_ip, bad_udp, b"", b"\x10" * 30, good[:15]):
        st.receive_packet(pkt, 0.0)
    assert st.counters.drops() == {
        "ipv4.bad_checksum": 1,
        "udp.bad_checksum": 1,
        "ip.empty": 1,
        "ip.bad_version": 1,
        "ipv4.truncated": 1,
    }
    assert st.counters["rx.udp"] == 1
