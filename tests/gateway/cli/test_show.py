"""``gateway show`` as users run it: a subprocess reading real flow files."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gateway import http
from gateway.io import FlowWriter
from gateway.test import tflow

REPO = Path(__file__).resolve().parents[3]


def show(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``gateway show``; output decoded without newline translation (raw HTTP has CRLF)."""
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(REPO)}
    env.pop("FORCE_COLOR", None)
    r = subprocess.run(
        [sys.executable, "-m", "gateway", "show", *args],
        input=stdin, capture_output=True, timeout=60, env=env, cwd=REPO,
    )  # fmt: skip
    return subprocess.CompletedProcess(
        r.args, r.returncode, r.stdout.decode("utf-8", "surrogateescape"), r.stderr.decode("utf-8", "surrogateescape")
    )


def json_flow() -> http.HTTPFlow:
    f = tflow.tflow(resp=tflow.tresp(headers=http.Headers(content_type="application/json"),
                                     content=b'{"user": {"name": "ann", "id": 7}}'))  # fmt: skip
    f.request.method = "POST"
    f.request.url = "https://api.example.org/v1/users?page=2"
    f.request.headers["Content-Type"] = "application/x-www-form-urlencoded"
    f.request.content = b"name=ann&role=admin"
    return f


@pytest.fixture
def flows():
    return [
        tflow.tflow(resp=True),
        json_flow(),
        tflow.tflow(err=True),
        tflow.tflow(),
        tflow.twebsocketflow(close_code=1000),
        tflow.ttcpflow(),
        tflow.tudpflow(),
        tflow.tdnsflow(resp=True),
    ]


@pytest.fixture
def flowfile(tmp_path, flows) -> Path:
    path = tmp_path / "session.gwf"
    with open(path, "wb") as fo:
        w = FlowWriter(fo)
        for f in flows:
            w.add(f)
    return path


def test_lists_every_flow_one_line_each(flowfile):
    r = show(str(flowfile))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == [
        "10.0.0.2:52044 [phone] GET https://example.com/path?q=1 200 OK 7b 3.0s",
        "10.0.0.2:52044 [phone] POST https://api.example.org/v1/users?page=2 200 OK 34b 3.0s",
        "10.0.0.2:52044 [phone] GET https://example.com/path?q=1 << error",
        "10.0.0.2:52044 [phone] GET https://example.com/path?q=1",
        "10.0.0.2:52044 [phone] GET http://example.com/ws 101 Switching Protocols 0b 3.0s",
        "10.0.0.2:52044 [phone] WS http://example.com/ws 4 messages, closed 1000",
        "10.0.0.2:52044 [phone] TCP example.com:443 4 messages, 12b up, 21b down 4.0s",
        "10.0.0.2:52044 [phone] UDP example.com:443 3 messages, 12b up, 12b down 3.0s",
        "10.0.0.2:52044 [phone] DNS A dns.google -> 8.8.8.8, 8.8.4.4 NOERROR 1.0s",
    ]
    assert r.stderr == ""


@pytest.mark.parametrize(
    "expr, expected",
    [
        (["~d", "api.example.org"], ["POST https://api.example.org/v1/users?page=2"]),
        (["~tcp | ~dns"], ["TCP example.com:443", "DNS A dns.google"]),
        (["~e"], ["GET https://example.com/path?q=1 << error"]),
        (["!~http"], ["TCP example.com", "UDP example.com", "DNS A"]),
        (["~q & ~http"], ["GET https://example.com/path?q=1 << error", "GET https://example.com/path?q=1"]),
    ],
)
def test_filter_expression_selects_flows(flowfile, expr, expected):
    r = show(str(flowfile), *expr)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == len(expected)
    for line, want in zip(lines, expected, strict=True):
        assert want in line
    assert r.stderr.startswith(f"{len(expected)} of 8 flows match ")


def test_detail_levels_add_headers_and_rendered_bodies(flowfile):
    r2 = show(str(flowfile), "~d api.example", "--detail", "2")
    assert "    > Content-Type: application/x-www-form-urlencoded" in r2.stdout
    assert "    < content-type: application/json" in r2.stdout
    assert '"ann"' not in r2.stdout
    r3 = show(str(flowfile), "~d api.example", "--detail", "3")
    assert "    name: ann" in r3.stdout and "    role: admin" in r3.stdout  # form view
    assert '      "name": "ann",' in r3.stdout  # JSON view, pretty-printed
    r3hex = show(str(flowfile), "~d api.example", "-d", "3", "--view", "hex")
    assert "00000000  6e 61 6d 65 3d 61 6e 6e" in r3hex.stdout
    r0 = show(str(flowfile), "--detail", "0")
    assert r0.stdout == "" and r0.stderr.strip() == "8 flows"


def test_curl_export_gives_one_command_per_http_flow(flowfile):
    r = show(str(flowfile), "~m POST", "--curl")
    assert r.returncode == 0, r.stderr
    (command,) = r.stdout.splitlines()
    args = shlex.split(command)
    assert args[:2] == ["curl", "https://api.example.org/v1/users?page=2"]
    assert args[args.index("--data-binary") + 1] == "name=ann&role=admin"
    r = show(str(flowfile), "--curl")
    assert len(r.stdout.splitlines()) == 5
    assert "(3 non-HTTP flows have no curl form" in r.stderr


def test_har_export_to_a_file_and_to_stdout(flowfile, tmp_path):
    out = tmp_path / "out.har"
    r = show(str(flowfile), "~http", "--har", str(out))
    assert r.returncode == 0, r.stderr
    assert "wrote 5 HAR entries to" in r.stderr
    doc = json.loads(out.read_text())
    assert [e["request"]["method"] for e in doc["log"]["entries"]] == ["GET", "POST", "GET", "GET", "GET"]
    assert doc["log"]["entries"][1]["response"]["content"]["text"] == '{"user": {"name": "ann", "id": 7}}'
    r = show(str(flowfile), "--har", "-")
    assert len(json.loads(r.stdout)["log"]["entries"]) == 5


def test_raw_export(flowfile):
    r = show(str(flowfile), "~m POST", "--raw")
    assert r.stdout.startswith("POST /v1/users?page=2 HTTP/1.1\r\nHost: api.example.org")
    assert "\r\n\r\nname=ann&role=admin\r\n\r\nHTTP/1.1 200 OK\r\n" in r.stdout


def test_reads_standard_input(flowfile):
    r = show("-", "~udp", stdin=flowfile.read_bytes())
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["10.0.0.2:52044 [phone] UDP example.com:443 3 messages, 12b up, 12b down 3.0s"]


def test_truncated_file_lists_flows_before_the_damage_then_fails(flowfile, flows):
    data = flowfile.read_bytes()
    cut = flowfile.with_name("cut.gwf")
    cut.write_bytes(data[:-5])
    r = show(str(cut))
    assert r.returncode == 1
    assert len(r.stdout.splitlines()) == 8  # all but the last flow (the WS flow prints two lines)
    (line,) = r.stderr.splitlines()
    assert line.startswith(f"gateway show: error: {cut}: flow file damaged at byte ")
    assert "the file ends inside a record" in line and "7 flows read before it" in line


def test_corrupted_file_names_the_offset(flowfile):
    data = bytearray(flowfile.read_bytes())
    data[200] ^= 0xFF
    bad = flowfile.with_name("bad.gwf")
    bad.write_bytes(bytes(data))
    r = show(str(bad))
    assert r.returncode == 1
    (line,) = r.stderr.splitlines()
    assert "flow file damaged at byte 12: the record is corrupted (checksum mismatch)" in line


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"log": {"entries": []}}', "refusing to read: JSON (a HAR export?)"),
        (b"hello\n", "refusing to read: not a gateway flow file"),
        (b"\x89GWFLOW\n" + struct.pack("<I", 99), "refusing to read: flow file format version 99 (a newer gateway"),
    ],
)
def test_foreign_or_other_version_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "other"
    path.write_bytes(content)
    r = show(str(path))
    assert r.returncode == 1
    assert r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert line == f"gateway show: error: {path}: {line.split(': ', 3)[-1]}" and message in line


def test_missing_file_bad_filter_and_bad_view(tmp_path, flowfile):
    r = show(str(tmp_path / "nope.gwf"))
    assert r.returncode == 1 and r.stderr.strip() == f"gateway show: error: {tmp_path / 'nope.gwf'}: No such file or directory"
    r = show(str(flowfile), "~c", "abc")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "bad filter: ~c needs a status code" in r.stderr
    r = show(str(flowfile), "--view", "nosuch")
    assert r.returncode == 2 and "unknown content view 'nosuch'" in r.stderr
    r = show(str(flowfile), "--detail", "9")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1


def test_help_documents_the_filter_language():
    r = show("--help")
    assert r.returncode == 0
    for token in ["~d regex", "~m regex", "~c int", "~tcp", "~websocket", "--curl", "--har OUT", "--detail N"]:
        assert token in r.stdout


# --- live: gateway up --save, then gateway show ---------------------------------------


class _Echo(BaseHTTPRequestHandler):
    def _reply(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        out = json.dumps({"method": self.command, "path": self.path, "got": body.decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = _reply

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session(tmp_path: Path, save: str, requests: list[list[str]]) -> None:
    """Run `gateway up --mode regular -w SAVE`, send the curl requests through it, stop it."""
    ready = tmp_path / "ready"
    ready.unlink(missing_ok=True)
    probe = tmp_path / "probe.py"
    probe.write_text(textwrap.dedent(f"""
        def running():
            open({str(ready)!r}, "w").close()
    """))
    port = _free_port()
    env = {**os.environ, "HOME": str(tmp_path), "NO_COLOR": "1", "PYTHONPATH": str(REPO)}
    p = subprocess.Popen(
        [sys.executable, "-m", "gateway", "up", "--mode", f"regular@127.0.0.1:{port}", "--state-dir",
         str(tmp_path / "state"), "-s", str(probe), "-w", save, "--set", "flow_detail=0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    try:
        for _ in range(600):  # bounded: up to 30 s on a loaded machine
            if ready.exists() or p.poll() is not None:
                break
            time.sleep(0.05)
        assert ready.exists(), p.communicate(timeout=10)
        for args in requests:
            r = subprocess.run(["curl", "-s", "--max-time", "20", "-x", f"http://127.0.0.1:{port}", *args],
                               capture_output=True, text=True, timeout=30)  # fmt: skip
            assert r.returncode == 0, r.stderr
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_flows_saved_by_gateway_up_are_shown_and_appended(tmp_path, echo_server):
    path = tmp_path / "live.gwf"
    base = f"http://127.0.0.1:{echo_server}"
    _session(tmp_path, str(path), [[f"{base}/first?x=1"], ["--data-binary", '{"n": 1}', "-H",
                                                            "Content-Type: application/json", f"{base}/second"]])  # fmt: skip
    r = show(str(path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert f" GET {base}/first?x=1 200 OK " in lines[0]
    assert f" POST {base}/second 200 OK " in lines[1]

    _session(tmp_path, f"+{path}", [[f"{base}/third"]])
    r = show(str(path), "~u third | ~m POST", "--har", "-")
    entries = json.loads(r.stdout)["log"]["entries"]
    assert [e["request"]["url"] for e in entries] == [f"{base}/second", f"{base}/third"]
    assert json.loads(entries[0]["response"]["content"]["text"]) == {"method": "POST", "path": "/second",
                                                                     "got": '{"n": 1}'}  # fmt: skip
    assert entries[0]["request"]["postData"]["text"] == '{"n": 1}'
    assert len(show(str(path)).stdout.splitlines()) == 3


def test_a_flow_with_a_response_and_an_error_is_one_line(tmp_path):
    """A download cut off after its response head (the client went away) was listed twice:
    once for its response and once for its error."""
    f = tflow.tflow(resp=True, err=tflow.terr("client disconnected: connection reset"))
    path = tmp_path / "cut.gwf"
    with open(path, "wb") as fo:
        FlowWriter(fo).add(f)
    r = show(str(path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "10.0.0.2:52044 [phone] GET https://example.com/path?q=1 200 OK 7b 3.0s"
        " << client disconnected: connection reset",
    ]


def test_raw_export_says_on_stderr_which_bodies_were_not_recorded(tmp_path):
    """--raw of a streamed download printed its head with Content-Length 50m and no body,
    nothing saying the body was never kept."""
    f = tflow.tflow(resp=True)
    f.response.headers["content-length"] = str(50 << 20)
    f.response.raw_content = None
    path = tmp_path / "streamed.gwf"
    with open(path, "wb") as fo:
        FlowWriter(fo).add(f)
    r = show(str(path), "--raw")
    assert r.returncode == 0, r.stderr
    assert "content-length: 52428800" in r.stdout.lower()
    assert "(1 flow had a body streamed through unrecorded: its export has no body)" in r.stderr


def test_a_websocket_cut_off_shows_its_error_on_the_websocket_line_only(tmp_path):
    """As live: the upgrade's line (printed when the 101 came) has no error; the WebSocket's
    end line carries it."""
    from gateway.flow import Error

    f = tflow.twebsocketflow()
    f.error = Error("gateway stopped before this flow finished")
    path = tmp_path / "ws.gwf"
    with open(path, "wb") as fo:
        FlowWriter(fo).add(f)
    r = show(str(path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2, r.stdout
    assert "101 Switching Protocols" in lines[0] and "<<" not in lines[0]
    assert lines[1].startswith("10.0.0.2:52044 [phone] WS ") and lines[1].endswith("<< gateway stopped before this flow finished")
