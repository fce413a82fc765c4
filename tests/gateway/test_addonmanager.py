"""The addon manager: order, async hooks, interception, failures, lifecycle and options."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway import ctx, hooks
from gateway.addonmanager import AddonHalt, AddonManagerError, Loader
from gateway.connection import Client, Server
from gateway.http import HTTPFlow, Request, Response
from gateway.master import Master
from gateway.options import Options
from gateway.optmanager import OptionsError


def http_flow(url: str = "http://example.com/") -> HTTPFlow:
    client = Client(peername=("127.0.0.1", 50000), sockname=("127.0.0.1", 8080))
    server = Server(address=("example.com", 80))
    f = HTTPFlow(client, server, live=True)
    f.request = Request.make("GET", url)
    return f


class Recorder:
    """Appends (its name, hook name) to a shared list for every hook it sees."""

    def __init__(self, name: str, log: list, children: list | None = None) -> None:
        self.name = name
        self.log = log
        if children is not None:
            self.addons = children

    def request(self, f):
        self.log.append((self.name, "request"))

    def response(self, f):
        self.log.append((self.name, "response"))


@pytest.fixture
def master():
    m = Master(Options())
    yield m
    ctx.master = None
    ctx.options = None


async def test_hooks_run_in_chain_order_children_depth_first(master):
    log: list = []
    grandchild = Recorder("grandchild", log)
    child = Recorder("child", log, [grandchild])
    sibling = Recorder("sibling", log)
    parent = Recorder("parent", log, [child, sibling])
    last = Recorder("last", log)
    master.addons.add(parent, last)
    await master.addons.trigger("request", http_flow())
    assert [n for n, _ in log] == ["parent", "child", "grandchild", "sibling", "last"]
    assert master.addons.get("grandchild") is grandchild
    assert len(master.addons) == 5


async def test_trigger_by_name_or_hook_object_is_the_same(master):
    log: list = []
    master.addons.add(Recorder("a", log))
    f = http_flow()
    await master.addons.trigger(hooks.ResponseHook(f))
    await master.addons.trigger("response", f)
    assert log == [("a", "response"), ("a", "response")]


async def test_async_hooks_are_awaited_before_the_next_addon(master):
    log: list = []

    class Slow:
        name = "slow"

        async def request(self, f):
            for _ in range(3):
                await asyncio.sleep(0)
            f.request.headers["x-slow"] = "done"
            log.append("slow")

    class After:
        def request(self, f):
            log.append(("after sees", f.request.headers.get("x-slow")))

    master.addons.add(Slow(), After())
    await master.addons.trigger("request", http_flow())
    assert log == ["slow", ("after sees", "done")]


async def test_intercepted_flow_waits_while_other_flows_proceed(master):
    order: list = []

    class Interceptor:
        def request(self, f):
            if f.request.path == "/hold":
                f.intercept()

    class Done:
        def request(self, f):
            order.append(("hooked", f.request.path))

    master.addons.add(Interceptor(), Done())
    held, free = http_flow("http://example.com/hold"), http_flow("http://example.com/free")

    held_task = asyncio.create_task(master.addons.trigger("request", held))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not held_task.done()
    assert held.intercepted
    # Later addons still saw the held flow (mitmproxy's order: wait after the whole chain).
    assert ("hooked", "/hold") in order

    # Another flow goes through the whole chain meanwhile.
    await asyncio.wait_for(master.addons.trigger("request", free), timeout=5)
    assert ("hooked", "/free") in order
    assert not held_task.done()

    async def resumer():
        held.resume()

    await asyncio.create_task(resumer())
    await asyncio.wait_for(held_task, timeout=5)
    assert not held.intercepted


async def test_killing_an_intercepted_flow_releases_it(master):
    class Interceptor:
        def request(self, f):
            f.intercept()

    master.addons.add(Interceptor())
    f = http_flow()
    task = asyncio.create_task(master.addons.trigger("request", f))
    await asyncio.sleep(0)
    assert not task.done()
    f.kill()
    await asyncio.wait_for(task, timeout=5)
    assert f.error is not None and f.error.msg == "Connection killed."


async def test_a_raising_hook_is_logged_with_traceback_and_the_next_addon_runs(master, caplog):
    log: list = []

    class Broken:
        name = "broken"

        def request(self, f):
            raise ValueError("boom in request")

    class AsyncBroken:
        name = "asyncbroken"

        async def request(self, f):
            await asyncio.sleep(0)
            raise KeyError("boom async")

    master.addons.add(Broken(), AsyncBroken(), Recorder("after", log))
    with caplog.at_level(logging.ERROR):
        await master.addons.trigger("request", http_flow())
    assert log == [("after", "request")]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "broken.request" in errors[0].getMessage() and "boom in request" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    text = caplog.text
    assert "Traceback" in text and 'raise ValueError("boom in request")' in text
    assert "asyncbroken.request" in errors[1].getMessage()


async def test_addon_halt_stops_later_addons(master):
    log: list = []

    class Stopper:
        def request(self, f):
            raise AddonHalt()

    master.addons.add(Recorder("before", log), Stopper(), Recorder("after", log))
    await master.addons.trigger("request", http_flow())
    assert log == [("before", "request")]


async def test_setting_a_response_in_request_is_visible_to_later_addons(master):
    seen = []

    class Answer:
        def request(self, f):
            f.response = Response.make(418, b"teapot")

    class Look:
        def request(self, f):
            seen.append(f.response.status_code)

    master.addons.add(Answer(), Look())
    await master.addons.trigger("request", http_flow())
    assert seen == [418]


def test_load_declares_options_and_configure_fires_on_change(master):
    updates: list = []

    class Opt:
        def load(self, loader):
            assert isinstance(loader, Loader)
            loader.add_option("greeting", str, "hello", "what to say")

        def configure(self, updated):
            updates.append(set(updated))

    master.addons.add(Opt())
    assert master.options.greeting == "hello"
    master.options.update(greeting="hi")
    assert updates == [{"greeting"}]
    master.options.set("greeting=yo", "flow_detail=2")
    assert updates[-1] == {"greeting", "flow_detail"}


def test_configure_refusing_a_value_rolls_it_back(master):
    class Strict:
        def load(self, loader):
            loader.add_option("limit", int, 10, "must be positive")

        def configure(self, updated):
            if "limit" in updated and ctx.options.limit <= 0:
                raise OptionsError("limit must be positive")

    master.addons.add(Strict())
    with pytest.raises(OptionsError, match="positive"):
        master.options.update(limit=-1)
    assert master.options.limit == 10


def test_redeclaring_an_option_keeps_its_value(master):
    class A:
        def load(self, loader):
            loader.add_option("shared", int, 1, "first")

    class B:
        name = "b"

        def load(self, loader):
            loader.add_option("shared", int, 1, "second")

    master.addons.add(A())
    master.options.update(shared=5)
    master.addons.add(B())
    assert master.options.shared == 5
    assert master.options.option("shared").help == "second"


def test_deferred_set_applied_when_an_addon_declares_it(master):
    master.options.set("later=7", defer=True)

    class Late:
        def load(self, loader):
            loader.add_option("later", int, 0, "declared by an addon")

    master.addons.add(Late())
    assert master.options.later == 7
    assert not master.options.deferred


def test_addon_added_after_configuration_gets_configure_with_everything(master):
    master.addons.configured = True
    got = []

    class Late:
        def configure(self, updated):
            got.append(updated)

    master.addons.add(Late())
    assert got and got[0] == master.options.keys()


def test_duplicate_names_are_refused(master):
    master.addons.add(Recorder("same", []))
    with pytest.raises(AddonManagerError, match="same"):
        master.addons.add(Recorder("same", []))


async def test_remove_sends_done_and_stops_hooks(master):
    log: list = []

    class WithDone(Recorder):
        def done(self):
            log.append((self.name, "done"))

    a = WithDone("a", log)
    master.addons.add(a)
    master.addons.remove(a)
    await master.addons.trigger("request", http_flow())
    assert log == [("a", "done")]
    assert master.addons.get("a") is None


def test_misspelt_hook_is_warned(master, caplog):
    class Typo:
        def reqest(self, f):
            pass

        def responce(self, f):
            pass

        def helper_for_something(self):
            pass

    with caplog.at_level(logging.WARNING):
        master.addons.add(Typo())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'reqest'" in w and "'request'" in w for w in warnings)
    assert any("'responce'" in w and "'response'" in w for w in warnings)
    assert not any("helper_for_something" in w for w in warnings)


def test_trigger_sync_runs_sync_hooks(master):
    log: list = []
    master.addons.add(Recorder("a", log))
    master.addons.trigger_sync("request", http_flow())
    assert log == [("a", "request")]


async def test_master_run_lifecycle_order():
    events: list = []

    class Life:
        def load(self, loader):
            events.append("load")

        def configure(self, updated):
            events.append(("configure", "mode" in updated))

        async def running(self):
            events.append("running")
            ctx.master.shutdown()

        def done(self):
            events.append("done")

    m = Master(Options())
    m.addons.add(Life())
    code = await asyncio.wait_for(m.run(), timeout=10)
    assert code == 0
    assert events == ["load", ("configure", True), "running", "done"]


async def test_master_exits_1_when_an_error_is_logged_during_startup(capsys):
    class FailsToListen:
        def running(self):
            logging.getLogger("test").error("port 8080 is already in use")

    m = Master(Options())
    m.addons.add(FailsToListen())
    code = await asyncio.wait_for(m.run(), timeout=10)
    assert code == 1
    assert m.startup_errors == ["port 8080 is already in use"]
    assert "port 8080 is already in use" in capsys.readouterr().err


async def test_hook_table_lists_mitmproxy_hook_names():
    expected = {
        "load", "configure", "running", "done", "client_connected", "client_disconnected", "server_connect",
        "server_connected", "server_disconnected", "http_connect", "http_connect_upstream", "requestheaders",
        "request", "responseheaders", "response", "error", "tcp_start", "tcp_message", "tcp_end", "tcp_error",
        "udp_start", "udp_message", "udp_end", "udp_error", "dns_request", "dns_response", "dns_error",
        "websocket_start", "websocket_message", "websocket_end", "tls_clienthello", "tls_start_client",
        "tls_start_server", "tls_established_client", "tls_established_server", "tls_failed_client",
        "tls_failed_server", "update",
    }
    assert expected <= set(hooks.all_hooks)
    assert hooks.RequestHook(1).args() == [1]
    assert hooks.RunningHook().args() == []
