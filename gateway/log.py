"""Logging: the standard ``logging`` module, shown on the terminal by ``TermLog``.

Addons log with ``logging.getLogger(__name__)`` (or ``ctx.log.info(...)`` for code
written against mitmproxy's older API).  ``TermLog`` writes records to stderr at the level
chosen by ``termlog_verbosity``, so that stdout carries only the live flow lines of the
dumper and can be piped.  ``ErrorCheck`` turns errors logged while starting up (a port
already in use, a script that fails) into a non-zero exit instead of a gateway that runs
half-configured.
"""

from __future__ import annotations

import logging
import sys
from typing import IO

ALERT = logging.INFO + 1
"""Between info and warning: something the user asked to be told (mitmproxy's level)."""
logging.addLevelName(ALERT, "ALERT")

LEVELS = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "alert": ALERT,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}

logger = logging.getLogger("gateway.addons")


class Log:
    """``ctx.log``: ``ctx.log.info("...")`` and friends, forwarded to ``logging``."""

    def debug(self, txt: str) -> None:
        logger.debug(txt)

    def info(self, txt: str) -> None:
        logger.info(txt)

    def alert(self, txt: str) -> None:
        logger.log(ALERT, txt)

    def warn(self, txt: str) -> None:
        logger.warning(txt)

    warning = warn

    def error(self, txt: str) -> None:
        logger.error(txt)

    def __call__(self, txt: str, level: str = "info") -> None:
        logger.log(LEVELS.get(level, logging.INFO), txt)


class _TermFormatter(logging.Formatter):
    """One line per record (plus the traceback when there is one), prefixed by its level."""

    def __init__(self, colour: bool) -> None:
        super().__init__()
        self.colour = colour

    _COLOURS = {
        logging.ERROR: "\x1b[31m",
        logging.WARNING: "\x1b[33m",
        ALERT: "\x1b[35m",
        logging.DEBUG: "\x1b[2m",
    }

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.ERROR:
            text = f"error: {text}"
        elif record.levelno >= logging.WARNING:
            text = f"warning: {text}"
        colour = self._COLOURS.get(record.levelno) if self.colour else None
        return f"{colour}{text}\x1b[0m" if colour else text


class TermLog(logging.Handler):
    """Addon and logging handler: records at or above ``termlog_verbosity`` go to stderr."""

    name = "termlog"

    def __init__(self, out: IO[str] | None = None) -> None:
        super().__init__(logging.INFO)
        self.out = out
        stream = out or sys.stderr
        self.setFormatter(_TermFormatter(colour=hasattr(stream, "isatty") and stream.isatty()))
        self._installed = False
        self.install()

    def install(self) -> None:
        if not self._installed:
            root = logging.getLogger()
            root.addHandler(self)
            self._set_root_level(self.level)
            self._installed = True

    @staticmethod
    def _set_root_level(level: int) -> None:
        # The root level is the first filter: records below it are never even created,
        # which keeps debug logging on hot paths free unless someone asked for it.
        logging.getLogger().setLevel(level)

    def uninstall(self) -> None:
        logging.getLogger().removeHandler(self)
        self._installed = False

    def configure(self, updated: set[str]) -> None:
        from gateway import ctx

        if "termlog_verbosity" in updated:
            level = LEVELS[ctx.options.termlog_verbosity]
            self.setLevel(level)
            if self._installed:
                self._set_root_level(level)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=self.out or sys.stderr, flush=True)
        except Exception:  # pragma: no cover - a closed terminal must not crash the gateway
            self.handleError(record)


class ErrorCheck(logging.Handler):
    """Records errors logged until startup is over; the master then exits with status 1."""

    name = "errorcheck"

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: list[logging.LogRecord] = []
        self.armed = True
        logging.getLogger().addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if self.armed:
            self.errors.append(record)

    @property
    def has_errored(self) -> bool:
        return bool(self.errors)

    def messages(self) -> list[str]:
        return [r.getMessage().splitlines()[0] if r.getMessage() else "error" for r in self.errors]

    def disarm(self) -> None:
        self.armed = False

    def close(self) -> None:
        logging.getLogger().removeHandler(self)
        super().close()

    def done(self) -> None:
        self.close()
