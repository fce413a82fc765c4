"""Terminal log: verbosity from the option, one line per record, ctx.log, startup error capture."""

from __future__ import annotations

import io
import logging

import pytest

from gateway import ctx
from gateway.log import ALERT, ErrorCheck, TermLog
from gateway.test import taddons


@pytest.fixture
def termlog():
    out = io.StringIO()
    t = TermLog(out=out)
    root_level = logging.getLogger().level
    try:
        yield t, out
    finally:
        t.uninstall()
        logging.getLogger().setLevel(root_level)


def test_verbosity_option_filters_records(termlog):
    t, out = termlog
    with taddons.context(t) as tctx:
        log = logging.getLogger("some.addon")
        log.info("an info line")
        log.debug("a debug line")
        tctx.configure(t, termlog_verbosity="debug")
        log.debug("now debug shows")
        tctx.configure(t, termlog_verbosity="error")
        log.warning("a warning")
        log.error("an error")
    lines = out.getvalue().splitlines()
    assert lines == ["an info line", "now debug shows", "error: an error"]


def test_warning_prefix_and_alert_level(termlog):
    t, out = termlog
    with taddons.context(t):
        logging.getLogger("x").warning("careful")
        logging.getLogger("x").log(ALERT, "look here")
    assert out.getvalue().splitlines() == ["warning: careful", "look here"]


def test_ctx_log_forwards_to_logging():
    with taddons.context() as tctx:
        ctx.log.info("info via ctx")
        ctx.log.warn("warn via ctx")
        ctx.log.error("error via ctx")
        ctx.log.alert("alert via ctx")
        ctx.log("called via ctx", "debug")
        assert tctx.master.has_log("info via ctx", "info")
        assert tctx.master.has_log("warn via ctx", "warn")
        assert tctx.master.has_log("error via ctx", "error")
        assert tctx.master.has_log("alert via ctx", "alert")
        assert tctx.master.has_log("called via ctx", "debug")


def test_errorcheck_records_errors_until_disarmed():
    check = ErrorCheck()
    try:
        logging.getLogger("y").warning("not an error")
        logging.getLogger("y").error("bind failed: port 80 in use\nmore detail")
        check.disarm()
        logging.getLogger("y").error("after start-up")
        assert check.has_errored
        assert check.messages() == ["bind failed: port 80 in use"]
    finally:
        check.close()


async def test_what_addons_log_in_done_reaches_the_terminal():
    """The terminal log is added first, so it must outlive the ``done`` of every later addon."""
    from gateway.master import Master
    from gateway.options import Options

    class Stopping:
        def running(self):
            ctx.master.shutdown()

        def done(self):
            logging.getLogger("gateway.test").warning("counters at stop: 42")

    out = io.StringIO()
    root_level = logging.getLogger().level
    m = Master(Options(), with_termlog=True)
    m.termlog.out = out
    try:
        m.addons.add(Stopping())
        assert await m.run() == 0
    finally:
        m.termlog.uninstall()
        logging.getLogger().setLevel(root_level)
    assert "counters at stop: 42" in out.getvalue()
    assert m.termlog not in logging.getLogger().handlers
