"""The master: options, addons and the run until shutdown.

``run()`` sends ``configure`` with every option (so each addon sees the initial state,
including values set before it was added), then ``running`` (the proxy server opens its
listeners there), waits for ``shutdown()``, and finally sends ``done``.  An error logged
while starting (a port in use, a failing addon) ends the run with exit code 1 rather than
leaving a gateway that runs half set up: the user sees the log line and a failed command.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from gateway import ctx
from gateway.addonmanager import AddonManager
from gateway.log import ErrorCheck, TermLog
from gateway.options import Options

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Master:
    def __init__(
        self,
        opts: Options | None = None,
        event_loop: asyncio.AbstractEventLoop | None = None,
        with_termlog: bool = False,
    ) -> None:
        self.options: Options = opts if opts is not None else Options()
        self.commands: dict[str, Callable[..., Any]] = {}
        self.addons = AddonManager(self)
        self._event_loop = event_loop
        self.should_exit = asyncio.Event()
        self.exit_code = 0
        self.startup_errors: list[str] = []
        """One line per error logged while starting; non-empty means run() gave up."""
        self.termlog: TermLog | None = None
        if with_termlog:
            self.termlog = TermLog()
            self.addons.add(self.termlog)
        ctx.master = self
        ctx.options = self.options

    @property
    def event_loop(self) -> asyncio.AbstractEventLoop:
        if self._event_loop is None:
            self._event_loop = asyncio.get_running_loop()
        return self._event_loop

    async def run(self) -> int:
        """Run until ``shutdown()``; returns the exit code (0, or 1 after a startup error).

        OptionsError from an addon's first ``configure`` propagates: the configuration
        is bad and nothing has started.
        """
        self._event_loop = asyncio.get_running_loop()
        self._event_loop.set_exception_handler(self._asyncio_exception_handler)
        ctx.master = self
        ctx.options = self.options
        errorcheck = ErrorCheck()
        try:
            self.addons.configured = True
            self.addons._configure_all(self.options.keys())
            await self.addons.trigger("running")
            self.addons.is_running = True
            errorcheck.disarm()
            if errorcheck.has_errored:
                self.startup_errors = errorcheck.messages()
                self.exit_code = 1
                if self.termlog is None:
                    for line in self.startup_errors:
                        print(f"error: {line}", file=sys.stderr)
                return self.exit_code
            await self.should_exit.wait()
            return self.exit_code
        finally:
            errorcheck.close()
            await self.addons.trigger("done")
            self.addons.is_running = False
            # Last, not in its own ``done``: what other addons log while they stop (the
            # modes' counters) must still reach the terminal, whatever the chain order.
            if self.termlog is not None:
                self.termlog.uninstall()

    def _asyncio_exception_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """Unhandled errors in tasks and callbacks go to our log, not raw to stderr.

        Connection tasks cancelled at shutdown surface as CancelledError in asyncio's
        stream callbacks; that is the expected end of a connection, so it is debug only.
        """
        exc = context.get("exception")
        if isinstance(exc, asyncio.CancelledError) or (exc is None and self.should_exit.is_set()):
            logger.debug(f"during shutdown: {context.get('message')}")
            return
        message = context.get("message", "unhandled error in the event loop")
        if exc is not None:
            logger.error(f"{message}: {exc!r}", exc_info=(type(exc), exc, exc.__traceback__))
        else:
            logger.error(message)

    def shutdown(self, exit_code: int | None = None) -> None:
        """Ask ``run()`` to finish; safe to call from any thread or a signal handler."""
        if exit_code is not None:
            self.exit_code = exit_code
        loop = self._event_loop
        if loop is None or loop.is_closed():
            self.should_exit.set()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.should_exit.set()
        else:
            loop.call_soon_threadsafe(self.should_exit.set)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed, unless GATEWAY_LOOP=asyncio asks for the standard loop."""
    if os.environ.get("GATEWAY_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on uvloop (or asyncio's loop without it)."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(main)


def install_signal_handlers(master: Master) -> None:
    """SIGINT/SIGTERM shut down cleanly; a second SIGINT exits at once."""
    loop = asyncio.get_running_loop()
    presses = 0

    def on_signal() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            logger.info("Shutting down...")
            master.shutdown()
        else:
            os._exit(130)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / platform
            pass
