"""Scripts: module-level hooks, `addons = [...]`, order, errors as one line, reload."""

from __future__ import annotations

import asyncio
import os
import textwrap

import pytest

from gateway import ctx
from gateway.addons import script
from gateway.addons.script import ScriptError, ScriptLoader, load_script
from gateway.connection import Client, Server
from gateway.http import HTTPFlow, Request, Response
from gateway.optmanager import OptionsError
from gateway.test import taddons


def write(path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


def http_flow() -> HTTPFlow:
    f = HTTPFlow(Client(peername=("127.0.0.1", 1), sockname=("127.0.0.1", 2)), Server(address=("h", 80)))
    f.request = Request.make("GET", "http://h/")
    f.response = Response.make(200, b"")
    return f


def test_load_script_module_functions(tmp_path):
    path = write(tmp_path / "s.py", """
        calls = []
        def request(flow):
            calls.append(flow)
    """)
    module = load_script(path)
    module.request("x")
    assert module.calls == ["x"]
    # Each load is a fresh module: reloading gets new code and state.
    assert load_script(path) is not module


@pytest.mark.parametrize(
    "text,message",
    [
        ("def request(flow)\n    pass\n", "s.py:1: syntax error"),
        ("x = 1\nraise RuntimeError('bad import')\n", "s.py:2: RuntimeError: bad import"),
        ("import a_module_that_does_not_exist\n", "s.py:1: ModuleNotFoundError"),
    ],
)
def test_broken_scripts_give_one_line_errors(tmp_path, text, message):
    path = write(tmp_path / "s.py", text)
    with pytest.raises(ScriptError) as e:
        load_script(path)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_script(tmp_path):
    with pytest.raises(ScriptError, match="No such script"):
        load_script(str(tmp_path / "nope.py"))


def test_script_can_import_its_neighbours(tmp_path):
    write(tmp_path / "helperlib.py", "VALUE = 42\n")
    path = write(tmp_path / "s.py", "import helperlib\nvalue = helperlib.VALUE\n")
    assert load_script(path).value == 42


async def test_scripts_option_loads_in_order_with_addons_lists(tmp_path):
    first = write(tmp_path / "first.py", """
        from gateway import ctx
        def response(flow):
            flow.response.headers.add("x-order", "first-module")
        class Second:
            def response(self, flow):
                flow.response.headers.add("x-order", "first-addon")
        addons = [Second()]
    """)
    second = write(tmp_path / "second.py", """
        def response(flow):
            flow.response.headers.add("x-order", "second-module")
    """)
    loader = ScriptLoader()
    with taddons.context(loader) as tctx:
        tctx.configure(loader, scripts=[first, second])
        f = http_flow()
        await tctx.master.addons.trigger("response", f)
        assert f.response.headers.get_all("x-order") == ["first-module", "first-addon", "second-module"]

        # Reordering the option reorders the chain.
        tctx.configure(loader, scripts=[second, first])
        f = http_flow()
        await tctx.master.addons.trigger("response", f)
        assert f.response.headers.get_all("x-order") == ["second-module", "first-module", "first-addon"]


async def test_removing_a_script_sends_done_and_stops_its_hooks(tmp_path):
    marker = tmp_path / "done-called"
    path = write(tmp_path / "s.py", f"""
        def response(flow):
            flow.response.headers["x-s"] = "1"
        def done():
            open({str(marker)!r}, "w").close()
    """)
    loader = ScriptLoader()
    with taddons.context(loader) as tctx:
        tctx.configure(loader, scripts=[path])
        tctx.configure(loader, scripts=[])
        assert marker.exists()
        f = http_flow()
        await tctx.master.addons.trigger("response", f)
        assert "x-s" not in f.response.headers


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("missing", None, "No such script"),
        ("syntax", "def f(:\n", "syntax error"),
        ("raises", "1/0\n", "ZeroDivisionError"),
    ],
)
def test_bad_scripts_are_refused_and_change_nothing(tmp_path, name, text, message):
    good = write(tmp_path / "good.py", "def request(flow): pass\n")
    bad = str(tmp_path / f"{name}.py")
    if text is not None:
        write(tmp_path / f"{name}.py", text)
    loader = ScriptLoader()
    with taddons.context(loader) as tctx:
        tctx.configure(loader, scripts=[good])
        with pytest.raises(OptionsError) as e:
            tctx.configure(loader, scripts=[good, bad])
        assert message in str(e.value) and "\n" not in str(e.value)
        assert tctx.options.scripts == [good]
        assert [s.fullpath for s in loader.addons] == [os.path.abspath(good)]


def test_same_script_twice_is_refused(tmp_path):
    path = write(tmp_path / "s.py", "")
    loader = ScriptLoader()
    with taddons.context(loader) as tctx, pytest.raises(OptionsError, match="twice"):
        tctx.configure(loader, scripts=[path, path])


def test_script_options_and_configure(tmp_path):
    path = write(tmp_path / "s.py", """
        from gateway import ctx
        seen = []
        def load(loader):
            loader.add_option("greeting", str, "hello", "what to say")
        def configure(updated):
            if "greeting" in updated:
                seen.append(ctx.options.greeting)
    """)
    loader = ScriptLoader()
    with taddons.context(loader) as tctx:
        tctx.options.set("greeting=bonjour", defer=True)
        tctx.configure(loader, scripts=[path])
        module = loader.addons[0].ns
        assert tctx.options.greeting == "bonjour"
        tctx.options.update(greeting="hallo")
        assert module.seen[-1] == "hallo"
        assert "bonjour" in module.seen


def test_a_script_configure_refusing_its_option_fails_the_load(tmp_path):
    path = write(tmp_path / "s.py", """
        from gateway import ctx
        from gateway.optmanager import OptionsError
        def load(loader):
            loader.add_option("level", int, -1, "must be set positive")
        def configure(updated):
            if ctx.options.level < 0:
                raise OptionsError("level must be positive")
    """)
    loader = ScriptLoader()
    with taddons.context(loader) as tctx, pytest.raises(OptionsError, match="positive"):
        tctx.configure(loader, scripts=[path])
    assert loader.addons == []


async def test_edited_script_is_reloaded_and_a_broken_edit_keeps_the_old(tmp_path, monkeypatch):
    path = write(tmp_path / "s.py", """
        def response(flow):
            flow.response.headers["x-version"] = "1"
    """)
    loader = ScriptLoader()
    with taddons.context(loader) as tctx:
        tctx.configure(loader, scripts=[path])
        s = loader.addons[0]

        write(tmp_path / "s.py", "def response(flow):\n    flow.response.headers['x-version'] = '2'\n")
        os.utime(path, (s.mtime + 5, s.mtime + 5))
        assert s.changed_on_disk()
        s.reload()
        f = http_flow()
        await tctx.master.addons.trigger("response", f)
        assert f.response.headers["x-version"] == "2"

        write(tmp_path / "s.py", "def response(flow:\n")
        os.utime(path, (s.mtime + 10, s.mtime + 10))
        s.reload()
        assert tctx.master.has_log("keeping the previous version", "error")
        f = http_flow()
        await tctx.master.addons.trigger("response", f)
        assert f.response.headers["x-version"] == "2"


async def test_watcher_reloads_while_running(tmp_path, monkeypatch):
    monkeypatch.setattr(script, "RELOAD_INTERVAL", 0.01)
    path = write(tmp_path / "s.py", "def response(flow):\n    flow.response.headers['x-v'] = 'old'\n")
    loader = ScriptLoader()
    with taddons.context(loader) as tctx:
        tctx.configure(loader, scripts=[path])
        s = loader.addons[0]
        loader.running()
        try:
            write(tmp_path / "s.py", "def response(flow):\n    flow.response.headers['x-v'] = 'new'\n")
            os.utime(path, (s.mtime + 5, s.mtime + 5))
            f = http_flow()
            for _ in range(500):  # bounded: at most a few seconds
                await asyncio.sleep(0.01)
                f = http_flow()
                await tctx.master.addons.trigger("response", f)
                if f.response.headers["x-v"] == "new":
                    break
            assert f.response.headers["x-v"] == "new"
        finally:
            loader.done()
    assert ctx.master is not tctx.master
