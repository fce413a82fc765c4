import ssl
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import tls
from gateway.test import tflow
from gateway.tls import ClientHello, ClientHelloData, TlsData, get_client_hello, parse_client_hello


def client_hello_bytes(sni: str | None = "example.com", alpn: list[str] | None = None) -> bytes:
    """The first flight of Python's own TLS client: a real ClientHello."""
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


def test_real_client_hello_matches_scapy():
    from scapy.layers.tls.record import TLS

    data = client_hello_bytes(alpn=["h2", "http/1.1"])
    ch = parse_client_hello(data)
    assert ch is not None
    assert ch.sni == "example.com"
    assert ch.alpn_protocols == [b"h2", b"http/1.1"]
    oracle = TLS(data).msg[0]
    assert ch.cipher_suites == list(oracle.ciphers)
    assert [t for t, _ in ch.extensions] == [e.type for e in oracle.ext]
    assert ch.session_id == bytes(oracle.sid)
    assert ch.random == data[11:43]  # after record header, handshake header and version
    assert ch.version == 0x0303
    assert repr(ch) == "ClientHello(sni: example.com, alpn_protocols: [b'h2', b'http/1.1'])"


def test_raw_bytes_wraps_in_record():
    data = client_hello_bytes()
    body = get_client_hello(data)
    ch = ClientHello(body)
    assert ch.raw_bytes(wrap_in_record=False) == body
    wrapped = ch.raw_bytes()
    assert wrapped[:3] == b"\x16\x03\x03" and wrapped[5:] == data[5:]  # only the record version differs
    assert parse_client_hello(wrapped).cipher_suites == ch.cipher_suites


def test_no_sni_no_alpn():
    ch = parse_client_hello(client_hello_bytes(sni=None))
    assert ch.sni is None and ch.alpn_protocols == []


def test_ip_address_sni_is_not_sent_by_clients_and_invalid_sni_is_none():
    ch = parse_client_hello(client_hello_bytes(sni="127.0.0.1"))
    assert ch.sni is None
    body = bytearray(get_client_hello(client_hello_bytes(sni="example.com")))
    i = body.find(b"example.com")
    body[i : i + 11] = b"exa mple.co"
    assert ClientHello(bytes(body)).sni is None


def test_incomplete_and_fragmented_records():
    data = client_hello_bytes(alpn=["h2"])
    for cut in (0, 4, 5, 9, len(data) - 1):
        assert get_client_hello(data[:cut]) is None
    # the same handshake message split across two records
    body = data[5:]
    split = (
        b"\x16\x03\x01" + struct.pack("!H", 100) + body[:100]
        + b"\x16\x03\x01" + struct.pack("!H", len(body) - 100) + body[100:]
    )  # fmt: skip
    assert parse_client_hello(split).alpn_protocols == [b"h2"]


def test_not_a_client_hello():
    with pytest.raises(ValueError):
        get_client_hello(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(ValueError):
        get_client_hello(b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00")  # ServerHello
    with pytest.raises(ValueError):
        get_client_hello(b"\x16\x03\x01\x00\x00")  # empty record
    with pytest.raises(ValueError):
        ClientHello(b"\x03\x03" + b"\x00" * 10)  # truncated
    with pytest.raises(ValueError):
        ClientHello(b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\x00\x03\x13\x01\x00" + b"\x01\x00")  # odd suites


def test_dtls_client_hello_has_cookie():
    body = (
        b"\xfe\xfd" + b"\x11" * 32 + b"\x00"  # version, random, empty session id
        + b"\x04abcd"  # cookie
        + b"\x00\x02\xc0\x2b" + b"\x01\x00"  # one suite, null compression
    )  # fmt: skip
    ch = ClientHello(body, dtls=True)
    assert ch.cookie == b"abcd" and ch.cipher_suites == [0xC02B] and ch.extensions == []
    assert ch.raw_bytes()[:3] == b"\x16\xfe\xfd"
    assert ch.raw_bytes(False) == body


@given(st.binary(max_size=300))
def test_parser_only_raises_valueerror(data):
    try:
        ch = ClientHello(data)
    except ValueError:
        return
    ch.sni, ch.alpn_protocols  # noqa: B018 - must not raise either


@given(st.binary(max_size=300))
def test_record_reader_only_raises_valueerror(data):
    try:
        parse_client_hello(b"\x16\x03\x01" + data)
    except ValueError:
        pass


def test_hook_data_classes():
    ch = parse_client_hello(client_hello_bytes())
    ctx = object()
    d = ClientHelloData(ctx, ch)
    assert d.context is ctx and d.client_hello is ch
    assert d.ignore_connection is False and d.establish_server_tls_first is False
    conn = tflow.tclient_conn()
    t = TlsData(conn, ctx)
    assert t.conn is conn and t.ssl_conn is None and t.is_dtls is False
    assert set(tls.__all__) >= {"ClientHello", "ClientHelloData", "TlsData"}
