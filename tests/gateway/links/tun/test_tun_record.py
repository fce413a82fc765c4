"""The TUN record: what a run changed, and whether that run is still alive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.links.tun import cleanup
from gateway.links.tun.privileges import CAP_NET_ADMIN, effective_caps, has_net_admin
from gateway.links.tun.record import TunRecord, current_netns, process_start_time, records


def test_round_trip_and_atomic_save(tmp_path: Path) -> None:
    rec = TunRecord(interface="gw0")
    rec.changes.append({"kind": "rule", "family": 4, "iif": "eth1", "table": 7, "priority": 7})
    path = TunRecord.path_for(tmp_path, "gw0")
    rec.save(path)
    assert not list(path.parent.glob("*.tmp"))
    back = TunRecord.load(path)
    assert back == rec
    assert back.is_live()  # written by this very process


def test_a_dead_process_is_not_live_and_a_reused_pid_is_not_mistaken() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    dead = TunRecord(interface="x", pid=child.pid, started=12345)
    assert not dead.is_live()
    reused = TunRecord(interface="x", pid=os.getpid(), started=(process_start_time(os.getpid()) or 0) + 1)
    assert not reused.is_live()


def test_process_start_time_survives_odd_command_names(tmp_path: Path) -> None:
    assert process_start_time(os.getpid()) is not None
    assert process_start_time(2**22 + 7) is None


@pytest.mark.parametrize("text", ["", "{", "[]", json.dumps({"pid": 1}), json.dumps({"interface": "a", "pid": "x"})])
def test_garbage_is_not_a_record(tmp_path: Path, text: str) -> None:
    p = tmp_path / "tun" / "bad.json"
    p.parent.mkdir()
    p.write_text(text)
    with pytest.raises(ValueError):
        TunRecord.load(p)
    assert records(tmp_path) == [(p, None)]


def test_clean_stale_leaves_live_and_foreign_records_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    undone: list[str] = []
    monkeypatch.setattr(cleanup.routing, "undo", lambda rec, on_error=None: undone.append(rec.interface) or 0)
    live = TunRecord(interface="live")
    dead = TunRecord(interface="dead", started=1)
    foreign = TunRecord(interface="foreign", started=1, netns=current_netns() + 1)
    for r in (live, dead, foreign):
        r.save(TunRecord.path_for(tmp_path, r.interface))
    (tmp_path / "tun" / "junk.json").write_text("not json")

    report = cleanup.clean_stale(tmp_path)

    assert undone == ["dead"]
    assert report.cleaned == ["dead"]
    assert report.running == [("live", os.getpid())]
    assert report.elsewhere == ["foreign"]
    assert len(report.failed) == 1
    left = sorted(p.name for p in (tmp_path / "tun").iterdir())
    assert left == ["foreign.json", "live.json"]


def test_a_record_whose_undo_failed_is_kept_for_the_next_try(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(rec: TunRecord, on_error=None) -> int:  # type: ignore[no-untyped-def]
        on_error("tun: could not remove something")
        return 1

    monkeypatch.setattr(cleanup.routing, "undo", failing)
    TunRecord(interface="dead", started=1).save(TunRecord.path_for(tmp_path, "dead"))
    report = cleanup.clean_stale(tmp_path)
    assert report.cleaned == [] and report.failed == ["tun: could not remove something"]
    assert TunRecord.path_for(tmp_path, "dead").exists()


def test_capabilities_from_proc_status() -> None:
    with_cap = f"Name:\tx\nCapEff:\t{1 << CAP_NET_ADMIN:016x}\n"
    without = "Name:\tx\nCapEff:\t0000000000000000\n"
    assert effective_caps(with_cap) == 1 << CAP_NET_ADMIN
    assert has_net_admin(with_cap)
    assert not has_net_admin(without)
    assert not has_net_admin("no such line")
    assert has_net_admin("CapEff:\t000001ffffffffff\n")
