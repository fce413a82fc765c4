"""Reading flows back from a flow file (format: docs/flow-format.md)."""

from __future__ import annotations

import gc
import os
import zlib
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any

from gateway.io.framing import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_RECORD,
    RECORD_HEAD,
    RECORD_HEAD_SIZE,
    FlowReadException,
    describe_foreign,
)
from gateway.io.shape_compiler import Decoder
from gateway.io.shapes import DecodeError
from gateway.version import FLOW_FORMAT_VERSION

if TYPE_CHECKING:
    from gateway.flow import Flow

# Shapes compiled while reading one file serve the next one too.
_decoder = Decoder()

_CHUNK = 16 << 20


class FlowReader:
    """Reads the flows of a flow file, oldest first.

    Damage stops the stream, never silently: every complete record before it is yielded,
    then ``FlowReadException`` names the byte offset of the first bad record.
    """

    def __init__(self, fo: IO[bytes]) -> None:
        self.fo = fo
        self.offset = 0
        """Byte offset of the next unread record."""
        self.count = 0
        """Number of records read so far."""

    def stream(self) -> Iterator[Flow]:
        """Yield every flow in the file as a ``gateway.flow.Flow`` subclass."""
        from gateway.flow import Flow

        for state, offset in self._states():
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                flow = Flow.from_state(state)
            except Exception as e:  # a valid encoding of something that is not a flow
                raise FlowReadException(
                    f"record at byte {offset} is not a valid flow ({type(e).__name__}: {e}); "
                    f"{self.count - 1} flows read before it",
                    offset,
                ) from None
            finally:
                if gc_was_enabled:
                    gc.enable()
            yield flow

    def stream_states(self) -> Iterator[dict[str, Any]]:
        """Yield every flow as its plain ``get_state()`` dict, without building flow objects."""
        for state, _ in self._states():
            yield state

    def _states(self) -> Iterator[tuple[Any, int]]:
        self._read_header()
        read = self._read
        while True:
            offset = self.offset
            head = read(RECORD_HEAD_SIZE)
            if not head:
                return
            if len(head) < RECORD_HEAD_SIZE:
                raise self._damage(offset, f"the file ends inside a record header ({len(head)} of 8 bytes)")
            length, crc = RECORD_HEAD.unpack(head)
            if length > MAX_RECORD:
                raise self._damage(offset, f"the record header claims {length} bytes (corrupted)")
            payload = read(length)
            if len(payload) < length:
                raise self._damage(offset, f"the file ends inside a record ({len(payload)} of {length} bytes)")
            if zlib.crc32(payload, zlib.crc32(head[:4])) != crc:
                raise self._damage(offset, "the record is corrupted (checksum mismatch)")
            # Decoding allocates many small containers: pausing the cyclic GC meanwhile
            # halves the time when the caller keeps every flow (it would rescan them all).
            gc_was_enabled = gc.isenabled()
            gc.disable()
            try:
                state = _decoder.decode(payload)
            except DecodeError as e:
                raise self._damage(offset, f"the record cannot be decoded: {e}") from None
            finally:
                if gc_was_enabled:
                    gc.enable()
            if type(state) is not dict:
                raise self._damage(offset, "the record does not hold a flow state")
            self.offset = offset + RECORD_HEAD_SIZE + length
            self.count += 1
            yield state, offset

    def _damage(self, offset: int, what: str) -> FlowReadException:
        return FlowReadException(
            f"flow file damaged at byte {offset}: {what}; {self.count} flows read before it",
            offset,
        )

    def _read_header(self) -> None:
        if self.offset:
            return
        head = self._read(HEADER_SIZE)
        if isinstance(head, str):
            raise FlowReadException("flow files are binary: open them with mode 'rb'", 0)
        if not head:
            self.offset = 0
            return
        if not head.startswith(MAGIC[: len(head)]) or (len(head) >= len(MAGIC) and head[: len(MAGIC)] != MAGIC):
            raise FlowReadException(f"refusing to read: {describe_foreign(head)}", 0)
        if len(head) < HEADER_SIZE:
            raise FlowReadException(
                f"flow file damaged at byte 0: the file ends inside its header ({len(head)} of {HEADER_SIZE} bytes)",
                0,
            )
        version = HEADER.unpack(head)[1]
        if version != FLOW_FORMAT_VERSION:
            newer = "a newer" if version > FLOW_FORMAT_VERSION else "an older"
            raise FlowReadException(
                f"refusing to read: flow file format version {version} ({newer} gateway wrote it); "
                f"this gateway reads version {FLOW_FORMAT_VERSION}",
                0,
            )
        self.offset = HEADER_SIZE

    def _read(self, n: int) -> bytes:
        """Read ``n`` bytes or up to the end of the file, in bounded chunks."""
        fo = self.fo
        data = fo.read(min(n, _CHUNK))
        if data is None:
            data = b""
        if len(data) == n or not data:
            return data
        parts = [data]
        got = len(data)
        while got < n:
            more = fo.read(min(n - got, _CHUNK))
            if not more:
                break
            parts.append(more)
            got += len(more)
        return b"".join(parts)


def complete_length(fo: IO[bytes]) -> int:
    """Byte length of the intact part of a flow file: its header and every complete,
    checksummed record before the first damage. Records are checked, not decoded, so
    this is quick even for big files. ``FlowReadException`` for a foreign file or version.

    Appending after a record cut short by a crash would hide every later flow behind the
    damage; ``gateway.addons.save`` truncates to this length first.
    """
    reader = FlowReader(fo)
    reader._read_header()
    end = reader.offset
    while True:
        head = reader._read(RECORD_HEAD_SIZE)
        if len(head) < RECORD_HEAD_SIZE:
            return end
        length, crc = RECORD_HEAD.unpack(head)
        if length > MAX_RECORD:
            return end
        payload = reader._read(length)
        if len(payload) < length or zlib.crc32(payload, zlib.crc32(head[:4])) != crc:
            return end
        end += RECORD_HEAD_SIZE + length


def read_flows_from_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Flow]:
    """All flows of all the files, in order; ``FlowReadException`` names the bad file."""
    flows: list[Flow] = []
    # No caller code runs until we return, so the cyclic GC can pause for the whole read
    # instead of rescanning the growing list of flows over and over.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for path in paths:
            path = os.path.expanduser(os.fspath(path))
            try:
                with open(path, "rb") as f:
                    flows.extend(FlowReader(f).stream())
            except OSError as e:
                raise FlowReadException(f"{path}: {e.strerror or e}") from None
            except FlowReadException as e:
                raise FlowReadException(f"{path}: {e}", e.offset) from None
    finally:
        if gc_was_enabled:
            gc.enable()
    return flows
