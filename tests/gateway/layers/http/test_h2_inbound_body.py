"""InboundBody: DATA frames that arrived together are handed on as one chunk, in order,
acknowledged to the peer only when the consumer asks for more, and the stream's end or
failure comes after every byte before it."""

import asyncio

import pytest

from gateway.layers.http.h2_flow_control import COALESCE_MAX, InboundBody


class Gone(Exception):
    pass


class RecordingSender:
    """Stands in for H2Sender: records acknowledgements and flushes."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def acknowledge(self, stream_id: int, n: int) -> None:
        self.events.append(("ack", stream_id, n))

    async def flush(self) -> None:
        self.events.append(("flush",))


def body() -> tuple[InboundBody, RecordingSender]:
    sender = RecordingSender()
    return InboundBody(sender, 5, Gone), sender  # type: ignore[arg-type]


async def test_frames_that_arrived_together_come_out_as_one_chunk() -> None:
    b, sender = body()
    for i in range(3):
        b.feed(bytes([i]) * 8192, 8192 + 1)  # flow-controlled length counts padding too
    b.end()
    got = [c async for c in b.chunks()]
    assert got == [b"\x00" * 8192 + b"\x01" * 8192 + b"\x02" * 8192]
    assert sender.events == [("ack", 5, 3 * 8193), ("flush",)]


async def test_acknowledged_only_when_the_consumer_asks_for_more() -> None:
    b, sender = body()
    b.feed(b"abc", 3)
    it = b.chunks().__aiter__()
    assert await it.__anext__() == b"abc"
    assert sender.events == []  # not forwarded yet: the peer's window stays closed
    b.feed(b"def", 3)
    assert await it.__anext__() == b"def"
    assert sender.events == [("ack", 5, 3), ("flush",)]
    b.end()
    with pytest.raises(StopAsyncIteration):
        await it.__anext__()
    assert sender.events[-2:] == [("ack", 5, 3), ("flush",)]


async def test_a_waiting_consumer_wakes_on_data() -> None:
    b, _ = body()
    it = b.chunks().__aiter__()
    task = asyncio.ensure_future(it.__anext__())
    await asyncio.sleep(0)
    assert not task.done()
    b.feed(b"late", 4)
    assert await asyncio.wait_for(task, 5) == b"late"


async def test_failure_after_the_bytes_before_it() -> None:
    b, _ = body()
    b.feed(b"one", 3)
    b.feed(b"two", 3)
    b.fail("server went away")
    b.feed(b"never", 5)
    it = b.chunks().__aiter__()
    assert await it.__anext__() == b"onetwo"
    with pytest.raises(Gone, match="server went away"):
        await it.__anext__()
    assert b.done


async def test_empty_data_frames_are_acknowledged_not_yielded() -> None:
    """An empty DATA frame (END_STREAM on its own) is neither a chunk nor the end."""
    b, sender = body()
    b.feed(b"", 0)
    b.feed(b"", 7)  # padding only
    b.feed(b"x", 1)
    b.end()
    assert [c async for c in b.chunks()] == [b"x"]
    assert ("ack", 5, 8) in sender.events


async def test_chunks_are_bounded() -> None:
    b, _ = body()
    frame = b"z" * 8192
    count = 3 * COALESCE_MAX // len(frame)
    for _ in range(count):
        b.feed(frame, len(frame))
    b.end()
    got = [c async for c in b.chunks()]
    assert b"".join(got) == frame * count
    assert len(got) > 1
    assert all(len(c) < COALESCE_MAX + len(frame) for c in got)


async def test_release_returns_the_window_of_unread_bytes() -> None:
    b, sender = body()
    b.feed(b"a" * 100, 100)
    b.feed(b"b" * 50, 60)
    b.release()
    assert sender.events == [("ack", 5, 160)]
    b.release()
    assert sender.events == [("ack", 5, 160)]
