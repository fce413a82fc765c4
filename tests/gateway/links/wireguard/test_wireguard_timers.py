"""The timers of the paper's section 6, driven by injected time (no sleeping)."""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, UDP
from wg_lab import make_lab, udp4

from gateway.links.wireguard.timers import TimerConfig


def _connect(lab, phone) -> None:  # type: ignore[no-untyped-def]
    phone.device.send_packet(udp4(phone.address4, "192.0.2.77", b"hi"), lab.now)
    lab.pump()


def _transport_sizes(datagrams) -> list[int]:  # type: ignore[no-untyped-def]
    return [len(d) for d, _ in datagrams if d[0] == 4]


def test_passive_keepalive_after_receiving_data_and_staying_silent() -> None:
    lab = make_lab()
    phone = lab.add_phone("alice")
    _connect(lab, phone)
    lab.pump()
    assert lab.server.get_timer() is not None
    start = lab.server.counters["keepalives_sent"]
    # 9.9 s of silence: nothing yet; at 10 s (KEEPALIVE_TIMEOUT) the server sends one.
    lab.now += 9.9
    lab.server.handle_timer(lab.now)
    assert lab.server.counters["keepalives_sent"] == start
    lab.now += 0.2
    lab.server.handle_timer(lab.now)
    assert lab.server.counters["keepalives_sent"] == start + 1
    assert _transport_sizes(lab.server.datagrams_to_send()) == [32]


def test_no_keepalive_when_the_server_answered() -> None:
    lab = make_lab()
    phone = lab.add_phone("alice")
    _connect(lab, phone)
    lab.server.send_packet(udp4("192.0.2.77", phone.address4), lab.now)  # an answer went out
    lab.pump()
    lab.advance(30)
    assert lab.server.counters["keepalives_sent"] == 0


def test_persistent_keepalive_when_configured() -> None:
    lab = make_lab()
    phone = lab.add_phone("alice", server_keepalive=25)
    _connect(lab, phone)
    lab.advance(100, step=1.0)
    # passive one at +10 s, then every 25 s of no other traffic
    assert lab.server.counters["keepalives_sent"] >= 4
    quiet = make_lab()
    p2 = quiet.add_phone("bob")
    _connect(quiet, p2)
    quiet.advance(100, step=1.0)
    assert quiet.server.counters["keepalives_sent"] == 1  # only the passive one


def test_server_rekeys_after_messages_and_after_time_as_initiator() -> None:
    config = TimerConfig(rekey_after_messages=5, rekey_after_time=20.0, reject_after_time=30.0,
                         rekey_timeout=2.0, keepalive_timeout=3.0)
    lab = make_lab(config=config)
    phone = lab.add_phone("alice", config=config)
    _connect(lab, phone)
    first = phone.peer.keypairs.current
    for i in range(7):  # the 6th message crosses REKEY_AFTER_MESSAGES: the server initiates
        lab.server.send_packet(udp4("192.0.2.77", phone.address4, str(i).encode()), lab.now)
    assert lab.server.counters["handshake_initiations_sent"] == 1
    lab.pump()
    assert lab.server.counters["handshakes_completed"] == 1
    second = phone.peer.keypairs.current
    assert second is not first and second.is_initiator and phone.peer.keypairs.previous is first
    assert len(lab.phone_delivered[0]) == 7
    # As the initiator of the current session, it rekeys again after REKEY_AFTER_TIME when sending.
    lab.now += 21
    lab.server.send_packet(udp4("192.0.2.77", phone.address4, b"later"), lab.now)
    lab.pump()
    assert lab.server.counters["handshakes_completed"] == 2
    assert phone.peer.keypairs.current is not second


def test_pings_keep_flowing_across_many_rekeys() -> None:
    config = TimerConfig(rekey_after_time=3.0, reject_after_time=8.0, rekey_timeout=1.0,
                         keepalive_timeout=2.0, rekey_after_messages=20)
    lab = make_lab(config=config)
    phone = lab.add_phone("alice", config=config)
    answered = 0
    for seq in range(300):
        phone.device.send_packet(udp4(phone.address4, "192.0.2.77", seq.to_bytes(2, "big")), lab.now)
        lab.pump()
        for _peer, packet in lab.server.packets_received() + lab.delivered:
            reply = IP(packet)
            lab.server.send_packet(udp4("192.0.2.77", reply.src, bytes(reply[UDP].payload)), lab.now)
        lab.delivered.clear()
        lab.pump()
        answered += len(lab.phone_delivered[0])
        lab.phone_delivered[0].clear()
        lab.advance(0.1, step=0.1)
    assert answered == 300
    assert lab.server.counters["handshakes_completed"] + lab.server.counters["handshake_responses_sent"] > 5


def test_handshake_retries_then_gives_up_then_zeroes_keys() -> None:
    config = TimerConfig(rekey_timeout=5.0, rekey_attempt_time=20.0, reject_after_time=100.0)
    lab = make_lab(config=config)
    phone = lab.add_phone("alice")
    _connect(lab, phone)
    phone.device.peers.clear()  # the phone vanishes: it drops everything from now on
    phone.device.datagrams_to_send()
    lab.now += 150  # session expired: sending needs a new handshake
    lab.server.send_packet(udp4("192.0.2.77", phone.address4), lab.now)
    assert lab.server.counters["handshake_initiations_sent"] == 1
    lab.advance(120, step=0.5)
    # 20 s / 5 s = 4 attempts allowed: initial + 5 retries, then it gives up
    assert lab.server.counters["handshake_retries"] == 5
    assert lab.server.counters["handshakes_given_up"] == 1
    assert len(phone.peer.staged) == 0
    assert phone.peer.keypairs.current is not None
    lab.advance(3 * 100, step=5)
    assert lab.server.counters["key_material_zeroed"] >= 1
    assert phone.peer.keypairs.current is None and not any(
        type(v).__name__ == "Keypair" and v.peer is phone.peer for v in lab.server._indices.values())


def test_new_handshake_when_data_sent_gets_no_answer() -> None:
    config = TimerConfig(rekey_after_time=1000, reject_after_time=2000)
    lab = make_lab(config=config)
    phone = lab.add_phone("alice", config=config)
    _connect(lab, phone)
    phone.device.peers.clear()  # silence from the phone from now on
    phone.device.datagrams_to_send()
    lab.server.send_packet(udp4("192.0.2.77", phone.address4), lab.now)
    lab.server.datagrams_to_send()
    before = lab.server.counters["handshake_initiations_sent"]
    lab.now += 14.9  # KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (+ up to 1/3 s jitter)
    lab.server.handle_timer(lab.now)
    assert lab.server.counters["handshake_initiations_sent"] == before
    lab.now += 0.5
    lab.server.handle_timer(lab.now)
    assert lab.server.counters["handshakes_for_silence"] == 1
    assert lab.server.counters["handshake_initiations_sent"] == before + 1


def test_initiator_rekeys_before_reject_after_time_when_receiving() -> None:
    config = TimerConfig(rekey_after_time=1000, reject_after_time=60, keepalive_timeout=10, rekey_timeout=5)
    lab = make_lab(config=config)
    phone = lab.add_phone("alice", config=config)
    _connect(lab, phone)
    lab.server.initiate_handshake(phone.peer, lab.now)  # the server becomes the initiator
    lab.pump()
    assert phone.peer.keypairs.current.is_initiator
    lab.now += 46  # past REJECT_AFTER_TIME - KEEPALIVE_TIMEOUT - REKEY_TIMEOUT
    before = lab.server.counters["handshake_initiations_sent"]
    phone.device.send_packet(udp4(phone.address4, "192.0.2.77"), lab.now)
    lab.pump(rounds=1)
    assert lab.server.counters["handshake_initiations_sent"] == before + 1


def test_initiations_are_rate_limited_to_one_per_rekey_timeout() -> None:
    lab = make_lab()
    phone = lab.add_phone("alice")
    phone.device.datagrams_to_send()
    for _ in range(10):
        phone.device.send_packet(udp4(phone.address4, "192.0.2.77"), lab.now)
    assert phone.device.counters["handshake_initiations_sent"] == 1
    lab.now += 5.01
    phone.device.send_packet(udp4(phone.address4, "192.0.2.77"), lab.now)
    assert phone.device.counters["handshake_initiations_sent"] == 2
    sent = [d for d, _ in phone.device.datagrams_to_send()]
    assert struct.unpack_from("<I", sent[0], 4) != struct.unpack_from("<I", sent[1], 4)  # new index
