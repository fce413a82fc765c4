"""The addon test harness: hook sequences per flow type, interception, options, logs, ctx."""

from __future__ import annotations

import logging

import pytest

from gateway import ctx
from gateway.optmanager import OptionsError
from gateway.test import taddons, tflow


class Seen:
    def __init__(self) -> None:
        self.events: list[str] = []

    def __getattr__(self, name: str):
        if name.startswith("_") or name in ("name", "addons"):
            raise AttributeError(name)
        return lambda *args: self.events.append(name)


@pytest.mark.parametrize(
    "make,expected",
    [
        (lambda: tflow.tflow(resp=True), ["requestheaders", "request", "responseheaders", "response"]),
        (lambda: tflow.tflow(err=True), ["requestheaders", "request", "error"]),
        (
            lambda: tflow.ttcpflow(),
            ["tcp_start"] + ["tcp_message"] * len(tflow.ttcpmessages()) + ["tcp_end"],
        ),
        (lambda: tflow.ttcpflow(messages=[], err=True), ["tcp_start", "tcp_error", "tcp_end"]),
        (lambda: tflow.tdnsflow(resp=True), ["dns_request", "dns_response"]),
        (lambda: tflow.tdnsflow(err=True), ["dns_request", "dns_error"]),
    ],
)
async def test_cycle_sends_the_hooks_a_flow_sees_live(make, expected):
    addon = Seen()
    with taddons.context(addon) as tctx:
        assert addon.events == ["load", "configure"]  # added to a configured master
        addon.events.clear()
        await tctx.cycle(addon, make())
    assert addon.events == expected


async def test_cycle_messages_hook_sees_each_message_as_the_last():
    f = tflow.ttcpflow()
    total = len(f.messages)
    seen = []

    class Last:
        def tcp_message(self, flow):
            seen.append((len(flow.messages), flow.messages[-1].content))

    addon = Last()
    with taddons.context(addon) as tctx:
        await tctx.cycle(addon, f)
    assert [n for n, _ in seen] == list(range(1, total + 1))
    assert len(f.messages) == total


async def test_cycle_stops_when_intercepted():
    class Hold:
        def __init__(self):
            self.events = []

        def request(self, f):
            self.events.append("request")
            f.intercept()

        def response(self, f):
            self.events.append("response")

    addon = Hold()
    with taddons.context(addon) as tctx:
        f = await tctx.cycle(addon, tflow.tflow(resp=True))
    assert addon.events == ["request"] and f.intercepted


def test_context_sets_and_restores_ctx():
    before = ctx.master
    with taddons.context() as tctx:
        assert ctx.master is tctx.master and ctx.options is tctx.options
    assert ctx.master is before


def test_configure_and_logs():
    class Opt:
        def load(self, loader):
            loader.add_option("size", int, 1, "a size")

        def configure(self, updated):
            if ctx.options.size < 0:
                raise OptionsError("size must not be negative")
            logging.getLogger("opt").info(f"size is {ctx.options.size}")

    addon = Opt()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, size=3)
        assert tctx.master.has_log("size is 3", "info")
        assert not tctx.master.has_log("size is 3", "error")
        with pytest.raises(OptionsError):
            tctx.configure(addon, size=-1)
        assert tctx.options.size == 3


async def test_invoke_sends_one_hook():
    addon = Seen()
    with taddons.context(addon) as tctx:
        await tctx.invoke(addon, "running")
    assert addon.events[-1] == "running"
