"""multipart/form-data bodies (RFC 7578): decode to and encode from ``(name, value)`` pairs.

Parts are split on the exact delimiter line, so values keep their CRLFs and binary
content intact.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gateway.net.http.headers import parse_content_type

# Browsers do not backslash-escape names; they percent-encode '"', CR and LF (WHATWG).
_NAME_RE = re.compile(rb'(?i)\bname\s*=\s*(?:"([^"]*)"|([^;\s]+))')


def _boundary(content_type: str) -> bytes | None:
    ct = parse_content_type(content_type)
    if not ct or "boundary" not in ct[2]:
        return None
    try:
        return ct[2]["boundary"].encode("ascii")
    except UnicodeError:
        return None


def decode_multipart(content_type: str | None, content: bytes) -> list[tuple[bytes, bytes]]:
    """The form fields of a multipart body; raises ``ValueError`` if it is not one."""
    boundary = _boundary(content_type or "")
    if boundary is None:
        raise ValueError("no multipart boundary in content type")
    delimiter = b"--" + boundary
    # Prefix a CRLF so the first delimiter looks like every other one.
    chunks = (b"\r\n" + content).split(b"\r\n" + delimiter)
    if len(chunks) < 2:
        raise ValueError("no multipart delimiter found")
    fields: list[tuple[bytes, bytes]] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # closing delimiter
        head, sep, body = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-disposition":
                m = _NAME_RE.search(value)
                if m:
                    key = m.group(1) if m.group(1) is not None else m.group(2)
                    fields.append((key, body))
                break
    return fields


def encode_multipart(content_type: str, parts: Iterable[tuple[bytes | str, bytes | str]]) -> bytes:
    boundary = _boundary(content_type)
    if boundary is None:
        raise ValueError("no multipart boundary in content type")
    out: list[bytes] = []
    for name, value in parts:
        if isinstance(name, str):
            name = name.encode("utf-8")
        if isinstance(value, str):
            value = value.encode("utf-8")
        if b"--" + boundary in value:
            raise ValueError("multipart value contains the boundary")
        out.append(b"--" + boundary + b"\r\n")
        name = name.replace(b'"', b"%22").replace(b"\r", b"%0D").replace(b"\n", b"%0A")
        out.append(b'Content-Disposition: form-data; name="' + name + b'"\r\n\r\n')
        out.append(value + b"\r\n")
    out.append(b"--" + boundary + b"--\r\n")
    return b"".join(out)
