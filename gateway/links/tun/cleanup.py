"""Removing what earlier TUN runs left behind (``gateway down``, and the start of ``gateway up``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.links.tun import routing
from gateway.links.tun.record import current_netns, records, remove

log = logging.getLogger("gateway.links.tun")


@dataclass
class CleanupReport:
    cleaned: list[str] = field(default_factory=list)
    """Interfaces whose leftovers were removed."""
    running: list[tuple[str, int]] = field(default_factory=list)
    """(interface, pid) of runs still alive: left alone."""
    elsewhere: list[str] = field(default_factory=list)
    """Records of another network namespace: left alone (run ``gateway down`` there)."""
    failed: list[str] = field(default_factory=list)
    """Messages about changes that could not be removed."""


def clean_stale(state_dir: str | os.PathLike[str], on_error: Callable[[str], None] | None = None) -> CleanupReport:
    """Undo every record whose run is no longer alive, in this network namespace."""
    report = CleanupReport()
    here = current_netns()
    for path, record in records(state_dir):
        if record is None:
            report.failed.append(f"{path}: unreadable record, removed")
            remove(path)
            continue
        if record.is_live():
            report.running.append((record.interface, record.pid))
            continue
        if record.netns and here and record.netns != here:
            report.elsewhere.append(record.interface)
            continue
        errors: list[str] = []
        bad = routing.undo(record, on_error=errors.append)
        report.failed.extend(errors)
        if bad == 0:
            remove(path)
            report.cleaned.append(record.interface)
    return report
