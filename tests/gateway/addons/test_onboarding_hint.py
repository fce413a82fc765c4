"""`gateway up` tells where devices get the CA: without it a person who scanned the QR
code sees certificate errors for every HTTPS site and no hint of the onboarding page."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

HINT = "install the CA on each device from http://gateway.internal/"


def startup_output(tmp_path, *extra: str, until: str = "listening") -> str:
    """What `gateway up` printed up to the line containing ``until`` (then Ctrl-C): the hint
    is logged after the listeners open, so stopping at "listening" could cut it off."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "up", "--mode", "regular@127.0.0.1:0", "--state-dir", str(tmp_path),
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        deadline = time.monotonic() + 30
        while not any(until in line for line in seen):
            assert time.monotonic() < deadline and proc.poll() is None, seen
            seen.append(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    return "".join(seen) + rest


def test_startup_names_the_onboarding_page_once(tmp_path):
    text = startup_output(tmp_path, until=HINT)
    assert text.count(HINT) == 1, text
    lines = text.splitlines()
    assert next(i for i, line in enumerate(lines) if HINT in line) > next(
        i for i, line in enumerate(lines) if "listening" in line)


def test_no_hint_without_the_page(tmp_path):
    assert "gateway.internal" not in startup_output(tmp_path, "--set", "onboarding=false")
