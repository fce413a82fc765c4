"""modify_body's warning about streamed bodies, as `gateway up --set modify_body=...` shows it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time


def test_stream_warning_is_printed_once_at_startup(tmp_path):
    """It was printed twice: configure runs once when the option is set and again when the
    gateway starts."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "up", "--mode", "regular@127.0.0.1:0", "--state-dir", str(tmp_path),
         "--set", "modify_body=/~s/a/b"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        deadline = time.monotonic() + 30
        while not any("listening" in line for line in seen):
            assert time.monotonic() < deadline and proc.poll() is None, seen
            seen.append(proc.stdout.readline())
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    text = "".join(seen) + rest
    assert text.count("modify_body is not applied to bodies larger than stream_large_bodies") == 1, text
