"""The Proxyserver addon inside a real Master: listeners start on running, stop on done,
restart when the mode option changes, and a busy port is one error line and exit 1."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

from gateway.addons.proxyserver import Proxyserver
from gateway.master import Master
from gateway.options import Options


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def connectable(port: int) -> bool:
    try:
        _, w = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    w.close()
    return True


async def test_running_starts_and_done_stops(tmp_path):
    p1, p2 = free_port(), free_port()
    opts = Options(mode=[f"regular@127.0.0.1:{p1}", f"socks5@127.0.0.1:{p2}"], state_dir=str(tmp_path))
    master = Master(opts)
    ps = Proxyserver()
    master.addons.add(ps)
    task = asyncio.create_task(master.run())
    for _ in range(100):
        if len(ps.servers) == 2:
            break
        await asyncio.sleep(0.02)
    assert await connectable(p1) and await connectable(p2)
    assert (tmp_path / "gateway-ca.pem").exists()
    p3 = free_port()
    opts.update(mode=[f"regular@127.0.0.1:{p3}"])
    for _ in range(100):
        if list(ps.servers) == [f"regular@127.0.0.1:{p3}"]:
            break
        await asyncio.sleep(0.02)
    assert await connectable(p3)
    assert not await connectable(p1)
    master.shutdown()
    assert await asyncio.wait_for(task, 10) == 0
    assert not await connectable(p3)


def test_busy_port_is_one_line_and_exit_1(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "gateway", "up", "--mode", f"regular@127.0.0.1:{port}", "--state-dir", str(tmp_path)],
            capture_output=True, timeout=60,
        )
    assert r.returncode == 1
    err_lines = [ln for ln in (r.stdout + r.stderr).decode().splitlines() if "cannot listen" in ln]
    assert len(err_lines) == 1, (r.stdout + r.stderr).decode()
    assert str(port) in err_lines[0] and "in use" in err_lines[0]
    assert "Traceback" not in (r.stdout + r.stderr).decode()


def test_bad_mode_is_refused(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "gateway", "up", "--mode", "nonsense", "--state-dir", str(tmp_path)],
        capture_output=True, timeout=60,
    )
    assert r.returncode != 0
    assert "Traceback" not in r.stderr.decode()
    assert "nonsense" in r.stderr.decode()


def test_busy_default_port_names_the_port_and_transport(tmp_path):
    """`gateway up` twice: the mode spec has no port ('wireguard', or 'regular' with -p), and
    the one error line must still say which port is taken."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "gateway", "up", "--mode", "regular", "--listen-host", "127.0.0.1",
             "-p", str(port), "--state-dir", str(tmp_path)],
            capture_output=True, timeout=60,
        )
    text = (r.stdout + r.stderr).decode()
    assert r.returncode == 1
    err_lines = [ln for ln in text.splitlines() if "cannot listen" in ln]
    assert len(err_lines) == 1, text
    assert f"TCP port {port}" in err_lines[0] and "in use" in err_lines[0]


def test_busy_port_with_a_new_state_dir_writes_nothing(tmp_path):
    """A second `gateway up` with a new state dir created a CA and WireGuard keys there
    before failing on the busy port: a run that cannot listen leaves no state behind."""
    state_dir = tmp_path / "new-state"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "gateway", "up", "--mode", f"wireguard@127.0.0.1:{port}",
             "--state-dir", str(state_dir)],
            capture_output=True, timeout=60,
        )
    text = (r.stdout + r.stderr).decode()
    assert r.returncode == 1, text
    assert "cannot listen" in text and "created a new CA" not in text
    left = sorted(str(p.relative_to(state_dir)) for p in state_dir.rglob("*")) if state_dir.exists() else []
    assert left == [], text
