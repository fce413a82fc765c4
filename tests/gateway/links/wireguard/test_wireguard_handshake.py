"""The Noise IKpsk2 steps against the published Noise vector, and WireGuard's handshake."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.links.wireguard import crypto, keys
from gateway.links.wireguard.handshake import (
    Handshake,
    HandshakeError,
    HandshakeStage,
    InitiationFlood,
    StaleTimestamp,
    StaticIdentity,
    begin_initiation_read,
    initial_state,
    read_initiation_payload,
    read_initiation_static,
    read_response,
    split,
    write_initiation,
    write_response,
)
from gateway.links.wireguard.messages import INITIATION_LEN, RESPONSE_LEN, unpack_initiation, unpack_response

VECTORS = Path(__file__).parent / "vectors"


def test_noise_ikpsk2_vector_from_cacophony() -> None:
    v = json.loads((VECTORS / "noise_ikpsk2_cacophony.json").read_text())
    h = bytes.fromhex
    prologue, psk = h(v["init_prologue"]), h(v["init_psks"][0])
    initiator = StaticIdentity(h(v["init_static"]))
    responder = StaticIdentity(h(v["resp_static"]))
    assert responder.public_key == h(v["init_remote_static"])
    msgs = v["messages"]

    # -> e, es, s, ss, {payload}: a Noise message is e || enc(s) || enc(payload).
    ie_private, ie_public = crypto.DH_generate(h(v["init_ephemeral"]))
    istate = initial_state(responder.public_key, prologue)
    enc_s, enc_p = write_initiation(istate, initiator, responder.public_key, ie_private, ie_public,
                                    h(msgs[0]["payload"]))
    assert (ie_public + enc_s + enc_p).hex() == msgs[0]["ciphertext"]

    rstate = initial_state(responder.public_key, prologue)
    wire = h(msgs[0]["ciphertext"])
    assert read_initiation_static(rstate, responder, wire[:32], wire[32:80]) == initiator.public_key
    assert read_initiation_payload(rstate, responder.dh(initiator.public_key), wire[80:]) == h(msgs[0]["payload"])

    # <- e, ee, se, psk, {payload}
    re_private, re_public = crypto.DH_generate(h(v["resp_ephemeral"]))
    enc = write_response(rstate, re_private, re_public, ie_public, initiator.public_key, psk,
                         h(msgs[1]["payload"]))
    assert (re_public + enc).hex() == msgs[1]["ciphertext"]
    wire = h(msgs[1]["ciphertext"])
    assert read_response(istate, initiator, ie_private, wire[:32], wire[32:], psk) == h(msgs[1]["payload"])
    # Both sides end with the same transcript hash.  (cacophony's "handshake_hash" field
    # is not the final h of the Noise spec: its Noise_NN vector differs the same way while
    # every ciphertext matches, so the ciphertexts are what is compared.)
    assert istate.hash == rstate.hash

    # Transport: the initiator sends with the first key of Split, nonces count from 0.
    i_send, r_send = split(istate)
    assert split(rstate) == (i_send, r_send)
    counters = {True: 0, False: 0}
    for n, m in enumerate(msgs[2:]):
        from_initiator = n % 2 == 0
        key = i_send if from_initiator else r_send
        sealed = crypto.AEAD(key, counters[from_initiator], h(m["payload"]), b"")
        assert sealed.hex() == m["ciphertext"]
        counters[from_initiator] += 1


def test_noise_vector_rejects_a_wrong_psk() -> None:
    v = json.loads((VECTORS / "noise_ikpsk2_cacophony.json").read_text())
    h = bytes.fromhex
    initiator, responder = StaticIdentity(h(v["init_static"])), StaticIdentity(h(v["resp_static"]))
    ie_private, ie_public = crypto.DH_generate(h(v["init_ephemeral"]))
    istate = initial_state(responder.public_key, h(v["init_prologue"]))
    write_initiation(istate, initiator, responder.public_key, ie_private, ie_public, b"")
    wire = h(v["messages"][1]["ciphertext"])
    with pytest.raises(crypto.DecryptError):
        read_response(istate, initiator, ie_private, wire[:32], wire[32:], bytes(32))


def _pair(psk: bytes | None = None) -> tuple[StaticIdentity, StaticIdentity, Handshake, Handshake]:
    a = StaticIdentity(keys.generate_private_key())
    b = StaticIdentity(keys.generate_private_key())
    return a, b, Handshake(a, b.public_key, psk), Handshake(b, a.public_key, psk)


@pytest.mark.parametrize("psk", [None, bytes(range(32))])
def test_wireguard_handshake_both_roles_derive_matching_keys(psk: bytes | None) -> None:
    a, b, a_side, b_side = _pair(psk)
    init = a_side.create_initiation(0x11111111, keys.generate_private_key(), crypto.TAI64N(1000.0))
    assert len(init) == INITIATION_LEN and init[0] == 1 and init[1:4] == b"\0\0\0"
    msg = unpack_initiation(bytes(init))
    state, who = begin_initiation_read(b, msg)
    assert who == a.public_key
    assert b_side.consume_initiation(state, msg, now=0.0, min_interval=0.02) == crypto.TAI64N(1000.0)
    resp, b_keys = b_side.create_response(0x22222222, keys.generate_private_key())
    assert len(resp) == RESPONSE_LEN and resp[0] == 2
    a_keys = a_side.consume_response(unpack_response(bytes(resp)))
    assert a_keys.send_key == b_keys.receive_key and a_keys.receive_key == b_keys.send_key
    assert a_keys.send_key != a_keys.receive_key
    assert (a_keys.local_index, a_keys.remote_index) == (0x11111111, 0x22222222)
    assert (b_keys.local_index, b_keys.remote_index) == (0x22222222, 0x11111111)
    assert a_keys.is_initiator and not b_keys.is_initiator
    assert a_side.stage is HandshakeStage.RESPONSE_CONSUMED and b_side.stage is HandshakeStage.RESPONSE_CREATED


def test_mismatched_psk_fails_at_the_response() -> None:
    a = StaticIdentity(keys.generate_private_key())
    b = StaticIdentity(keys.generate_private_key())
    a_side, b_side = Handshake(a, b.public_key, bytes(32)), Handshake(b, a.public_key, b"\x01" * 32)
    msg = unpack_initiation(bytes(a_side.create_initiation(1, keys.generate_private_key(), crypto.TAI64N(5.0))))
    state, _ = begin_initiation_read(b, msg)
    b_side.consume_initiation(state, msg, 0.0, 0.02)
    resp, _ = b_side.create_response(2, keys.generate_private_key())
    with pytest.raises(HandshakeError):
        a_side.consume_response(unpack_response(bytes(resp)))


def test_replayed_and_older_initiations_are_refused() -> None:
    a, b, a_side, b_side = _pair()
    first = unpack_initiation(bytes(a_side.create_initiation(1, keys.generate_private_key(), crypto.TAI64N(50.0))))
    state, _ = begin_initiation_read(b, first)
    b_side.consume_initiation(state, first, 0.0, 0.02)
    # The very same bytes again, a second later: refused, state untouched.
    state, _ = begin_initiation_read(b, first)
    with pytest.raises(StaleTimestamp):
        b_side.consume_initiation(state, first, 1.0, 0.02)
    older = unpack_initiation(bytes(a_side.create_initiation(2, keys.generate_private_key(), crypto.TAI64N(49.0))))
    state, _ = begin_initiation_read(b, older)
    with pytest.raises(StaleTimestamp):
        b_side.consume_initiation(state, older, 2.0, 0.02)
    newer = unpack_initiation(bytes(a_side.create_initiation(3, keys.generate_private_key(), crypto.TAI64N(51.0))))
    state, _ = begin_initiation_read(b, newer)
    b_side.consume_initiation(state, newer, 2.0, 0.02)
    # Fresh timestamp but only 10 ms after the last consumed one: a flood, refused.
    newest = unpack_initiation(bytes(a_side.create_initiation(4, keys.generate_private_key(), crypto.TAI64N(52.0))))
    state, _ = begin_initiation_read(b, newest)
    with pytest.raises(InitiationFlood):
        b_side.consume_initiation(state, newest, 2.01, 0.02)
    state, _ = begin_initiation_read(b, newest)
    b_side.consume_initiation(state, newest, 2.05, 0.02)


def test_initiation_to_someone_else_does_not_decrypt() -> None:
    a, b, a_side, _ = _pair()
    stranger = StaticIdentity(keys.generate_private_key())
    msg = unpack_initiation(bytes(a_side.create_initiation(1, keys.generate_private_key(), crypto.TAI64N(5.0))))
    with pytest.raises(HandshakeError):
        begin_initiation_read(stranger, msg)


def test_tampered_initiation_fields_fail() -> None:
    a, b, a_side, b_side = _pair()
    raw = bytes(a_side.create_initiation(1, keys.generate_private_key(), crypto.TAI64N(5.0)))
    for offset in (8, 40, 100):  # ephemeral, static, timestamp
        bad = bytearray(raw)
        bad[offset] ^= 1
        msg = unpack_initiation(bytes(bad))
        with pytest.raises(HandshakeError):
            state, _ = begin_initiation_read(b, msg)
            b_side.consume_initiation(state, msg, 0.0, 0.02)


def test_response_for_another_index_or_state_is_refused() -> None:
    a, b, a_side, b_side = _pair()
    msg = unpack_initiation(bytes(a_side.create_initiation(7, keys.generate_private_key(), crypto.TAI64N(5.0))))
    state, _ = begin_initiation_read(b, msg)
    b_side.consume_initiation(state, msg, 0.0, 0.02)
    resp, _ = b_side.create_response(8, keys.generate_private_key())
    r = unpack_response(bytes(resp))
    with pytest.raises(HandshakeError):
        a_side.consume_response(r._replace(receiver=99))
    a_side.consume_response(r)
    with pytest.raises(HandshakeError):  # a second time: nothing in flight any more
        a_side.consume_response(r)
