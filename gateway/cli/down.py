"""``gateway down``: remove what a TUN run left in the kernel after it was killed.

A clean stop (Ctrl-C, SIGTERM) removes the TUN device, its addresses, routes and rules
itself.  After ``kill -9`` or a crash the device is gone with the process, but policy
rules stay; every run recorded its changes in ``<state dir>/tun/`` before making them, and
this command replays those records backwards.  Runs that are still alive are left alone.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "down",
        help="remove TUN devices, routes and rules that a killed `gateway up` left behind",
        description=(
            "Remove what a TUN-mode run that did not stop cleanly (kill -9, crash) left in this "
            "network namespace: its device, addresses, routes and policy rules, as recorded in "
            "the state directory. Runs still alive are left alone."
        ),
    )
    p.add_argument("--state-dir", metavar="DIR", help="state directory (default: $GATEWAY_STATE_DIR or ~/.gateway)")
    return p


def run(args: argparse.Namespace) -> int:
    from gateway.links.tun.cleanup import clean_stale
    from gateway.links.tun.privileges import MISSING, has_net_admin
    from gateway.links.tun.record import records
    from gateway.options import DEFAULT_STATE_DIR

    if not has_net_admin():
        print(f"gateway down: error: {MISSING}", file=sys.stderr)
        return 1
    state_dir = args.state_dir or DEFAULT_STATE_DIR
    if not records(state_dir):
        print(f"gateway down: nothing to remove (no TUN records in {state_dir})")
        return 0
    report = clean_stale(state_dir)
    for name in report.cleaned:
        print(f"gateway down: removed {name} and its addresses, routes and rules")
    for name, pid in report.running:
        print(f"gateway down: {name} belongs to a running gateway (pid {pid}): stop it instead")
    for name in report.elsewhere:
        print(f"gateway down: {name} was set up in another network namespace: run gateway down there")
    for message in report.failed:
        print(f"gateway down: {message}", file=sys.stderr)
    return 1 if report.failed else 0


__all__ = ["add_parser", "run"]
