"""The sans-IO Device: sessions, routing, allowed IPs, roaming and every drop counter."""

from __future__ import annotations

import logging
import struct

import pytest
from scapy.layers.inet import IP, UDP
from wg_lab import SERVER_ADDR, make_lab, ping4, udp4, udp6

from gateway.links.wireguard import keys
from gateway.links.wireguard.device import Device
from gateway.links.wireguard.timers import TimerConfig


def connected_lab(**kwargs):  # type: ignore[no-untyped-def]
    lab = make_lab(**kwargs)
    phone = lab.add_phone("alice")
    phone.device.send_packet(udp4(phone.address4, "192.0.2.77", b"first"), lab.now)
    lab.pump()
    return lab, phone


def test_phone_initiates_and_first_packet_arrives_tagged_with_the_peer() -> None:
    lab, phone = connected_lab()
    assert len(lab.delivered) == 1
    peer, packet = lab.delivered[0]
    assert peer is phone.peer and peer.name == "alice"
    assert peer.link_info == {"wireguard_peer": "alice", "wireguard_key": keys.to_base64(phone.device.public_key)}
    parsed = IP(packet)
    assert parsed.src == phone.address4 and bytes(parsed[UDP].payload) == b"first"
    assert lab.server.counters["handshake_responses_sent"] == 1
    assert phone.peer.endpoint == phone.addr


def test_server_answers_through_the_tunnel_v4_and_v6() -> None:
    lab, phone = connected_lab()
    assert lab.server.send_packet(udp4("192.0.2.77", phone.address4, b"reply"), lab.now)
    assert lab.server.send_packet(udp6("2001:db8::77", phone.address6, b"reply6"), lab.now)
    lab.pump()
    got = [p for _, p in lab.phone_delivered[0]]
    assert [bytes(IP(got[0])[UDP].payload)] == [b"reply"]
    assert got[1][0] >> 4 == 6 and got[1].endswith(b"reply6")


def test_transport_is_padded_to_16_and_trimmed_on_receipt() -> None:
    lab, phone = connected_lab()
    for size in (1, 15, 16, 17, 100):
        packet = udp4(phone.address4, "192.0.2.77", b"x" * size)
        phone.device.send_packet(packet, lab.now)
        [(datagram, _)] = phone.device.datagrams_to_send()
        assert (len(datagram) - 32) % 16 == 0 and len(datagram) - 32 >= len(packet)
        lab.server.receive_datagram(datagram, phone.addr, lab.now)
        assert lab.server.packets_received()[0][1] == packet


def test_routing_by_destination_between_two_phones_and_no_route() -> None:
    lab = make_lab()
    a, b = lab.add_phone("alice"), lab.add_phone("bob")
    for p in (a, b):
        p.device.send_packet(udp4(p.address4, "192.0.2.77"), lab.now)
    lab.pump()
    assert {peer.name for peer, _ in lab.delivered} == {"alice", "bob"}
    lab.server.send_packet(udp4("192.0.2.77", b.address4, b"for bob"), lab.now)
    lab.pump()
    assert lab.phone_delivered[0] == [] and bytes(IP(lab.phone_delivered[1][0][1])[UDP].payload) == b"for bob"
    assert not lab.server.send_packet(udp4("192.0.2.77", "10.9.9.9"), lab.now)
    assert lab.server.counters["no_route"] == 1


def test_a_peer_cannot_spoof_another_peers_source() -> None:
    lab = make_lab()
    a, b = lab.add_phone("alice"), lab.add_phone("bob")
    a.device.send_packet(udp4(a.address4, "192.0.2.77"), lab.now)
    lab.pump()
    lab.delivered.clear()
    # alice's tunnel carries a packet claiming bob's address, then one from outside any range
    a.device.send_packet(udp4(b.address4, "192.0.2.77"), lab.now)
    a.device.send_packet(udp4("203.0.113.5", "192.0.2.77"), lab.now)
    lab.pump()
    assert lab.delivered == []
    assert lab.server.counters["disallowed_source"] == 2


def test_replayed_transport_changes_nothing() -> None:
    lab, phone = connected_lab()
    phone.device.send_packet(udp4(phone.address4, "192.0.2.77", b"once"), lab.now)
    [(datagram, _)] = phone.device.datagrams_to_send()
    lab.server.receive_datagram(datagram, phone.addr, lab.now)
    assert len(lab.server.packets_received()) == 1
    before = phone.peer.rx_bytes
    lab.server.receive_datagram(datagram, ("203.0.113.9", 9999), lab.now)  # replayed by someone else
    assert lab.server.packets_received() == []
    assert lab.server.counters["replay"] == 1
    assert phone.peer.endpoint == phone.addr  # a replay does not move the endpoint
    assert phone.peer.rx_bytes == before


def test_forged_huge_counter_does_not_advance_the_window() -> None:
    lab, phone = connected_lab()
    phone.device.send_packet(udp4(phone.address4, "192.0.2.77", b"legit"), lab.now)
    [(datagram, _)] = phone.device.datagrams_to_send()
    forged = bytearray(datagram)
    struct.pack_into("<Q", forged, 8, 10**6)
    lab.server.receive_datagram(bytes(forged), phone.addr, lab.now)
    assert lab.server.counters["decrypt_failed"] == 1
    lab.server.receive_datagram(datagram, phone.addr, lab.now)
    assert len(lab.server.packets_received()) == 1


def test_corrupted_ciphertext_is_counted_as_decrypt_failure() -> None:
    lab, phone = connected_lab()
    phone.device.send_packet(udp4(phone.address4, "192.0.2.77"), lab.now)
    [(datagram, _)] = phone.device.datagrams_to_send()
    bad = bytearray(datagram)
    bad[-1] ^= 0x80
    lab.server.receive_datagram(bytes(bad), phone.addr, lab.now)
    assert lab.server.counters["decrypt_failed"] == 1 and lab.server.packets_received() == []


def test_stranger_handshake_is_dropped_silently() -> None:
    lab = make_lab()
    lab.add_phone("alice")
    stranger = Device(keys.generate_private_key())
    peer = stranger.add_peer(lab.server.public_key, allowed_ips=["0.0.0.0/0"], endpoint=SERVER_ADDR)
    stranger.initiate_handshake(peer, lab.now)
    [(initiation, _)] = stranger.datagrams_to_send()
    lab.server.receive_datagram(initiation, ("203.0.113.66", 5555), lab.now)
    assert lab.server.counters["unknown_key"] == 1
    assert lab.server.datagrams_to_send() == []


def test_handshake_with_bad_mac1_is_dropped_before_any_crypto() -> None:
    lab = make_lab()
    phone = lab.add_phone("alice")
    phone.device.initiate_handshake(phone.server_peer, lab.now)
    [(initiation, _)] = phone.device.datagrams_to_send()
    bad = bytearray(initiation)
    bad[-20] ^= 1  # inside MAC1
    lab.server.receive_datagram(bytes(bad), phone.addr, lab.now)
    assert lab.server.counters["bad_mac1"] == 1 and lab.server.datagrams_to_send() == []
    # addressed to another key entirely: MAC1 is wrong as well
    other = Device(keys.generate_private_key())
    p = other.add_peer(keys.public_key(keys.generate_private_key()), endpoint=SERVER_ADDR)
    other.initiate_handshake(p, lab.now)
    lab.server.receive_datagram(other.datagrams_to_send()[0][0], phone.addr, lab.now)
    assert lab.server.counters["bad_mac1"] == 2


def test_replayed_initiation_is_a_stale_timestamp() -> None:
    lab = make_lab()
    phone = lab.add_phone("alice")
    phone.device.initiate_handshake(phone.server_peer, lab.now)
    [(initiation, _)] = phone.device.datagrams_to_send()
    lab.server.receive_datagram(initiation, phone.addr, lab.now)
    assert len(lab.server.datagrams_to_send()) == 1
    lab.now += 1
    lab.server.receive_datagram(initiation, ("203.0.113.1", 1), lab.now)
    assert lab.server.counters["stale_timestamp"] == 1 and lab.server.datagrams_to_send() == []
    assert phone.peer.endpoint == phone.addr


def test_malformed_and_unknown_index_and_bad_inner_packets() -> None:
    lab, phone = connected_lab()
    server = lab.server
    for junk in (b"", b"\x01", b"\x05\x00\x00\x00" + bytes(40), b"\x01\x00\x00\x00" + bytes(10),
                 b"\x04\x00\x00\x00" + bytes(8), b"\x02\x00\x00\x00" + bytes(20), b"\x01\x01\x00\x00" + bytes(144)):
        server.receive_datagram(junk, phone.addr, lab.now)
    assert server.counters["malformed"] == 7
    server.receive_datagram(b"\x04\x00\x00\x00" + b"\xff" * 4 + bytes(8) + bytes(16), phone.addr, lab.now)
    assert server.counters["unknown_index"] == 1
    keypair = phone.server_peer.keypairs.current
    for inner in (b"\x00" * 20, b"\x45" + bytes(10)):  # not IP at all; IPv4 shorter than a header
        phone.device._encrypt(phone.server_peer, keypair, inner, lab.now)
    truncated = bytearray(udp4(phone.address4, "192.0.2.77"))
    struct.pack_into(">H", truncated, 2, 500)  # claims more than it carries
    phone.device._encrypt(phone.server_peer, keypair, bytes(truncated), lab.now)
    lab.pump()
    assert server.counters["bad_inner_packet"] == 3 and lab.delivered[1:] == []


def test_expired_keypair_is_refused_and_rekeyed() -> None:
    config = TimerConfig(reject_after_time=30.0, rekey_after_time=20.0, keepalive_timeout=1e6)
    lab, phone = connected_lab(config=config)
    phone.device.send_packet(udp4(phone.address4, "192.0.2.77"), lab.now)
    [(old, _)] = phone.device.datagrams_to_send()
    lab.now += 31
    lab.server.receive_datagram(old, phone.addr, lab.now)
    assert lab.server.counters["expired_keypair"] == 1


def test_roaming_follows_the_latest_authenticated_packet() -> None:
    lab, phone = connected_lab()
    phone.addr = ("198.51.100.200", 12345)  # the phone moved to another network
    phone.device.send_packet(udp4(phone.address4, "192.0.2.77", b"from new place"), lab.now)
    lab.pump()
    assert phone.peer.endpoint == ("198.51.100.200", 12345)
    assert lab.server.counters["roamed"] == 1
    lab.server.send_packet(udp4("192.0.2.77", phone.address4, b"found you"), lab.now)
    [(_, addr)] = lab.server.datagrams_to_send()
    assert addr == ("198.51.100.200", 12345)


def test_ipv6_outer_addresses_work_as_endpoints() -> None:
    lab, phone = connected_lab()
    phone.addr = ("2001:db8::5", 51000, 0, 0)
    phone.device.send_packet(udp4(phone.address4, "192.0.2.77"), lab.now)
    lab.pump()
    assert phone.peer.endpoint == ("2001:db8::5", 51000, 0, 0)


def test_responder_waits_for_confirmation_before_using_a_new_session() -> None:
    lab, phone = connected_lab()
    first = phone.peer.keypairs.current
    assert first is not None and not first.is_initiator
    # The phone rekeys (initiator); until its first data under the new keys arrives the
    # server keeps the new keypair in `next` and still sends with the old one.
    lab.now += 10
    phone.device.initiate_handshake(phone.server_peer, lab.now)
    [(init, _)] = phone.device.datagrams_to_send()
    lab.server.receive_datagram(init, phone.addr, lab.now)
    assert phone.peer.keypairs.next is not None and phone.peer.keypairs.current is first
    lab.server.send_packet(udp4("192.0.2.77", phone.address4), lab.now)
    out = lab.server.datagrams_to_send()
    assert struct.unpack_from("<I", out[-1][0], 4)[0] == first.remote_index
    for dg, _ in out:
        phone.device.receive_datagram(dg, SERVER_ADDR, lab.now)
    lab.pump()  # phone sends its keepalive under the new keys: server rotates
    assert phone.peer.keypairs.current is not first and phone.peer.keypairs.previous is first
    # a late packet under the previous keypair still decrypts
    phone.device._encrypt(phone.server_peer, phone.server_peer.keypairs.previous,
                          udp4(phone.address4, "192.0.2.77", b"late"), lab.now)
    lab.delivered.clear()
    lab.pump()
    assert [bytes(IP(p)[UDP].payload) for _, p in lab.delivered] == [b"late"]


@pytest.mark.parametrize("psk", [None, bytes(range(32))])
def test_preshared_key_must_match(psk: bytes | None) -> None:
    lab = make_lab()
    phone = lab.add_phone("alice", psk=psk)
    phone.device.send_packet(ping4(phone.address4, "192.0.2.77"), lab.now)
    lab.pump()
    assert len(lab.delivered) == 1
    # the phone's psk differs from the server's: the response does not authenticate
    other = lab.add_phone("bob", psk=bytes(32) if psk else b"\x07" * 32)
    other.peer.handshake.psk = b"\x09" * 32
    other.device.send_packet(ping4(other.address4, "192.0.2.77"), lab.now)
    lab.pump()
    assert len(lab.delivered) == 1 and other.device.counters["unexpected_response"] == 1


def test_staged_packets_are_bounded() -> None:
    lab = make_lab()
    phone = lab.add_phone("alice")
    for i in range(200):
        phone.device.send_packet(udp4(phone.address4, "192.0.2.77", str(i).encode()), lab.now)
    assert phone.device.counters["staged_overflow"] == 200 - 128
    lab.pump()
    assert len(lab.delivered) == 128
    assert bytes(IP(lab.delivered[-1][1])[UDP].payload) == b"199"


def test_timestamps_grow_even_with_a_frozen_clock() -> None:
    device = Device(keys.generate_private_key(), clock=lambda: 1_700_000_000.0)
    stamps = [device._timestamp() for _ in range(100)]
    assert stamps == sorted(set(stamps))


def test_server_and_peer_never_raise_on_random_bytes() -> None:
    import random

    lab, phone = connected_lab()
    rnd = random.Random(5)
    for _ in range(2000):
        kind = rnd.choice([1, 2, 3, 4, 9])
        size = rnd.choice([0, 3, 4, 16, 32, 64, 92, 148, 200])
        data = bytes([kind, 0, 0, 0]) + rnd.randbytes(size) if size else b""
        lab.server.receive_datagram(data, ("203.0.113.3", 3), lab.now)
    assert lab.server.packets_received() == []
    assert lab.server.counters["internal_error"] == 0


def test_initiation_that_passes_mac1_but_not_the_aead_and_a_flood() -> None:
    from gateway.links.wireguard.cookie import CookieGenerator

    lab = make_lab()
    phone = lab.add_phone("alice")
    phone.device.initiate_handshake(phone.server_peer, lab.now)
    [(initiation, _)] = phone.device.datagrams_to_send()
    forged = bytearray(initiation)
    forged[50] ^= 1  # inside the encrypted static key; MAC1 recomputed so it passes
    CookieGenerator(lab.server.public_key, 120).add_macs(forged, lab.now)
    lab.server.receive_datagram(bytes(forged), phone.addr, lab.now)
    assert lab.server.counters["handshake_decrypt_failed"] == 1 and lab.server.datagrams_to_send() == []

    lab.server.receive_datagram(initiation, phone.addr, lab.now)
    assert lab.server.counters["handshake_responses_sent"] == 1
    lab.server.datagrams_to_send()
    lab.now += 0.005  # a second genuine, newer initiation 5 ms later: over 50 per second
    phone.device.initiate_handshake(phone.server_peer, lab.now, retry=True)
    [(second, _)] = phone.device.datagrams_to_send()
    lab.server.receive_datagram(second, phone.addr, lab.now)
    assert lab.server.counters["handshake_flood"] == 1 and lab.server.datagrams_to_send() == []


def test_removed_peer_is_a_stranger_and_its_sessions_are_gone() -> None:
    lab, phone = connected_lab()
    phone.device.send_packet(udp4(phone.address4, "192.0.2.77"), lab.now)
    [(datagram, _)] = phone.device.datagrams_to_send()
    lab.server.remove_peer(phone.peer)
    lab.server.receive_datagram(datagram, phone.addr, lab.now)
    assert lab.server.counters["unknown_index"] == 1 and lab.server.packets_received() == []
    assert lab.server._indices == {}
    assert not lab.server.send_packet(udp4("192.0.2.77", phone.address4), lab.now)


def test_padding_is_capped_at_the_mtu_and_keepalives_are_empty() -> None:
    from gateway.links.wireguard.transport import padded

    assert padded(b"", 1420) == b""
    assert len(padded(b"x" * 17, 1420)) == 32
    assert len(padded(b"x" * 1415, 1420)) == 1420  # would be 1424: capped at the MTU
    assert padded(b"x" * 1420, 1420) == b"x" * 1420
    assert len(padded(b"x" * 1425, 1420)) == 1436  # beyond the MTU: the 5-byte tail is padded to 16


def test_drop_log_line_names_the_sender_as_an_address(caplog) -> None:  # type: ignore[no-untyped-def]
    """`-v` printed ('::ffff:10.99.1.2', 54767, 0, 0): the dual-stack socket's tuple."""
    device = Device(keys.generate_private_key())
    with caplog.at_level(logging.DEBUG, logger="gateway.links.wireguard.device"):
        device.receive_datagram(b"\x04\x00\x00\x00" + bytes(28), ("::ffff:10.99.1.2", 54767, 0, 0), 1.0)
        device.receive_datagram(b"\x01short", ("2001:db8::2", 51820, 0, 0), 1.0)
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert lines == ["wireguard: dropped a datagram from 10.99.1.2:54767: unknown_index",
                     "wireguard: dropped a datagram from [2001:db8::2]:51820: malformed"]


def test_link_local_icmpv6_from_a_peer_is_ignored_not_a_spoofing_drop() -> None:
    """Every run reported disallowed_source drops: the phone's tunnel interface sends router
    solicitations and MLD reports from its fe80:: address.  They are counted apart, while a
    link-local packet that is not ICMPv6 (and a real spoof) is still dropped as before."""
    from scapy.layers.inet6 import (
        ICMPv6MLReport2,
        ICMPv6ND_NS,
        ICMPv6ND_RS,
        IPv6,
        IPv6ExtHdrHopByHop,
        RouterAlert,
    )

    lab = make_lab()
    a = lab.add_phone("alice")
    a.device.send_packet(udp4(a.address4, "192.0.2.77"), lab.now)
    lab.pump()
    lab.delivered.clear()
    for packet in (
        IPv6(src="fe80::1234", dst="ff02::2", hlim=255) / ICMPv6ND_RS(),
        IPv6(src="::", dst="ff02::1:ff00:1234", hlim=255) / ICMPv6ND_NS(tgt="fe80::1234"),
        IPv6(src="fe80::1234", dst="ff02::16", hlim=1) / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / ICMPv6MLReport2(),
    ):
        a.device.send_packet(bytes(packet), lab.now)
    a.device.send_packet(udp6("fe80::1234", "fe80::1"), lab.now)  # link-local, but not ICMPv6
    a.device.send_packet(udp4("203.0.113.5", "192.0.2.77"), lab.now)  # a spoofed source
    lab.pump()
    assert lab.delivered == []
    assert lab.server.counters["ignored_link_local"] == 3
    assert lab.server.counters["disallowed_source"] == 2
