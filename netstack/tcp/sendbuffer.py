"""The send buffer: bytes queued by the application, from the oldest unacknowledged byte on.

One ``bytearray`` indexed by stream offset.  Appending copies the application's bytes once;
acknowledged bytes are dropped with ``del buf[:n]``, which CPython does in O(1) by moving
the array's start.  Segments are cut as ``memoryview`` slices that are released right after
the packet is built, so the buffer can keep being resized.
"""

from __future__ import annotations


class SendBuffer:
    __slots__ = ("buf", "base")

    def __init__(self, base: int) -> None:
        self.buf = bytearray()
        self.base = base  # stream offset of buf[0]

    @property
    def end(self) -> int:
        """Stream offset one past the last queued byte."""
        return self.base + len(self.buf)

    def __len__(self) -> int:
        return len(self.buf)

    def append(self, data: bytes | bytearray | memoryview) -> None:
        self.buf += data

    def ack_to(self, offset: int) -> None:
        """Forget every byte before ``offset``."""
        n = offset - self.base
        if n <= 0:
            return
        if n >= len(self.buf):
            self.base += len(self.buf)
            self.buf.clear()
        else:
            del self.buf[:n]
            self.base = offset

    def view(self, offset: int, length: int) -> memoryview:
        """A view of ``length`` bytes at stream ``offset``; release it before the next ack_to/append."""
        start = offset - self.base
        return memoryview(self.buf)[start : start + length]
