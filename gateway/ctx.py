"""The running context for addons: ``from gateway import ctx``.

``ctx.master``, ``ctx.options`` and ``ctx.log`` are set when a ``Master`` is created
(and by ``gateway.test.taddons.context`` in tests).  Module attributes rather than a
context variable, as in mitmproxy, because hook code reads them from plain functions
in scripts that have no other way to reach the master.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway import log as _log

if TYPE_CHECKING:
    from gateway.master import Master
    from gateway.options import Options

master: Master = None  # type: ignore[assignment]
options: Options = None  # type: ignore[assignment]
log: _log.Log = _log.Log()
