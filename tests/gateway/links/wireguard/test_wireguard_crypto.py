"""The primitives against published values: the paper's constants, wireguard-go's KDF table."""

from __future__ import annotations

import base64
import hashlib

import pytest

from gateway.links.wireguard import crypto, keys
from gateway.links.wireguard.constants import CONSTRUCTION, IDENTIFIER
from gateway.links.wireguard.handshake import INITIAL_CHAINING_KEY, INITIAL_HASH

# wireguard-go device/kdf_test.go (TestKDF); the last row is from WireGuard/wireguard-rs's
# handshake tests, "generated using WireGuard-Go".  key, input, t0, t1, t2 in hex.
KDF_VECTORS = [
    ("746573742d6b6579", "746573742d696e707574",
     "6f0e5ad38daba1bea8a0d213688736f19763239305e0f58aba697f9ffc41c633",
     "df1194df20802a4fe594cde27e92991c8cae66c366e8106aaa937a55fa371e8a",
     "fac6e2745a325f5dc5d11a5b165aad08b0ada28e7b4e666b7c077934a4d76c24"),
    ("776972656775617264", "776972656775617264",
     "491d43bbfdaa8750aaf535e334ecbfe5129967cd64635101c566d4caefda96e8",
     "1e71a379baefd8a79aa4662212fcafe19a23e2b609a3db7d6bcba8f560e3d25f",
     "31e1ae48bddfbe5de38f295e5452b1909a1b4e38e183926af3780b0c1e1f0160"),
    ("", "",
     "8387b46bf43eccfcf349552a095d8315c4055beb90208fb1be23b894bc2ed5d0",
     "58a0e5f6faefccf4807bff1f05fa8a9217945762040bcec2f4b4a62bdfe0e86e",
     "0ce6ea98ec548f8e281e93e32db65621c45eb18dc6f0a7ad94178610a2f7338e"),
    ("deadbeef", "",
     "55329dc80e690fd86bd9661f0851c9b3686df2b1fda0347bc3d27958254b32c6",
     "8dfc6d33a8118ffe408b31ddac25f72aee9115a45b69ba176ad012b243834fee",
     "d69e852a2896569ea54a67969aa1800287921dac53ce6db4b4e12192f263c4c4"),
]


@pytest.mark.parametrize("key,data,t0,t1,t2", KDF_VECTORS)
def test_kdf_matches_wireguard_go(key: str, data: str, t0: str, t1: str, t2: str) -> None:
    k, d = bytes.fromhex(key), bytes.fromhex(data)
    assert crypto.KDF1(k, d).hex() == t0
    assert [x.hex() for x in crypto.KDF2(k, d)] == [t0, t1]
    assert [x.hex() for x in crypto.KDF3(k, d)] == [t0, t1, t2]


def test_initial_chaining_key_and_hash_are_the_papers() -> None:
    # Ci = HASH(CONSTRUCTION), Hi = HASH(Ci || IDENTIFIER); the values are the ones the
    # Linux module and wireguard-go precompute at start-up.
    assert INITIAL_CHAINING_KEY == hashlib.blake2s(CONSTRUCTION).digest()
    assert INITIAL_CHAINING_KEY.hex() == "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36"
    assert INITIAL_HASH == hashlib.blake2s(INITIAL_CHAINING_KEY + IDENTIFIER).digest()
    assert INITIAL_HASH.hex() == "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3"


def test_hmac_is_rfc2104_over_blake2s() -> None:
    # Independent construction of HMAC: (K ^ opad) || H((K ^ ipad) || m), block 64.
    key, msg = b"k" * 20, b"message"
    k = key.ljust(64, b"\0")
    inner = hashlib.blake2s(bytes(b ^ 0x36 for b in k) + msg).digest()
    outer = hashlib.blake2s(bytes(b ^ 0x5C for b in k) + inner).digest()
    assert crypto.HMAC(key, msg) == outer


def test_mac_is_keyed_blake2s_128() -> None:
    assert crypto.MAC(b"key", b"data") == hashlib.blake2s(b"data", key=b"key", digest_size=16).digest()
    assert len(crypto.MAC(bytes(32), b"")) == 16


def test_aead_nonce_is_counter_little_endian_after_four_zero_bytes() -> None:
    assert crypto.nonce(1) == bytes(4) + (1).to_bytes(8, "little")
    key = bytes(range(32))
    sealed = crypto.AEAD(key, 7, b"hello", b"ad")
    assert crypto.AEAD_decrypt(key, 7, sealed, b"ad") == b"hello"
    with pytest.raises(crypto.DecryptError):
        crypto.AEAD_decrypt(key, 8, sealed, b"ad")
    with pytest.raises(crypto.DecryptError):
        crypto.AEAD_decrypt(key, 7, sealed, b"other")


def test_xaead_round_trip_and_tamper() -> None:
    key, nonce = bytes(32), bytes(range(24))
    sealed = crypto.XAEAD(key, nonce, b"cookie-cookie-16", b"mac1")
    assert len(sealed) == 32
    assert crypto.XAEAD_decrypt(key, nonce, sealed, b"mac1") == b"cookie-cookie-16"
    with pytest.raises(crypto.DecryptError):
        crypto.XAEAD_decrypt(key, nonce, sealed[:-1] + bytes([sealed[-1] ^ 1]), b"mac1")


def test_tai64n_layout_and_whitening() -> None:
    stamp = crypto.TAI64N(1_700_000_000.75)
    assert len(stamp) == 12
    assert int.from_bytes(stamp[:8], "big") == 2**62 + 10 + 1_700_000_000
    nanos = int.from_bytes(stamp[8:], "big")
    assert nanos & 0xFFFFFF == 0 and nanos < 1_000_000_000
    # Later times never compare smaller (byte order is big-endian on purpose).
    assert crypto.TAI64N(1_700_000_001.0) > stamp
    assert crypto.TAI64N(1_700_000_000.5) > crypto.TAI64N(1_700_000_000.0)


def test_dh_rejects_low_order_points() -> None:
    private, _ = crypto.DH_generate(keys.generate_private_key())
    with pytest.raises(crypto.DecryptError):
        crypto.DH(private, bytes(32))


def test_keys_base64_and_public_key_like_wg() -> None:
    # RFC 7748 section 6.1: Alice's private key and public key.
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    assert keys.public_key(alice).hex() == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    text = keys.to_base64(alice)
    assert keys.from_base64(text) == alice
    assert base64.b64decode(text) == alice
    generated = keys.generate_private_key()
    assert generated[0] & 7 == 0 and generated[31] & 0x80 == 0 and generated[31] & 0x40
    with pytest.raises(keys.InvalidKey):
        keys.from_base64("c2hvcnQ=")
    with pytest.raises(keys.InvalidKey):
        keys.from_base64("not base64!")
