"""Writing flows to a flow file (format: docs/flow-format.md)."""

from __future__ import annotations

import zlib
from typing import IO, TYPE_CHECKING, Any

from gateway.io import shapes
from gateway.io.framing import LENGTH, MAX_RECORD, file_header

if TYPE_CHECKING:
    from gateway.flow import Flow
    from gateway.flowfilter import TFilter


class FlowWriter:
    """Appends flows to a binary file object, one record per flow.

    The file header is written when the file object is at position 0 (a new or empty
    file, or a stream that cannot tell); a file opened for appending (``"ab"``) already
    has it. Each record goes out in one ``write`` call, so a reader never sees half a
    record from a writer that is still running, only from one that died.
    """

    def __init__(self, fo: IO[bytes]) -> None:
        self.fo = fo
        try:
            at_start = fo.tell() == 0
        except (OSError, AttributeError, ValueError):
            at_start = True
        if at_start:
            fo.write(file_header())

    def add(self, flow: Flow) -> None:
        self.add_state(flow.get_state())

    def add_state(self, state: dict[str, Any]) -> None:
        """Write a flow given as its ``get_state()`` dict."""
        self.fo.write(encode_record(state))


class FilteredFlowWriter(FlowWriter):
    """A ``FlowWriter`` that only writes flows matching a filter (``gateway.flowfilter``)."""

    def __init__(self, fo: IO[bytes], flt: TFilter | None) -> None:
        super().__init__(fo)
        self.flt = flt

    def add(self, flow: Flow) -> None:
        from gateway import flowfilter

        if self.flt is not None and not flowfilter.match(self.flt, flow):
            return
        super().add(flow)


def encode_record(state: Any) -> bytes:
    """One complete record (length, checksum, payload) holding ``state``."""
    payload = shapes.encode(state)
    if len(payload) > MAX_RECORD:
        raise ValueError(f"flow too large to save ({len(payload)} bytes, at most {MAX_RECORD})")
    length = LENGTH.pack(len(payload))
    crc = zlib.crc32(payload, zlib.crc32(length))
    return length + LENGTH.pack(crc) + payload
