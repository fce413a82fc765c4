"""The Save addon: flows of every type are streamed to the file as they finish, ``+FILE``
appends (repairing a tail cut short by a crash), bad files and paths are clear errors."""

from __future__ import annotations

import pytest

from gateway.addons.save import SHUTDOWN_MESSAGE, Save
from gateway.io import FlowReader, FlowWriter
from gateway.optmanager import OptionsError
from gateway.test import taddons, tflow


def read(path) -> list:
    with open(path, "rb") as f:
        return list(FlowReader(f).stream())


def every_type() -> list:
    return [
        tflow.tflow(resp=True),
        tflow.tflow(err=True),
        tflow.twebsocketflow(close_code=1000),
        tflow.ttcpflow(),
        tflow.ttcpflow(err=True),
        tflow.tudpflow(),
        tflow.tdnsflow(resp=True),
        tflow.tdnsflow(err=True),
    ]


async def test_every_finished_flow_is_saved_once_with_its_state(tmp_path):
    path = tmp_path / "flows.gwf"
    save = Save()
    with taddons.context(save) as tctx:
        tctx.configure(save, save_stream_file=str(path))
        flows = every_type()
        for f in flows:
            await tctx.cycle(save, f)
        # Each is on disk as soon as it finished, before shutdown.
        assert [f.id for f in read(path)] == [f.id for f in flows]
        await tctx.invoke(save, "done")
    back = read(path)
    assert [f.get_state() for f in back] == [f.get_state() for f in flows]


async def test_websocket_flow_is_saved_when_the_websocket_ends_not_at_the_upgrade(tmp_path):
    path = tmp_path / "ws.gwf"
    save = Save()
    with taddons.context(save) as tctx:
        tctx.configure(save, save_stream_file=str(path))
        f = tflow.twebsocketflow()
        await tctx.invoke(save, "request", f)
        await tctx.invoke(save, "response", f)
        assert read(path) == []
        await tctx.invoke(save, "websocket_end", f)
        assert [len(x.websocket.messages) for x in read(path)] == [4]


async def test_flows_still_open_at_shutdown_are_saved(tmp_path):
    path = tmp_path / "open.gwf"
    save = Save()
    with taddons.context(save) as tctx:
        tctx.configure(save, save_stream_file=str(path))
        pending = tflow.tflow()
        tcp = tflow.ttcpflow()
        await tctx.invoke(save, "request", pending)
        await tctx.invoke(save, "tcp_start", tcp)
        done = tflow.tflow(resp=True)
        await tctx.cycle(save, done)
        assert [f.id for f in read(path)] == [done.id]
        await tctx.invoke(save, "done")
    back = read(path)
    assert [f.id for f in back] == [done.id, pending.id, tcp.id]
    # Cut off by the shutdown, and the file says so (a download interrupted by Ctrl-C was
    # saved as '200 OK 50.0m (streamed)', indistinguishable from a complete one).
    assert back[0].error is None
    assert [f.error.msg for f in back[1:]] == [SHUTDOWN_MESSAGE] * 2
    assert pending.error is None and tcp.error is None  # the live flows are left alone


async def test_a_flow_that_already_failed_keeps_its_own_error_at_shutdown(tmp_path):
    path = tmp_path / "failed.gwf"
    save = Save()
    with taddons.context(save) as tctx:
        tctx.configure(save, save_stream_file=str(path))
        tcp = tflow.ttcpflow(err=True)
        await tctx.invoke(save, "tcp_start", tcp)
        await tctx.invoke(save, "done")
    assert [f.error.msg for f in read(path)] == [tcp.error.msg]


async def test_plus_prefix_appends_and_plain_path_replaces(tmp_path):
    path = tmp_path / "a.gwf"
    first = tflow.tflow(resp=True)
    with open(path, "wb") as fo:
        FlowWriter(fo).add(first)
    save = Save()
    with taddons.context(save) as tctx:
        tctx.configure(save, save_stream_file=f"+{path}")
        second = tflow.ttcpflow()
        await tctx.cycle(save, second)
        tctx.configure(save, save_stream_file=None)
        assert [f.id for f in read(path)] == [first.id, second.id]
        tctx.configure(save, save_stream_file=str(path))
        third = tflow.tdnsflow(resp=True)
        await tctx.cycle(save, third)
        await tctx.invoke(save, "done")
    assert [f.id for f in read(path)] == [third.id]


async def test_appending_to_a_file_cut_short_by_a_crash_drops_the_partial_record(tmp_path, caplog):
    path = tmp_path / "crashed.gwf"
    kept = tflow.tflow(resp=True)
    with open(path, "wb") as fo:
        w = FlowWriter(fo)
        w.add(kept)
        w.add(tflow.tflow(resp=True))
    data = path.read_bytes()
    path.write_bytes(data[:-10])  # the second record lost its last bytes
    save = Save()
    with taddons.context(save) as tctx:
        tctx.configure(save, save_stream_file=f"+{path}")
        assert tctx.master.has_log("dropping", "warn")
        new = tflow.tudpflow()
        await tctx.cycle(save, new)
        await tctx.invoke(save, "done")
    assert [f.id for f in read(path)] == [kept.id, new.id]


def test_appending_to_a_foreign_file_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("my notes, not flows\n")
    save = Save()
    with taddons.context(save) as tctx:
        with pytest.raises(OptionsError, match="cannot append to .*notes.txt: refusing to read"):
            tctx.configure(save, save_stream_file=f"+{path}")
    assert path.read_text() == "my notes, not flows\n"


def test_unwritable_path_is_an_options_error(tmp_path):
    save = Save()
    with taddons.context(save) as tctx:
        with pytest.raises(OptionsError, match="cannot save flows to .*No such file or directory"):
            tctx.configure(save, save_stream_file=str(tmp_path / "missing-dir" / "f.gwf"))


async def test_save_stream_filter_keeps_matching_flows_only(tmp_path):
    path = tmp_path / "filtered.gwf"
    save = Save()
    with taddons.context(save) as tctx:
        tctx.configure(save, save_stream_filter="~tcp | ~c 200", save_stream_file=str(path))
        for f in every_type():
            await tctx.cycle(save, f)
        await tctx.invoke(save, "done")
    assert sorted(f.type for f in read(path)) == ["http", "tcp", "tcp"]
    with taddons.context(save) as tctx:
        with pytest.raises(OptionsError, match="save_stream_filter: unknown filter ~nope"):
            tctx.configure(save, save_stream_filter="~nope")


async def test_a_write_failure_is_logged_not_raised(tmp_path):
    path = tmp_path / "f.gwf"
    save = Save()
    with taddons.context(save) as tctx:
        tctx.configure(save, save_stream_file=str(path))
        bad = tflow.tflow(resp=True)
        bad.metadata["obj"] = object()  # cannot be saved
        await tctx.cycle(save, bad)
        assert tctx.master.has_log("cannot save flow", "error")
        good = tflow.tflow(resp=True)
        await tctx.cycle(save, good)
        await tctx.invoke(save, "done")
    assert [f.id for f in read(path)] == [good.id]


def test_without_a_file_nothing_is_written_or_kept():
    save = Save()
    with taddons.context(save):
        save.request(tflow.tflow())
        save.response(tflow.tflow(resp=True))
        assert save.active == {} and save.saved == 0
