"""The default addon chain of `gateway up`."""

from __future__ import annotations

import pytest

import gateway.addons as addons_pkg
from gateway.addons import DEFAULT_ADDONS, default_addons
from gateway.addons.dumper import Dumper
from gateway.addons.script import ScriptLoader
from gateway.test import taddons


def test_default_addons_in_declared_order_and_load_together():
    found = default_addons()
    names = [(type(a).__module__, type(a).__name__) for a in found]
    assert names == [entry for entry in DEFAULT_ADDONS if entry in names]
    assert any(isinstance(a, ScriptLoader) for a in found)
    assert isinstance(found[-1], Dumper)  # output sees the final state of each flow
    assert names.index(("gateway.addons.script", "ScriptLoader")) < len(names) - 1
    with taddons.context(*found) as tctx:
        for a in found:
            assert a in tctx.master.addons


def test_modules_not_written_yet_are_skipped(monkeypatch):
    monkeypatch.setattr(addons_pkg, "DEFAULT_ADDONS", [("gateway.addons.not_written_yet", "Nothing"),
                                                       ("gateway.addons.dumper", "Dumper")])
    assert [type(a) for a in default_addons()] == [Dumper]


def test_module_without_its_class_is_an_error(monkeypatch):
    monkeypatch.setattr(addons_pkg, "DEFAULT_ADDONS", [("gateway.addons.dumper", "NoSuchClass")])
    with pytest.raises(ImportError, match="NoSuchClass"):
        default_addons()
