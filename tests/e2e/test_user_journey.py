"""A person's session with `gateway up`, end to end, as they would run it.

The gateway runs as ``python3 -m gateway up`` in the lab's gateway namespace with the
shipped example addons, ``-w flows.gw``, and the endpoint set the way a user fixes a
config that named a host the phone cannot resolve.  The phone is Debian's wireguard-go
configured from the file `gateway up` wrote; it fetches the CA from the onboarding page
through the tunnel, browses over HTTP/1.1 and HTTP/2 with it, abandons a download half
way, and is still downloading when the person presses Ctrl-C.  Afterwards the person
reads the flow file with `gateway show` and exports it.  Each step has its own timeout.

Bugs this found (each has a unit test beside the fix too): `-s examples/*.py` refused the
second file; a second `gateway up` did not say which port was busy; `gateway show`
listed an abandoned download twice; a download cut off by Ctrl-C was saved as complete
and had no line in the terminal.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.lab import GATEWAY_PHONE_V4, REPO, SERVER_V4, Lab

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("wireguard-go") is None or shutil.which("wg") is None,
                       reason="needs wireguard-go and wg"),
]

BIG = 30 * 1024 * 1024
ENV = dict(os.environ, PYTHONPATH=str(REPO), NO_COLOR="1")


def gateway_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=str(REPO), env=ENV)


class Session:
    """One `gateway up` run and the phone attached to it."""

    def __init__(self, lab: Lab, home: Path) -> None:
        self.lab = lab
        self.home = home
        self.state = home / "state"
        self.flows = home / "flows.gw"
        self.log = home / "gateway.log"
        self.proc: subprocess.Popen | None = None
        self.phone_is_up = False

    def start(self) -> None:
        examples = REPO / "examples"
        args = [
            sys.executable, "-m", "gateway", "up", "--state-dir", str(self.state), "-w", str(self.flows),
            "-s", str(examples / "add_header.py"), str(examples / "block_host.py"),
            "--set", "block_host=blocked.lab.test",
            "--set", f"wireguard_endpoint={GATEWAY_PHONE_V4}",
            "--set", f"ssl_verify_upstream_trusted_ca={self.lab.server_ca}",
        ]
        self._logf = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = self.lab.popen("gateway", *args, stdout=self._logf, stderr=subprocess.STDOUT,
                                   cwd=str(REPO), env=ENV)
        conf = self.state / "peers" / "phone.conf"
        deadline = time.monotonic() + 30
        while not (conf.exists() and b"listening" in self.log.read_bytes()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gateway did not start:\n{self.text()}")
            time.sleep(0.1)
        self.lab.phone_up(conf, "phone")
        self.phone_is_up = True

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def interrupt(self, timeout: float = 20) -> int:
        """Ctrl-C, and the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.phone_is_up:
            self.lab.phone_down("phone")
            self.phone_is_up = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if not self._logf.closed:
            self._logf.close()


@pytest.fixture(scope="module")
def session(lab: Lab, tmp_path_factory: pytest.TempPathFactory):
    s = Session(lab, tmp_path_factory.mktemp("journey"))
    big = lab.dir / "www" / "journey-30m.bin"
    big.write_bytes(os.urandom(BIG))
    try:
        s.start()
        yield s
    finally:
        s.stop()
        big.unlink(missing_ok=True)
        print(s.text()[-4000:])


def phone(lab: Lab, *cmd: str, timeout: float = 30) -> str:
    r = lab.exec("phone", *cmd, check=False, timeout=timeout)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}): {r.stderr.decode(errors='replace')}"
    return r.stdout.decode(errors="replace")


def curl(lab: Lab, *args: str) -> str:
    return phone(lab, "curl", "-sS", "--max-time", "20", *args)


def test_browsing_from_the_phone(lab: Lab, session: Session) -> None:
    # The onboarding page, through the tunnel, by the name the in-tunnel DNS answers.
    assert "Trust the gateway" in curl(lab, "http://gateway.internal/")
    ca = session.home / "ca-from-the-phone.pem"
    curl(lab, "-o", str(ca), "http://gateway.internal/cert/pem")
    assert ca.read_text().strip() == (session.state / "gateway-ca-cert.pem").read_text().strip()
    # HTTPS with that CA, over HTTP/1.1 and HTTP/2; the example addon's header arrives.
    out = curl(lab, "-i", "--http1.1", "--cacert", str(ca), "https://www.lab.test/")
    assert out.startswith("HTTP/1.1 200") and "x-gateway: seen" in out.lower()
    out = curl(lab, "-i", "--http2", "--cacert", str(ca), "https://www.lab.test/")
    assert out.startswith("HTTP/2 200") and "x-gateway: seen" in out.lower()
    # The second script of the same -s flag is loaded too.
    assert curl(lab, "-o", "/dev/null", "-w", "%{http_code}", "http://blocked.lab.test/") == "403"
    # A download the phone abandons after 100 kB.
    out = phone(lab, "sh", "-c", "curl -sS --max-time 20 http://www.lab.test/journey-30m.bin?abandoned"
                " | head -c 100000 | wc -c")
    assert out.split() == ["100000"]


def test_a_second_gateway_up_names_the_busy_port(lab: Lab, session: Session) -> None:
    r = lab.exec("gateway", sys.executable, "-m", "gateway", "up", "--state-dir", str(session.home / "second"),
                 "--set", f"wireguard_endpoint={GATEWAY_PHONE_V4}", check=False, timeout=30)
    text = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 1, text
    busy = [line for line in text.splitlines() if "in use" in line]
    assert len(busy) == 1 and "UDP port 51820" in busy[0], text
    assert "Traceback" not in text


CONCURRENT_SCRIPT = r"""
import socket, sys, threading
server = sys.argv[1]
res = {}
def go(i):
    port = 80 if i % 2 == 0 else 5001
    try:
        s = socket.create_connection((server, port), timeout=10)
        s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n" if port == 80 else b"GET 10\n")
        data = b""
        while len(data) < 64 and (d := s.recv(4096)):
            data += d
        res[i] = (port, data)
    except OSError as e:
        res[i] = (port, repr(e).encode())
wrong = 0
for _ in range(5):
    res.clear()
    threads = [threading.Thread(target=go, args=(i,)) for i in range(20)]
    [t.start() for t in threads]
    [t.join(20) for t in threads]
    wrong += sum(1 for port, data in res.values() if (port == 80) != data.startswith(b"HTTP/"))
    if wrong:
        break
print(wrong)
"""


def test_connections_opened_together_reach_the_server_each_chose(lab: Lab, session: Session) -> None:
    """Found using the gateway: five parallel downloads were listed with one client port,
    and raw TCP to the bulk server (5001) opened beside HTTP (80) got nginx's answer."""
    out = phone(lab, sys.executable, "-c", CONCURRENT_SCRIPT, SERVER_V4, timeout=150)
    assert out.split() == ["0"], "connections reached another server than the one they were opened to"


def test_ctrl_c_during_a_download_then_gateway_show(lab: Lab, session: Session) -> None:
    """Ctrl-C while the phone downloads: a clean exit, and the flow file then says which
    download was abandoned and which one the shutdown cut off, each flow listed once."""
    partial = session.home / "partial.bin"
    download = lab.popen("phone", "curl", "-sS", "--max-time", "60", "--limit-rate", "1M", "-o", str(partial),
                         "http://www.lab.test/journey-30m.bin?cut-by-ctrl-c",
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (partial.exists() and partial.stat().st_size > 0):
            assert time.monotonic() < deadline and download.poll() is None, "the download did not start"
            time.sleep(0.1)
        code = session.interrupt()
    finally:
        if download.poll() is None:
            download.kill()
        download.wait(10)
    text = session.text()
    assert code == 0, text
    assert "Traceback" not in text
    assert partial.stat().st_size < BIG  # it really was cut off
    # The terminal showed the download that the Ctrl-C cut off (it printed nothing for it).
    live = [line for line in text.splitlines() if "?cut-by-ctrl-c" in line]
    assert len(live) == 1 and live[0].endswith("<< gateway stopped before this flow finished"), text

    r = gateway_cli("show", str(session.flows), "~u journey-30m")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    abandoned = [line for line in lines if "?abandoned" in line]
    cut = [line for line in lines if "?cut-by-ctrl-c" in line]
    assert len(abandoned) == 1 and len(cut) == 1, r.stdout
    assert "200 OK" in abandoned[0] and "announced (streamed)" in abandoned[0] and "<< client" in abandoned[0]
    assert cut[0].endswith("<< gateway stopped before this flow finished"), cut[0]

    # Exports of what the phone did: curl commands and a HAR file.
    r = gateway_cli("show", str(session.flows), "~d www.lab.test & ~c 200 & ~u ^https:", "--curl")
    assert r.returncode == 0, r.stderr
    commands = [re.sub(r"curl/[0-9.]+", "curl/V", line) for line in r.stdout.splitlines()]
    assert commands == ["curl https://www.lab.test/ -H 'User-Agent: curl/V' -H 'Accept: */*'",
                        "curl --http2 https://www.lab.test/ -H 'user-agent: curl/V' -H 'accept: */*'"], r.stdout
    har_path = session.home / "session.har"
    r = gateway_cli("show", str(session.flows), "~u journey-30m", "--har", str(har_path))
    assert r.returncode == 0, r.stderr
    entries = json.loads(har_path.read_text())["log"]["entries"]
    assert [e["response"]["_error"] for e in entries] == [
        "client disconnected: netstack: connection reset",
        "gateway stopped before this flow finished",
    ], entries
    assert [e["response"]["content"]["size"] for e in entries] == [BIG, BIG]



def test_the_failed_second_gateway_up_left_nothing_behind(lab: Lab, session: Session) -> None:
    """The second `gateway up` (busy port, new state dir) created a CA and WireGuard keys
    there before failing: a run that cannot listen writes nothing."""
    second = session.home / "second"
    assert not second.exists() or sorted(p.name for p in second.rglob("*")) == []


@pytest.fixture
def fresh_session(lab: Lab, session: Session, tmp_path_factory: pytest.TempPathFactory):
    """A second `gateway up` with a new state dir, after the first one was stopped."""
    session.stop()
    s = Session(lab, tmp_path_factory.mktemp("journey-again"))
    try:
        s.start()
        yield s
    finally:
        s.stop()
        print(s.text()[-4000:])


UDP_PROBE = r"""
import socket, sys
for port in (9999, 9998):  # the lab's UDP echo, then a closed port
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.connect((sys.argv[1], port))
    s.send(b"probe")
    try:
        print(port, "echo" if s.recv(100) == b"probe" else "other")
    except ConnectionRefusedError:
        print(port, "refused")
    except OSError as e:
        print(port, type(e).__name__)
    s.close()
"""


def test_the_gateway_own_address_and_a_closed_udp_port(lab: Lab, fresh_session: Session) -> None:
    """http://10.0.0.1/ (the gateway's own tunnel address, where its DNS answers) got a 502
    instead of the onboarding page; UDP to a closed port left the phone waiting for a
    timeout; every run counted the phone's IPv6 router solicitations as spoofing drops."""
    assert "Trust the gateway" in curl(lab, "http://10.0.0.1/")
    r = lab.exec("phone", "curl", "-sS", "--max-time", "10", "http://10.0.0.1:8080/", check=False, timeout=30)
    assert r.returncode == 7, r.stderr  # curl: could not connect (refused), not a timeout (28)
    out = phone(lab, sys.executable, "-c", UDP_PROBE, SERVER_V4, timeout=30)
    assert out.splitlines() == ["9999 echo", "9998 refused"], out
    assert fresh_session.interrupt() == 0
    counters = [line for line in fresh_session.text().splitlines() if "wireguard counters" in line]
    assert counters and "disallowed_source" not in counters[0], fresh_session.text()
