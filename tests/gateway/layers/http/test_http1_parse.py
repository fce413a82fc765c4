"""The sans-IO HTTP/1 reader on byte streams, split at every position."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.layers.http.http1_assemble import chunk, last_chunk, request_head
from gateway.layers.http.http1_parse import (
    CHUNKED,
    NEED_DATA,
    UNTIL_CLOSE,
    Closed,
    Data,
    EndOfMessage,
    Http1Reader,
    ProtocolError,
    RequestHead,
    ResponseHead,
    expected_body_size,
)


def drain(reader: Http1Reader, *, method: bytes = b"GET") -> list:
    """All events the reader can produce, choosing framing after each head."""
    out = []
    for _ in range(10_000):
        ev = reader.next_event()
        if ev is NEED_DATA:
            return out
        out.append(ev)
        if isinstance(ev, RequestHead):
            reader.set_body(expected_body_size(ev.fields, is_request=True))
        elif isinstance(ev, ResponseHead):
            reader.set_body(
                expected_body_size(ev.fields, is_request=False, method=method, status_code=ev.status_code)
            )
        elif isinstance(ev, Closed):
            return out
    raise AssertionError("reader did not settle")


def feed_split(data: bytes, sizes: list[int], *, is_request: bool = True, eof: bool = False) -> list:
    reader = Http1Reader(is_request=is_request)
    events = []
    pos = 0
    for size in sizes:
        if size == 0:
            continue
        reader.receive_data(data[pos : pos + size])
        pos += size
        events += drain(reader)
    reader.receive_data(data[pos:])
    events += drain(reader)
    if eof:
        reader.receive_data(b"")
        events += drain(reader)
    return events


def body_of(events: list) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Data))


def test_two_keepalive_requests_with_length_and_chunked() -> None:
    data = (
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        b"PUT /b HTTP/1.1\r\nhost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunk(b"abc") + chunk(b"defg") + last_chunk([(b"X-Sum", b"7")])
    )
    events = feed_split(data, [])
    heads = [e for e in events if isinstance(e, RequestHead)]
    assert [h.target for h in heads] == [b"/a", b"/b"]
    assert heads[1].fields[0] == (b"host", b"x")  # case kept
    ends = [e for e in events if isinstance(e, EndOfMessage)]
    assert ends[0].trailers is None and ends[1].trailers == [(b"X-Sum", b"7")]
    assert body_of(events) == b"helloabcdefg"


@given(st.lists(st.integers(min_value=0, max_value=40), max_size=20))
def test_any_split_gives_the_same_events(sizes: list[int]) -> None:
    data = (
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunk(b"0123456789") + chunk(b"z") + last_chunk()
        + request_head(b"GET", b"/next", b"HTTP/1.1", [(b"Host", b"y")])
    )
    events = feed_split(data, sizes)
    assert body_of(events) == b"0123456789z"
    assert [e.target for e in events if isinstance(e, RequestHead)] == [b"/a", b"/next"]


def test_close_delimited_response_ends_at_eof() -> None:
    events = feed_split(b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nsome body", [3], is_request=False, eof=True)
    assert isinstance(events[0], ResponseHead) and events[0].status_code == 200
    assert body_of(events) == b"some body"
    assert isinstance(events[-2], EndOfMessage) and isinstance(events[-1], Closed)


def test_head_and_no_body_statuses() -> None:
    for status in (204, 304, 101):
        assert expected_body_size([(b"Content-Length", b"10")], is_request=False, status_code=status) == 0
    assert expected_body_size([(b"Content-Length", b"10")], is_request=False, method=b"HEAD") == 0
    assert expected_body_size([], is_request=False, method=b"CONNECT", status_code=200) == 0
    assert expected_body_size([], is_request=False) == UNTIL_CLOSE
    assert expected_body_size([(b"Transfer-Encoding", b"gzip, chunked")], is_request=False) == CHUNKED


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX",
    ],
)
def test_malformed_requests_raise_protocol_error(head: bytes) -> None:
    reader = Http1Reader(is_request=True)
    reader.receive_data(head)
    with pytest.raises(ProtocolError):
        drain(reader)


def test_peer_closing_mid_body_is_an_error_not_a_short_message() -> None:
    reader = Http1Reader(is_request=True)
    reader.receive_data(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
    assert body_of(drain(reader)) == b"abc"
    reader.receive_data(b"")
    with pytest.raises(ProtocolError):
        drain(reader)


def test_head_too_large() -> None:
    reader = Http1Reader(is_request=True, max_head=100)
    reader.receive_data(b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 200)
    with pytest.raises(ProtocolError):
        drain(reader)


def test_pause_hands_back_the_tunnelled_bytes() -> None:
    reader = Http1Reader(is_request=True)
    reader.receive_data(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01")
    head = reader.next_event()
    assert isinstance(head, RequestHead) and head.method == b"CONNECT"
    assert reader.pause() == b"\x16\x03\x01"


@given(st.binary(max_size=300))
def test_garbage_never_raises_anything_but_protocol_error(data: bytes) -> None:
    reader = Http1Reader(is_request=True, max_head=200)
    reader.receive_data(data)
    reader.receive_data(b"")
    try:
        drain(reader)
    except ProtocolError:
        pass
