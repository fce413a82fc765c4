"""Handshake and transport against messages wireguard-go produced (vectors/wireguard_go.json).

The vectors were recorded by vectors/generate_with_wireguard_go.py against Debian's
wireguard-go, with fixed keys, preshared key, and our fixed ephemeral secrets, indices and
timestamp.  What wireguard-go sent must be understood by our code; what we sent (and
wireguard-go accepted) must be reproduced byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

from scapy.layers.inet import ICMP, IP, UDP

from gateway.links.wireguard import crypto, keys
from gateway.links.wireguard.cookie import CookieChecker, CookieGenerator
from gateway.links.wireguard.handshake import Handshake, StaticIdentity, begin_initiation_read
from gateway.links.wireguard.messages import unpack_initiation, unpack_response
from gateway.links.wireguard.session import Keypair

V = json.loads((Path(__file__).parent / "vectors" / "wireguard_go.json").read_text())
h = bytes.fromhex
SERVER = StaticIdentity(h(V["server_private"]))
PHONE_PUBLIC = keys.public_key(h(V["phone_private"]))
PSK = h(V["preshared_key"])


def _open(keypair: Keypair, datagram: bytes) -> bytes:
    assert datagram[:4] == b"\x04\0\0\0"
    assert int.from_bytes(datagram[4:8], "little") == keypair.local_index
    plain = keypair.receive.decrypt(crypto.nonce(int.from_bytes(datagram[8:16], "little")), datagram[16:], None)
    # wireguard-go pads to a multiple of 16 with zeros; the IP header says where the packet ends.
    length = int.from_bytes(plain[2:4], "big")
    assert len(plain) % 16 == 0 and plain[length:] == bytes(len(plain) - length)
    return plain[:length]


def test_scenario_a_wireguard_go_initiates() -> None:
    a = V["a"]
    initiation = h(a["initiation_from_wireguard_go"])
    assert CookieChecker(SERVER.public_key, lambda n: bytes(n), 120).check_mac1(initiation)
    message = unpack_initiation(initiation)
    state, who = begin_initiation_read(SERVER, message)
    assert who == PHONE_PUBLIC
    handshake = Handshake(SERVER, who, PSK)
    stamp = handshake.consume_initiation(state, message, now=0.0, min_interval=0.0)
    assert int.from_bytes(stamp[:8], "big") > 2**62 + 1_600_000_000  # a TAI64N of a real clock

    response, session = handshake.create_response(a["response_index"], h(a["response_ephemeral_secret"]))
    assert bytes(CookieGenerator(who, 120).add_macs(response, 0.0)).hex() == a["response_we_sent"]

    keypair = Keypair(session.send_key, session.receive_key, session.local_index, session.remote_index,
                      0.0, False, None)
    inner = IP(_open(keypair, h(a["transport_from_wireguard_go"])))
    assert (inner.src, inner.dst, inner[UDP].sport, inner[UDP].dport) == ("10.0.0.2", "192.0.2.1", 5555, 9)
    assert bytes(inner[UDP].payload) == h(a["inner_payload_from_wireguard_go"])

    packet = h(a["inner_packet_to_wireguard_go"])
    sealed = keypair.send.encrypt(crypto.nonce(0), packet + bytes(-len(packet) % 16), None)
    datagram = b"\x04\0\0\0" + session.remote_index.to_bytes(4, "little") + bytes(8) + sealed
    assert datagram.hex() == a["transport_we_sent"]
    assert h(a["wireguard_go_delivered"]) == bytes(IP(packet)[UDP].payload)


def test_scenario_b_we_initiate() -> None:
    b = V["b"]
    handshake = Handshake(SERVER, PHONE_PUBLIC, PSK)
    initiation = handshake.create_initiation(b["initiation_index"], h(b["initiation_ephemeral_secret"]),
                                             crypto.TAI64N(b["timestamp_unix"]))
    assert bytes(CookieGenerator(PHONE_PUBLIC, 120).add_macs(initiation, 0.0)).hex() == b["initiation_we_sent"]

    response = h(b["response_from_wireguard_go"])
    assert CookieChecker(SERVER.public_key, lambda n: bytes(n), 120).check_mac1(response)
    session = handshake.consume_response(unpack_response(response))
    keypair = Keypair(session.send_key, session.receive_key, session.local_index, session.remote_index,
                      0.0, True, None)
    echo = h(b["echo_request_we_sent"])
    sealed = keypair.send.encrypt(crypto.nonce(0), echo + bytes(-len(echo) % 16), None)
    assert (b"\x04\0\0\0" + session.remote_index.to_bytes(4, "little") + bytes(8) + sealed).hex() \
        == b["transport_we_sent"]

    reply = IP(_open(keypair, h(b["transport_from_wireguard_go"])))
    request = IP(echo)
    assert (reply.src, reply.dst) == ("10.0.0.2", "192.0.2.1")
    assert reply[ICMP].type == 0 and (reply[ICMP].id, reply[ICMP].seq) == (request[ICMP].id, request[ICMP].seq)
    assert bytes(reply[ICMP].payload) == bytes(request[ICMP].payload)


def test_wireguard_go_initiation_is_refused_with_the_wrong_psk_or_key() -> None:
    a = V["a"]
    message = unpack_initiation(h(a["initiation_from_wireguard_go"]))
    other = StaticIdentity(keys.clamp(bytes(range(32))))
    try:
        begin_initiation_read(other, message)
    except ValueError:
        pass
    else:
        raise AssertionError("an initiation for another key decrypted")
