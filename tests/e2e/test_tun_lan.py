"""TUN mode as the router of the lab's LAN: a LAN client with no proxy settings is
intercepted (HTTP, HTTPS, WebSocket, UDP, DNS; v4 and v6), the gateway host's own traffic
is not, and nothing of the gateway stays in ``ip rule``/``ip route``/``ip link``/``ip addr``
after a clean stop, after ``kill -9`` + ``gateway down``, and after ``kill -9`` + the next
``gateway up``.

The gateway runs as a real ``python3 -m gateway up`` process in the lab's gateway
namespace; the clients are curl and small Python clients in the lan-client namespace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.lab import (
    GATEWAY_LAN_V4,
    GATEWAY_LAN_V6,
    LAN_CLIENT_V4,
    LAN_CLIENT_V6,
    REPO,
    SERVER_V4,
    SERVER_V6,
    Lab,
)

TABLE = "26472"

CLIENT = r"""
import asyncio, socket, sys
import dns.message, dns.query, dns.rdatatype
import websockets

server = sys.argv[1]

async def ws():
    async with websockets.connect(f"ws://{server}:8765/echo", open_timeout=10) as c:
        await c.send("tun-ws-hello")
        return await asyncio.wait_for(c.recv(), 10)

print("ws", asyncio.run(ws()))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(b"tun-udp-hello", (server, 9999))
print("udp", s.recvfrom(2048)[0].decode())
q = dns.message.make_query("www.lab.test", dns.rdatatype.A)
r = dns.query.udp(q, server, timeout=10)
print("dns", r.answer[0][0].address)
"""


def snapshot(lab: Lab) -> dict[str, str]:
    """The gateway namespace's rules, routes, links and addresses.  Taken once IPv6
    duplicate address detection has settled on the lab's links, so the kernel's own
    link-local addresses and routes do not appear between two snapshots."""
    deadline = time.monotonic() + 10
    while b"tentative" in lab.exec("gateway", "ip", "-6", "addr").stdout and time.monotonic() < deadline:
        time.sleep(0.2)
    out = {}
    for name, cmd in {
        "rule4": ["ip", "-4", "rule"],
        "rule6": ["ip", "-6", "rule"],
        "route4": ["ip", "-4", "route", "show", "table", "all"],
        "route6": ["ip", "-6", "route", "show", "table", "all"],
        "link": ["ip", "-o", "link"],
        "addr": ["ip", "-o", "addr"],
    }.items():
        out[name] = lab.exec("gateway", *cmd).stdout.decode()
    return out


class Gateway:
    def __init__(self, lab: Lab, state: Path, iface: str, *extra: str) -> None:
        self.lab = lab
        self.state = state
        self.iface = iface
        self.flows = state / "flows.gw"
        self.log = open(state / f"{iface}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = lab.popen(
            "gateway", sys.executable, "-m", "gateway", "up", "--mode", f"tun:{iface}",
            "--lan", "to-lan",
            "--set", f"ssl_verify_upstream_trusted_ca={lab.server_ca}",
            "-w", str(self.flows), "--state-dir", str(state), *extra,
            stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            rules = self.lab.exec("gateway", "ip", "rule").stdout.decode()
            link = self.lab.exec("gateway", "ip", "link", "show", self.iface, check=False)
            if f"lookup {TABLE}" in rules and link.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("gateway did not come up:\n" + self.output())

    def output(self) -> str:
        self.log.flush()
        return (self.state / f"{self.iface}.log").read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=20)
        finally:
            self.log.close()

    def kill(self) -> None:
        # ip netns exec execs the command, so this pid is the gateway itself.
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    return tmp_path


def down(lab: Lab, state: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ip", "netns", "exec", lab.ns("gateway"), sys.executable, "-m", "gateway", "down",
         "--state-dir", str(state)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )


def read_flows(path: Path) -> list:
    from gateway.io import FlowReader

    with open(path, "rb") as f:
        return list(FlowReader(f).stream())


def test_lan_client_is_intercepted_and_the_gateway_host_is_not(lab: Lab, state: Path) -> None:
    before = snapshot(lab)
    gw = Gateway(lab, state, "gwlan0")
    try:
        gw.wait_ready()
        http = lab.exec("lan-client", "curl", "-sS", "-m", "10", f"http://{SERVER_V4}/tun-http")
        assert http.returncode == 0
        http6 = lab.exec("lan-client", "curl", "-sS", "-m", "10", "-o", "/dev/null", "-w", "%{http_code}",
                         f"http://[{SERVER_V6}]/tun-http6")
        assert http6.stdout == b"404" or http6.stdout.startswith(b"2"), http6
        ca = state / "gateway-ca-cert.pem"
        https = lab.exec("lan-client", "curl", "-sS", "-m", "10", "--cacert", str(ca),
                         "--resolve", f"www.lab.test:443:{SERVER_V4}", "https://www.lab.test/tun-https",
                         "-o", "/dev/null", "-w", "%{http_code}")
        assert https.returncode == 0, https.stderr
        # The certificate came from our CA: curl trusted only that CA and succeeded.
        out = lab.exec("lan-client", sys.executable, "-c", CLIENT, SERVER_V4, timeout=60).stdout.decode()
        assert "ws tun-ws-hello" in out
        assert "udp tun-udp-hello" in out
        assert f"dns {SERVER_V4}" in out
        # The gateway host's own traffic goes straight to the server.
        own = lab.exec("gateway", "curl", "-sS", "-m", "10", f"http://{SERVER_V4}/own-traffic")
        assert own.returncode == 0
    finally:
        code = gw.stop()
    assert code == 0, gw.output()
    assert snapshot(lab) == before

    flows = read_flows(gw.flows)
    assert flows, gw.output()
    assert all(f.client_conn.tun_interface == "gwlan0" for f in flows)
    paths = {f.request.path for f in flows if f.type == "http"}
    assert {"/tun-http", "/tun-http6", "/tun-https"} <= paths
    assert "/own-traffic" not in paths
    https_flow = next(f for f in flows if f.type == "http" and f.request.path == "/tun-https")
    assert https_flow.request.scheme == "https"
    ws = [f for f in flows if f.type == "http" and f.websocket is not None]
    assert ws and any(m.content == b"tun-ws-hello" for m in ws[0].websocket.messages)
    udp = [f for f in flows if f.type == "udp"]
    assert any(m.content == b"tun-udp-hello" for f in udp for m in f.messages)
    dnsf = [f for f in flows if f.type == "dns"]
    assert any(q.name == "www.lab.test" for f in dnsf for q in f.request.questions)
    assert all(f.client_conn.peername[0] in (LAN_CLIENT_V4, LAN_CLIENT_V6) for f in flows)


ROUTER_DNS_CLIENT = r"""
import sys
import dns.message, dns.query, dns.rdatatype
for server in sys.argv[1:]:
    for name, rdtype in (("www.lab.test", dns.rdatatype.A), ("udp6.lab.test", dns.rdatatype.AAAA)):
        q = dns.message.make_query(name, rdtype)
        print("udp", server, name, dns.query.udp(q, server, timeout=10).answer[0][0].to_text())
    q = dns.message.make_query("tcp.lab.test", dns.rdatatype.A)
    print("tcp", server, "tcp.lab.test", dns.query.tcp(q, server, timeout=10).answer[0][0].to_text())
"""


def listening_on_53(lab: Lab) -> str:
    return lab.exec("gateway", "ss", "-Hln", "sport", "=", ":53").stdout.decode()


def test_dns_sent_to_the_gateway_itself_is_intercepted(lab: Lab, state: Path) -> None:
    """A LAN host's resolver is its router: queries to the gateway's own LAN addresses (UDP
    and TCP, v4 and v6) are answered by the gateway's resolver and recorded as DNS flows."""
    before = snapshot(lab)
    assert listening_on_53(lab) == ""
    gw = Gateway(lab, state, "gwdns0")
    try:
        gw.wait_ready()
        deadline = time.monotonic() + 10
        while GATEWAY_LAN_V6 not in listening_on_53(lab) and time.monotonic() < deadline:
            time.sleep(0.1)
        res = lab.exec("lan-client", sys.executable, "-c", ROUTER_DNS_CLIENT, GATEWAY_LAN_V4, GATEWAY_LAN_V6,
                       timeout=60, check=False)
        assert res.returncode == 0, res.stderr.decode() + gw.output()
        out = res.stdout.decode().splitlines()
        for server in (GATEWAY_LAN_V4, GATEWAY_LAN_V6):
            assert f"udp {server} www.lab.test {SERVER_V4}" in out
            assert f"udp {server} udp6.lab.test {SERVER_V6}" in out
            assert f"tcp {server} tcp.lab.test {SERVER_V4}" in out
    finally:
        code = gw.stop()
    assert code == 0, gw.output()
    assert listening_on_53(lab) == ""
    assert snapshot(lab) == before

    dnsf = [f for f in read_flows(gw.flows) if f.type == "dns"]
    seen = set()
    for f in dnsf:
        assert f.client_conn.tun_interface == "gwdns0"
        assert f.client_conn.peername[0] in (LAN_CLIENT_V4, LAN_CLIENT_V6)
        assert f.client_conn.sockname in ((GATEWAY_LAN_V4, 53), (GATEWAY_LAN_V6, 53))
        # answered by the gateway's resolver (the lab's resolv.conf), not by asking itself
        assert tuple(f.server_conn.address) == (SERVER_V4, 53)
        assert f.response is not None and f.response.answers
        seen.add((f.client_conn.sockname[0], f.client_conn.transport_protocol, f.request.questions[0].name))
    for server in (GATEWAY_LAN_V4, GATEWAY_LAN_V6):
        assert (server, "udp", "www.lab.test") in seen, seen
        assert (server, "udp", "udp6.lab.test") in seen, seen
        assert (server, "tcp", "tcp.lab.test") in seen, seen


def test_kill_9_then_gateway_down_leaves_nothing(lab: Lab, state: Path) -> None:
    before = snapshot(lab)
    gw = Gateway(lab, state, "gwkill0")
    gw.wait_ready()
    assert snapshot(lab) != before
    gw.kill()
    assert listening_on_53(lab) == ""  # the LAN DNS listeners died with it
    # The device died with the process; the policy rules did not.
    assert f"lookup {TABLE}" in lab.exec("gateway", "ip", "rule").stdout.decode()
    res = down(lab, state)
    assert res.returncode == 0, res.stderr
    assert "removed gwkill0" in res.stdout
    assert snapshot(lab) == before
    again = down(lab, state)
    assert again.returncode == 0 and "nothing to remove" in again.stdout


def test_kill_9_then_next_up_cleans_the_leftovers(lab: Lab, state: Path) -> None:
    before = snapshot(lab)
    first = Gateway(lab, state, "gwnext0")
    first.wait_ready()
    first.kill()
    second = Gateway(lab, state, "gwnext1")
    try:
        second.wait_ready()
        rules = lab.exec("gateway", "ip", "rule").stdout.decode()
        assert rules.count(f"lookup {TABLE}") == 1, rules
        assert "removed what an earlier run left on gwnext0" in second.output()
    finally:
        assert second.stop() == 0
    assert snapshot(lab) == before


def test_gateway_down_refuses_to_touch_a_running_gateway(lab: Lab, state: Path) -> None:
    gw = Gateway(lab, state, "gwlive0")
    try:
        gw.wait_ready()
        res = down(lab, state)
        assert "belongs to a running gateway" in res.stdout
        assert f"lookup {TABLE}" in lab.exec("gateway", "ip", "rule").stdout.decode()
    finally:
        assert gw.stop() == 0


@pytest.mark.parametrize("command", ["up", "down"])
def test_without_net_admin_one_line_says_what_is_missing(lab: Lab, state: Path, command: str) -> None:
    before = snapshot(lab)
    args = ["--mode", "tun"] if command == "up" else []
    res = subprocess.run(
        ["ip", "netns", "exec", lab.ns("gateway"), "setpriv", "--bounding-set=-net_admin",
         "--inh-caps=-net_admin", sys.executable, "-m", "gateway", command, *args,
         "--state-dir", str(state)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    assert res.returncode != 0
    lines = [line for line in res.stderr.splitlines() if "CAP_NET_ADMIN" in line]
    assert len(lines) == 1 and "root or CAP_NET_ADMIN" in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert snapshot(lab) == before
