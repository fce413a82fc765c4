"""The outer layout of a flow file: a header naming the format and version, then records.

::

    header:  8 bytes magic  b"\\x89GWFLOW\\n"   (a high byte first, like PNG, so a text-mode
             4 bytes version, little-endian     transfer or a text file is caught at once)
    record:  4 bytes payload length, little-endian
             4 bytes CRC-32 of (the 4 length bytes + the payload), little-endian
             payload: one flow state (gateway.io.shapes)

Records are independent: a damaged record cannot corrupt the ones before it, and a file
that was cut short still yields every record written completely. Appending means writing
more records after the last one.
"""

from __future__ import annotations

import struct

from gateway.version import FLOW_FORMAT_VERSION

MAGIC = b"\x89GWFLOW\n"
HEADER = struct.Struct("<8sI")
HEADER_SIZE = HEADER.size
RECORD_HEAD = struct.Struct("<II")
RECORD_HEAD_SIZE = RECORD_HEAD.size
LENGTH = struct.Struct("<I")

# A record longer than this is taken for damage rather than data: nobody keeps a 1 GiB
# body in a flow, and trusting a damaged length would mean a 4 GiB allocation.
MAX_RECORD = 1 << 30


def file_header(version: int = FLOW_FORMAT_VERSION) -> bytes:
    return HEADER.pack(MAGIC, version)


class FlowReadException(Exception):
    """A flow file cannot be read (further): wrong format or version, truncated, corrupted.

    ``offset`` is the byte offset of the damage (or of the header) in the file.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


def describe_foreign(head: bytes) -> str:
    """A guess at what a file that is not ours is, for the error message."""
    if head.startswith(MAGIC[:7]):
        return "a damaged gateway flow file header"
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        return "JSON (a HAR export?)"
    if head[:1].isdigit() and b":" in head[:12]:
        return "a mitmproxy flow file (tnetstring); convert it with mitmproxy first"
    if head.startswith(b"\xd4\xc3\xb2\xa1") or head.startswith(b"\xa1\xb2\xc3\xd4") or head.startswith(b"\x0a\x0d\x0d\x0a"):
        return "a packet capture (pcap), not a flow file"
    return "not a gateway flow file"
