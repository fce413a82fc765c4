"""MAC1 on every handshake message, cookie replies and MAC2 under load."""

from __future__ import annotations

import random

from wg_lab import make_lab, udp4

from gateway.links.wireguard import keys
from gateway.links.wireguard.cookie import CookieChecker, CookieGenerator
from gateway.links.wireguard.messages import unpack_cookie_reply


def _pair():  # type: ignore[no-untyped-def]
    our = keys.public_key(keys.generate_private_key())
    return CookieChecker(our, random.Random(3).randbytes, 120.0), CookieGenerator(our, 120.0)


def test_mac1_only_without_cookie_then_mac2_after_a_reply() -> None:
    # The same sequence as wireguard-go's TestCookieMAC1, with our generator and checker.
    checker, generator = _pair()
    source = bytes([192, 168, 13, 37, 10, 10])
    msg = generator.add_macs(bytearray(random.Random(1).randbytes(148)), now=0.0)
    assert checker.check_mac1(bytes(msg))
    assert msg[-16:] == bytes(16) and not checker.check_mac2(bytes(msg), source, 0.0)

    reply = checker.create_reply(bytes(msg), 1377, source, now=0.0)
    assert len(reply) == 64 and reply[0] == 3
    assert generator.consume_reply(unpack_cookie_reply(reply), now=0.0)

    msg = generator.add_macs(bytearray(random.Random(2).randbytes(148)), now=1.0)
    assert checker.check_mac1(bytes(msg)) and checker.check_mac2(bytes(msg), source, 1.0)
    msg[5] ^= 0x20
    assert not checker.check_mac1(bytes(msg)) and not checker.check_mac2(bytes(msg), source, 1.0)
    msg[5] ^= 0x20
    assert not checker.check_mac2(bytes(msg), bytes([192, 168, 13, 37, 40, 1]), 1.0)  # other port
    assert not checker.check_mac2(bytes(msg), bytes([192, 168, 13, 38, 10, 10]), 1.0)  # other ip


def test_cookie_reply_is_bound_to_the_mac1_it_answers() -> None:
    checker, generator = _pair()
    msg = generator.add_macs(bytearray(148), now=0.0)
    reply = bytearray(checker.create_reply(bytes(msg), 1, b"\x01\x02\x03\x04\x00\x01", 0.0))
    generator.add_macs(bytearray(b"\x01" * 148), now=0.0)  # a newer message: other MAC1
    assert not generator.consume_reply(unpack_cookie_reply(bytes(reply)), now=0.0)


def test_cookie_secret_rotates_and_old_cookies_expire() -> None:
    checker, generator = _pair()
    source = b"\x0a\x00\x00\x01\x30\x39"
    msg = generator.add_macs(bytearray(148), now=0.0)
    generator.consume_reply(unpack_cookie_reply(checker.create_reply(bytes(msg), 1, source, 0.0)), 0.0)
    fresh = generator.add_macs(bytearray(148), now=100.0)
    assert checker.check_mac2(bytes(fresh), source, 100.0)
    assert not checker.check_mac2(bytes(fresh), source, 121.0)  # secret older than 2 minutes
    stale = generator.add_macs(bytearray(148), now=121.0)
    assert stale[-16:] == bytes(16)  # the generator stops using a cookie older than 2 minutes


def test_under_load_the_server_answers_with_a_cookie_and_accepts_mac2() -> None:
    lab = make_lab(handshake_load_threshold=3)
    phone = lab.add_phone("alice")
    # A flood of junk initiations with valid MAC1 from a stranger raises the load.
    stranger = lab.add_phone("stranger")
    lab.server.remove_peer(stranger.peer)
    for _ in range(5):
        lab.now += 0.001
        stranger.device.initiate_handshake(stranger.server_peer, lab.now, retry=True)
        for dg, _ in stranger.device.datagrams_to_send():
            lab.server.receive_datagram(dg, stranger.addr, lab.now)
    assert lab.server.counters["cookie_replies_sent"] >= 1
    lab.server.datagrams_to_send()

    # The real phone's first initiation gets a cookie reply instead of a response ...
    phone.device.send_packet(udp4(phone.address4, "192.0.2.77"), lab.now)
    [(init, _)] = phone.device.datagrams_to_send()
    lab.server.receive_datagram(init, phone.addr, lab.now)
    [(reply, to)] = lab.server.datagrams_to_send()
    assert reply[0] == 3 and to == phone.addr
    phone.device.receive_datagram(reply, ("192.0.2.1", 51820), lab.now)
    assert phone.device.counters["cookie_replies_received"] == 1
    # ... and its retry (after REKEY_TIMEOUT) carries MAC2 and is answered.
    lab.advance(6, step=0.5)
    assert lab.server.counters["handshake_responses_sent"] == 1
    assert len(lab.delivered) == 1 and lab.delivered[0][0] is phone.peer


def test_cookie_reply_from_a_spoofer_is_ignored() -> None:
    lab = make_lab()
    phone = lab.add_phone("alice")
    phone.device.initiate_handshake(phone.server_peer, lab.now)
    [(init, _)] = phone.device.datagrams_to_send()
    forged_checker = CookieChecker(keys.public_key(keys.generate_private_key()), random.Random(9).randbytes, 120)
    reply = forged_checker.create_reply(init, int.from_bytes(init[4:8], "little"), b"\x01" * 6, lab.now)
    phone.device.receive_datagram(reply, ("192.0.2.1", 51820), lab.now)
    assert phone.device.counters["bad_cookie_reply"] == 1
    assert phone.server_peer.cookies.cookie == b""


def test_under_load_valid_mac2_is_still_rate_limited_per_address() -> None:
    lab = make_lab(handshake_load_threshold=0)  # always under load
    phone = lab.add_phone("alice")
    phone.device.initiate_handshake(phone.server_peer, lab.now)
    [(init, _)] = phone.device.datagrams_to_send()
    lab.server.receive_datagram(init, phone.addr, lab.now)
    [(reply, _)] = lab.server.datagrams_to_send()
    phone.device.receive_datagram(reply, ("192.0.2.1", 51820), lab.now)
    results = []
    for _ in range(10):
        phone.device.initiate_handshake(phone.server_peer, lab.now, retry=True)
        for dg, _ in phone.device.datagrams_to_send():
            lab.server.receive_datagram(dg, phone.addr, lab.now)
        results.append(lab.server.counters["rate_limited"])
    assert lab.server.counters["rate_limited"] == 5  # burst of 5, then refused
