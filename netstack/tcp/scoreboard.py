"""The sender's SACK scoreboard (RFC 6675): which bytes above SND.UNA the peer holds.

Ranges are stream offsets, sorted and merged.  The peer reports at most four blocks per
ACK and the list is trimmed on every cumulative ACK, so it stays short; callers still only
walk it during loss recovery, keeping the common (no loss) ACK path O(1).
"""

from __future__ import annotations


class Scoreboard:
    __slots__ = ("ranges", "sacked", "high")

    MAX_RANGES = 64

    def __init__(self) -> None:
        self.ranges: list[list[int]] = []
        self.sacked = 0  # bytes covered by the ranges
        self.high = 0  # end of the highest SACKed range (0 when empty)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def add(self, left: int, right: int) -> int:
        """Record a SACK block; returns how many bytes were newly SACKed."""
        ranges = self.ranges
        i = 0
        n = len(ranges)
        while i < n and ranges[i][1] < left:
            i += 1
        j = i
        covered = 0
        while j < n and ranges[j][0] <= right:
            lo, hi = ranges[j]
            covered += hi - lo
            if lo < left:
                left = lo
            if hi > right:
                right = hi
            j += 1
        if j == i and n >= self.MAX_RANGES:
            return 0
        ranges[i:j] = [[left, right]]
        new = (right - left) - covered
        self.sacked += new
        if right > self.high:
            self.high = right
        return new

    def trim(self, una: int) -> None:
        """Forget everything below the cumulative ACK ``una``."""
        ranges = self.ranges
        while ranges and ranges[0][0] < una:
            lo, hi = ranges[0]
            if hi <= una:
                ranges.pop(0)
                self.sacked -= hi - lo
            else:
                ranges[0][0] = una
                self.sacked -= una - lo
                break
        if not ranges:
            self.high = 0

    def sacked_between(self, lo: int, hi: int) -> int:
        total = 0
        for a, b in self.ranges:
            if b <= lo:
                continue
            if a >= hi:
                break
            total += (b if b < hi else hi) - (a if a > lo else lo)
        return total

    def next_hole(self, start: int, end: int) -> tuple[int, int] | None:
        """The first un-SACKed range at or after ``start`` and before ``end``."""
        for a, b in self.ranges:
            if b <= start:
                continue
            if a > start:
                return (start, a if a < end else end) if start < end else None
            start = b
        return (start, end) if start < end else None

    def clear(self) -> None:
        self.ranges.clear()
        self.sacked = 0
        self.high = 0
