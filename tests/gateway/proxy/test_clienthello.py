"""The ClientHello parser against hellos made by OpenSSL, checked with scapy as an oracle."""

import ssl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.proxy import clienthello as ch


def openssl_hello(sni: str | None = "example.test", alpn=("h2", "http/1.1")) -> bytes:
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


def split_records(data: bytes, size: int) -> bytes:
    """The same handshake message cut into records of ``size`` bytes (legal in TLS)."""
    body = ch.reassemble(data)
    msg = bytes([1]) + len(body).to_bytes(3, "big") + body
    out = b""
    for i in range(0, len(msg), size):
        part = msg[i : i + size]
        out += bytes([0x16, 3, 1]) + len(part).to_bytes(2, "big") + part
    return out


HELLO = openssl_hello()


def test_parse_openssl_hello():
    assert ch.looks_like_tls(HELLO)
    hello = ch.parse(ch.reassemble(HELLO))
    assert hello.sni == "example.test"
    assert hello.alpn_protocols == [b"h2", b"http/1.1"]
    assert 0x0304 in hello.supported_versions and 0x0303 in hello.supported_versions
    assert 0x1301 in hello.cipher_suites


def test_no_sni_no_alpn():
    hello = ch.parse(ch.reassemble(openssl_hello(sni=None, alpn=())))
    assert hello.sni is None
    assert hello.alpn_protocols == []


def test_agrees_with_scapy():
    from scapy.layers.tls.record import TLS

    pkt = TLS(HELLO)
    msg = pkt.msg[0]
    ours = ch.parse(ch.reassemble(HELLO))
    assert ours.cipher_suites == list(msg.ciphers)
    assert [e.type for e in msg.ext] == [t for t, _ in ours.extensions]
    assert ours.random == msg.gmt_unix_time.to_bytes(4, "big") + msg.random_bytes


def test_hello_split_over_records():
    for size in (1, 7, 100):
        data = split_records(HELLO, size)
        assert ch.parse(ch.reassemble(data)).sni == "example.test"


def test_every_prefix_asks_for_more():
    data = split_records(HELLO, 50)
    for i in range(len(data)):
        with pytest.raises(ch.NeedMoreData):
            ch.reassemble(data[:i])


def test_not_tls():
    assert not ch.looks_like_tls(b"GET / HTTP/1.1\r\n")
    with pytest.raises(ValueError):
        ch.reassemble(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(ValueError):
        ch.reassemble(bytes([0x16, 3, 1, 0, 4, 2, 0, 0, 0]))  # ServerHello, not ClientHello


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=len(HELLO) - 1), st.binary(min_size=1, max_size=8))
def test_mutations_fail_cleanly(pos, junk):
    """Corrupt bytes anywhere: a result, NeedMoreData or ValueError, nothing else."""
    data = HELLO[:pos] + junk + HELLO[pos + len(junk) :]
    try:
        hello = ch.parse(ch.reassemble(data))
    except (ch.NeedMoreData, ValueError):
        return
    assert isinstance(hello.cipher_suites, list)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_fails_cleanly(data):
    try:
        ch.parse(ch.reassemble(b"\x16\x03\x01" + data))
    except (ch.NeedMoreData, ValueError):
        pass
