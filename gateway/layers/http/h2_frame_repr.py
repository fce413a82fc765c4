"""A cheaper text for hyperframe's DATA frame repr, which h2 builds for every frame received.

``H2Connection._receive_frame`` formats ``repr(frame)`` for its trace log before the
logger decides anything (the default logger drops it), and hyperframe's repr of a frame
payload hex-encodes the whole payload only to keep its first 20 hex digits: about 6 us
per 8 KiB DATA frame from nginx, some 5% of the gateway's CPU during an intercepted HTTPS
download.  ``install`` swaps that helper for one that encodes only the bytes it shows and
returns the same text; it leaves hyperframe alone if the helper is not there or its text
differs (another hyperframe version), so the worst case is the old cost.
"""

from __future__ import annotations

import binascii
import logging

import hyperframe.frame

log = logging.getLogger("gateway.http2")

hyperframe_raw_data_repr = getattr(hyperframe.frame, "_raw_data_repr", None)
"""hyperframe's own helper, kept for comparison."""

_SHOWN = 10
"""Payload bytes hyperframe shows (20 hex digits)."""


def raw_data_repr(data: bytes | None) -> str:
    if not data:
        return "None"
    r = binascii.hexlify(data[:_SHOWN]).decode("ascii")
    return "<hex:" + r + ("...>" if len(data) > _SHOWN else ">")


def install() -> bool:
    """Use ``raw_data_repr`` in hyperframe when it gives hyperframe's own text; True if so."""
    original = hyperframe_raw_data_repr
    if hyperframe.frame.__dict__.get("_raw_data_repr") is raw_data_repr:
        return True
    if not callable(original):
        return False
    samples = [None, b"", b"\x00", bytes(range(10)), bytes(range(11)), bytes(range(256)) * 40]
    try:
        same = all(original(s) == raw_data_repr(s) for s in samples)
    except Exception:  # noqa: BLE001 - an unexpected hyperframe: keep its own helper
        same = False
    if not same:
        log.debug("hyperframe's frame repr differs from ours; leaving it as it is")
        return False
    hyperframe.frame._raw_data_repr = raw_data_repr  # type: ignore[attr-defined]
    return True


install()
