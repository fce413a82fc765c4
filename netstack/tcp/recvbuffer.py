"""The out-of-order receive queue and the SACK blocks it implies (RFC 2018).

Segments that arrive beyond a hole are kept as merged, non-overlapping ranges of stream
offsets, each holding its bytes in one ``bytearray``.  Memory is bounded twice: the
connection only accepts bytes inside the window it advertised, and the number of ranges is
capped (``max_ranges``) so a flood of tiny, scattered segments cannot make the per-range
overhead explode; when full, the range farthest from the hole is dropped first because
it is the least useful (the peer retransmits it).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right


class OutOfOrderQueue:
    __slots__ = ("ranges", "starts", "max_ranges", "nbytes", "last", "dropped")

    def __init__(self, max_ranges: int = 256) -> None:
        self.ranges: list[list] = []  # [start, end, bytearray], sorted, disjoint, non-adjacent
        self.starts: list[int] = []
        self.max_ranges = max_ranges
        self.nbytes = 0
        self.last: int | None = None  # start of the range that took the latest segment
        self.dropped = 0

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def insert(self, start: int, data: bytes | memoryview) -> bool:
        """Keep ``data`` at stream offset ``start``; False when it was dropped for lack of room."""
        end = start + len(data)
        ranges = self.ranges
        starts = self.starts
        i = bisect_right(starts, start)
        if i and ranges[i - 1][1] >= start:
            blk = ranges[i - 1]
            if blk[1] >= end:
                self.last = blk[0]
                return True
            tail = data[blk[1] - start :]
            blk[2] += tail
            self.nbytes += len(tail)
            blk[1] = end
            i -= 1
        else:
            if len(ranges) >= self.max_ranges:
                if i >= len(ranges):
                    self.dropped += 1
                    return False
                victim = ranges.pop()
                starts.pop()
                self.nbytes -= victim[1] - victim[0]
                self.dropped += 1
                if self.last == victim[0]:
                    self.last = None
            blk = [start, end, bytearray(data)]
            ranges.insert(i, blk)
            starts.insert(i, start)
            self.nbytes += end - start
        j = i + 1
        n = len(ranges)
        while j < n and ranges[j][0] <= blk[1]:
            nxt = ranges[j]
            overlap = blk[1] - nxt[0]
            self.nbytes -= overlap if overlap < nxt[1] - nxt[0] else nxt[1] - nxt[0]
            if nxt[1] > blk[1]:
                blk[2] += memoryview(nxt[2])[overlap:]
                blk[1] = nxt[1]
            j += 1
        if j > i + 1:
            del ranges[i + 1 : j]
            del starts[i + 1 : j]
        self.last = blk[0]
        return True

    def pop_ready(self, rcv_nxt: int) -> tuple[int, bytes | bytearray | memoryview] | None:
        """The bytes continuing the stream at ``rcv_nxt``, removed from the queue, with their end."""
        ranges = self.ranges
        while ranges and ranges[0][0] <= rcv_nxt:
            start, end, data = ranges.pop(0)
            self.starts.pop(0)
            self.nbytes -= end - start
            if self.last == start:
                self.last = None
            if end > rcv_nxt:
                return end, (data if start == rcv_nxt else memoryview(data)[rcv_nxt - start :])
        return None

    def sack_blocks(self, limit: int) -> list[tuple[int, int]]:
        """Up to ``limit`` ranges, the most recently extended first (RFC 2018 4), then the highest."""
        out: list[tuple[int, int]] = []
        last = self.last
        if last is not None:
            i = bisect_left(self.starts, last)
            if i < len(self.starts) and self.starts[i] == last:
                blk = self.ranges[i]
                out.append((blk[0], blk[1]))
            else:
                last = None
        for blk in reversed(self.ranges):
            if len(out) >= limit:
                break
            if blk[0] != last:
                out.append((blk[0], blk[1]))
        return out

    def clear(self) -> None:
        self.ranges.clear()
        self.starts.clear()
        self.nbytes = 0
        self.last = None
