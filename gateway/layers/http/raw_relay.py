"""Bytes both ways between two stream pairs, for upgrades we do not parse (e.g. h2c)."""

from __future__ import annotations

import asyncio
from typing import Any

CHUNK = 256 * 1024


async def _pipe(reader: Any, writer: Any) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


async def relay_bytes(creader: Any, cwriter: Any, sreader: Any, swriter: Any) -> None:
    """Until both directions have ended (half-close passed through)."""
    try:
        await asyncio.gather(_pipe(creader, swriter), _pipe(sreader, cwriter))
    finally:
        for w in (cwriter, swriter):
            try:
                w.close()
            except Exception:  # noqa: BLE001
                pass
