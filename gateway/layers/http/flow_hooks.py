"""Calling hooks from the HTTP layers, and the flow-control checks that follow each call."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("gateway.http")

KILLED_MESSAGE = "Connection killed."


def killed_message() -> str:
    try:
        from gateway.flow import Error

        return getattr(Error, "KILLED_MESSAGE", KILLED_MESSAGE)
    except ImportError:  # pragma: no cover - model not present
        return KILLED_MESSAGE


async def trigger(ctx: Any, name: str, flow: Any) -> None:
    """Run a hook; then, if an addon intercepted the flow, wait until it is resumed.

    The addon manager's trigger already holds intercepted flows; waiting here as well is
    harmless (the flow is no longer intercepted) and keeps the layer right if a manager
    does not.
    """
    await ctx.addons.trigger(name, flow)
    if getattr(flow, "intercepted", False) and hasattr(flow, "wait_for_resume"):
        await flow.wait_for_resume()


def is_killed(flow: Any) -> bool:
    err = getattr(flow, "error", None)
    return err is not None and getattr(err, "msg", None) == killed_message()


def set_error(flow: Any, msg: str) -> None:
    from gateway.flow import Error

    if flow.error is None:
        flow.error = Error(msg)
    flow.live = False
