"""`gateway up` end to end on loopback: a real HTTP server, curl through the proxy, the
example script changing the response, and the dumper's line on stdout."""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b"hello from the server\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_up_proxies_runs_script_and_prints_flow_line(server, tmp_path):
    ready = tmp_path / "ready"
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent(f"""
        def running():
            open({str(ready)!r}, "w").close()
    """))
    port = free_port()
    env = {**os.environ, "HOME": str(tmp_path), "NO_COLOR": "1"}
    p = subprocess.Popen(
        [sys.executable, "-m", "gateway", "up", "--mode", f"regular@127.0.0.1:{port}", "--state-dir",
         str(tmp_path / "state"), "-s", str(EXAMPLES / "add_header.py"), "-s", str(probe)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        for _ in range(600):  # bounded: up to 30 s on a loaded machine
            if ready.exists() or p.poll() is not None:
                break
            time.sleep(0.05)
        assert ready.exists(), p.communicate(timeout=10)
        r = subprocess.run(
            ["curl", "-s", "-D", "-", "--max-time", "20", "-x", f"http://127.0.0.1:{port}",
             f"http://127.0.0.1:{server}/path?x=1"],
            capture_output=True, text=True, timeout=30,
        )
        assert r.returncode == 0, r.stderr
        assert "x-gateway: seen" in r.stdout.lower()
        assert r.stdout.endswith("hello from the server\n")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    lines = out.splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith("127.0.0.1:")
    assert f" GET http://127.0.0.1:{server}/path?x=1 200 OK 22b " in lines[0]
    assert "listening at" in err and "Traceback" not in err


def test_up_on_a_busy_port_says_so_in_one_line_and_exits_1(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "HOME": str(tmp_path), "NO_COLOR": "1"}
        r = subprocess.run(
            [sys.executable, "-m", "gateway", "up", "--mode", f"regular@127.0.0.1:{port}", "--state-dir",
             str(tmp_path / "state")],
            capture_output=True, text=True, timeout=60, env=env,
        )
    assert r.returncode == 1
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    assert str(port) in errors[0] or "in use" in errors[0]
    assert "Traceback" not in r.stderr
