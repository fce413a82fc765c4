"""`gateway up` end to end: Debian's wireguard-go as the phone, our gateway as a process.

The gateway runs as ``python3 -m gateway up`` inside the lab's gateway namespace, with a
fresh state directory, a flow file, a script addon and shortened rekey timers (a session is
renewed every few thousand messages, so every test here, and the 100 MB download in
particular, crosses rekeys).  The phone is configured from the file `gateway up` wrote.
Servers (nginx, DNS, UDP echo, WebSocket echo, TCP bulk) live in the lab's servers
namespace; the gateway reaches them over its own sockets.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.lab import GATEWAY_PHONE2_V4, GATEWAY_PHONE_V4, REPO, SERVER_V4, SERVER_V6, Lab

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("wireguard-go") is None or shutil.which("wg") is None,
                       reason="needs wireguard-go and wg"),
]

REKEY_AFTER_MESSAGES = 20_000
BIG = 100 * 1024 * 1024
ADDON = '''
def response(flow):
    flow.response.headers["X-Gateway-Addon"] = "seen " + (flow.client_conn.wireguard_peer or "?")

def udp_message(flow):
    # UDP flows reach the flow file only when they go idle (a minute): report them now.
    m = flow.messages[-1]
    way = "from client" if m.from_client else "from server"
    print(f"udp-message {way} to {flow.server_conn.address[0]}: {m.content!r}", flush=True)

def request(flow):
    # The test reads the running gateway's counters here (the phone asks with this Host).
    if flow.request.pretty_host != "gateway-counters.test":
        return
    import json
    from gateway import ctx
    from gateway.http import Response
    out = {}
    for server in ctx.master.addons.get("proxyserver").servers.values():
        if getattr(server, "device", None) is not None:
            out = {"wireguard": dict(server.device.counters), "netstack": dict(server.bridge.counters)}
    flow.response = Response.make(200, json.dumps(out), {"Content-Type": "application/json"})
'''


class Gateway:
    def __init__(self, lab: Lab, state: Path) -> None:
        self.lab = lab
        self.state = state
        self.flows = state / "flows.gw"
        self.log = state / "gateway.log"
        self.proc: subprocess.Popen | None = None
        self.phones: list[str] = []

    def start(self) -> None:
        addon = self.state / "addon.py"
        addon.write_text(ADDON)
        args = [
            sys.executable, "-m", "gateway", "up", "--state-dir", str(self.state / "st"),
            "-w", str(self.flows), "-s", str(addon), "--dns-server", SERVER_V4,
            "--set", f"wireguard_endpoint={GATEWAY_PHONE_V4}",
            "--set", f"ssl_verify_upstream_trusted_ca={self.lab.server_ca}",
            "--set", f"wireguard_rekey_after_messages={REKEY_AFTER_MESSAGES}",
        ]
        self.logf = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = self.lab.popen("gateway", *args, stdout=self.logf, stderr=subprocess.STDOUT,
                                   cwd=str(REPO), env=dict(os.environ, PYTHONPATH=str(REPO)))
        conf = self.state / "st" / "peers" / "phone.conf"
        deadline = time.monotonic() + 30
        while not (conf.exists() and b"listening" in self.log.read_bytes()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gateway did not start:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.1)
        self.phone_up(conf, "phone")

    def phone_up(self, conf: Path, node: str) -> None:
        self.lab.phone_up(conf, node)
        self.phones.append(node)

    @property
    def ca(self) -> Path:
        return self.state / "st" / "gateway-ca-cert.pem"

    def stop(self) -> str:
        for node in self.phones:
            self.lab.phone_down(node)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.logf.close()
        return self.log.read_text(errors="replace")

    def read_flows(self) -> list:
        """Flows written so far (a record being written at this moment is left for later)."""
        from gateway.io import FlowReader, FlowReadException

        out = []
        with open(self.flows, "rb") as f:
            try:
                for flow in FlowReader(f).stream():
                    out.append(flow)
            except FlowReadException:
                pass
        return out


@pytest.fixture(scope="module")
def gw(lab: Lab, tmp_path_factory: pytest.TempPathFactory):
    gateway = Gateway(lab, tmp_path_factory.mktemp("gwup"))
    try:
        gateway.start()
        yield gateway
    finally:
        log = gateway.stop()
        print(log[-3000:])


def phone(lab: Lab, *cmd: str, node: str = "phone", timeout: float = 60) -> str:
    r = lab.exec(node, *cmd, check=False, timeout=timeout)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}): {r.stderr.decode(errors='replace')}"
    return r.stdout.decode(errors="replace")


def curl(lab: Lab, *args: str, node: str = "phone") -> str:
    return phone(lab, "curl", "-sS", "--max-time", "30", *args, node=node)


def wait_for_flows(gw: Gateway, predicate, timeout: float = 10.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        flows = gw.read_flows()
        if predicate(flows) or time.monotonic() > deadline:
            return flows
        time.sleep(0.2)


def test_http_get_through_the_tunnel(lab: Lab, gw: Gateway) -> None:
    assert curl(lab, f"http://{SERVER_V4}/").startswith("hello from the gateway lab")


def test_names_resolve_through_the_in_tunnel_dns(lab: Lab, gw: Gateway) -> None:
    conf = (gw.state / "st" / "peers" / "phone.conf").read_text()
    dns_line = next(line for line in conf.splitlines() if line.startswith("DNS"))
    resolver = dns_line.split("=", 1)[1].split(",")[0].strip()
    assert resolver.startswith("10.0.0.")  # the gateway's own tunnel address, nothing real
    script = (
        "import dns.resolver, sys\n"
        "r = dns.resolver.Resolver(configure=False); r.nameservers = [sys.argv[1]]\n"
        "print(r.resolve('www.lab.test', 'A')[0].address)\n"
        "print(r.resolve('www.lab.test', 'A', tcp=True)[0].address)\n"
    )
    out = phone(lab, sys.executable, "-c", script, resolver).split()
    assert out == [SERVER_V4, SERVER_V4]
    assert curl(lab, "http://www.lab.test/").startswith("hello from the gateway lab")
    def dns_flows(flows: list, transport: str) -> list:
        return [f for f in flows if type(f).__name__ == "DNSFlow" and f.client_conn.wireguard_peer == "phone"
                and f.client_conn.transport_protocol == transport
                and f.request.question.name == "www.lab.test"]

    flows = wait_for_flows(gw, lambda fs: dns_flows(fs, "udp") and dns_flows(fs, "tcp"))
    assert dns_flows(flows, "udp") and dns_flows(flows, "tcp")  # the in-tunnel resolver over UDP and TCP
    assert dns_flows(flows, "tcp")[0].server_conn.address[0] == SERVER_V4  # --dns-server, asked over TCP


def _resolver(gw: Gateway) -> str:
    conf = (gw.state / "st" / "peers" / "phone.conf").read_text()
    dns_line = next(line for line in conf.splitlines() if line.startswith("DNS"))
    return dns_line.split("=", 1)[1].split(",")[0].strip()


def test_resolved_names_label_later_flows_by_ip(lab: Lab, gw: Gateway) -> None:
    """The phone resolves a name through the in-tunnel DNS, then connects to the IP with no
    name of its own (raw TCP: no Host, no SNI; UDP): the flows show the name it asked for."""
    script = (
        "import dns.resolver, socket, sys\n"
        "r = dns.resolver.Resolver(configure=False); r.nameservers = [sys.argv[1]]\n"
        "ip = r.resolve('label-probe.lab.test', 'A')[0].address; print(ip)\n"
        "s = socket.create_connection((ip, 5001), timeout=20); s.sendall(b'GET 1000\\n'); n = 0\n"
        "while (d := s.recv(65536)): n += len(d)\n"
        "print(n)\n"
        "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)\n"
        "u.sendto(b'label-probe', (ip, 9999)); print(u.recvfrom(100)[0].decode())\n"
    )
    assert phone(lab, sys.executable, "-c", script, _resolver(gw)).split() == [SERVER_V4, "1000", "label-probe"]

    def probes(flows: list) -> list:
        return [f for f in flows if type(f).__name__ == "TCPFlow"
                and any(m.content.startswith(b"GET 1000") for m in f.messages)]

    tcp = probes(wait_for_flows(gw, probes))
    assert tcp
    assert tcp[-1].server_conn.address[0] == "label-probe.lab.test"
    assert tcp[-1].server_conn.peername[0] == SERVER_V4  # connected to the IP the phone chose
    assert tcp[-1].client_conn.wireguard_peer == "phone"
    assert "udp-message from client to label-probe.lab.test: b'label-probe'" in gw.log.read_text(errors="replace")


def _counters(lab: Lab) -> dict:
    import json

    return json.loads(curl(lab, "-H", "Host: gateway-counters.test", f"http://{SERVER_V4}/"))


REPLAY_SCRIPT = r"""
import socket, subprocess, sys, time
endpoint = sys.argv[1]
route = subprocess.run(["ip", "-o", "-4", "route", "get", endpoint], capture_output=True, text=True).stdout.split()
iface = route[route.index("dev") + 1]
sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL: sees what we send
sniff.bind((iface, 0))
sniff.settimeout(5)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
u.sendto(b"replay-probe", (sys.argv[2], 9999))
frame = None
deadline = time.monotonic() + 5
while frame is None and time.monotonic() < deadline:
    data, meta = sniff.recvfrom(65535)
    ip = data[14:]
    if meta[2] != socket.PACKET_OUTGOING or data[12:14] != b"\x08\x00" or ip[9] != 17:
        continue
    ihl = (ip[0] & 15) * 4
    dport = int.from_bytes(ip[ihl + 2:ihl + 4], "big")
    payload = ip[ihl + 8:]
    if dport == 51820 and payload[:1] == b"\x04" and len(payload) > 32:  # data, not a keepalive
        # Captured before checksum offload filled the UDP checksum in: send it without one
        # (0 means "no checksum" for UDP over IPv4); the WireGuard bytes are unchanged.
        offset = 14 + ihl + 6
        frame = data[:offset] + b"\0\0" + data[offset + 2:]
print(u.recvfrom(100)[0].decode())
assert frame is not None, "no transport data captured"
sniff.send(frame)  # the very same datagram, again
u.settimeout(2)
try:
    print("second answer:", u.recvfrom(100)[0].decode())
except TimeoutError:
    print("answered once")
"""


def test_a_replayed_data_packet_changes_nothing(lab: Lab, gw: Gateway) -> None:
    """A transport-data datagram captured on the phone's link and sent again is dropped as
    a replay: the UDP echo it carried is answered once, netstack sees it once."""
    before = _counters(lab)
    out = phone(lab, sys.executable, "-c", REPLAY_SCRIPT, GATEWAY_PHONE_V4, SERVER_V4)
    assert out.splitlines() == ["replay-probe", "answered once"]
    deadline = time.monotonic() + 10
    while (after := _counters(lab))["wireguard"].get("replay", 0) == before["wireguard"].get("replay", 0):
        assert time.monotonic() < deadline, after
        time.sleep(0.2)
    assert after["wireguard"]["replay"] == before["wireguard"].get("replay", 0) + 1
    assert after["wireguard"].get("decrypt_failed", 0) == before["wireguard"].get("decrypt_failed", 0)
    assert after["netstack"].get("rx.udp", 0) == before["netstack"].get("rx.udp", 0) + 1  # the probe, once
    lines = [line for line in gw.log.read_text(errors="replace").splitlines()
             if line.startswith("udp-message") and line.endswith("b'replay-probe'")]
    assert [line.split(" to ")[0] for line in lines] == ["udp-message from client", "udp-message from server"]


def test_https_with_our_ca_and_the_addon_change(lab: Lab, gw: Gateway) -> None:
    out = curl(lab, "-i", "--cacert", str(gw.ca), "https://www.lab.test/")
    assert "hello from the gateway lab" in out
    assert "x-gateway-addon: seen phone" in out.lower()
    out = curl(lab, "-i", "--http2", "--cacert", str(gw.ca), "https://www.lab.test/")
    assert out.startswith("HTTP/2 200")
    assert "x-gateway-addon: seen phone" in out.lower()
    # Without our CA the phone refuses the intercepted certificate: the TLS is really ours.
    r = lab.exec("phone", "curl", "-sS", "--max-time", "10", "https://www.lab.test/", check=False)
    assert r.returncode == 60


def test_flows_carry_the_peer_name(lab: Lab, gw: Gateway) -> None:
    curl(lab, f"http://{SERVER_V4}/?marker=peer-name")
    flows = wait_for_flows(gw, lambda fs: any("marker=peer-name" in getattr(getattr(f, "request", None), "path", "")
                                              for f in fs))
    mine = [f for f in flows if "marker=peer-name" in getattr(getattr(f, "request", None), "path", "")]
    assert mine, "no flow for the request"
    assert mine[0].client_conn.wireguard_peer == "phone"
    assert mine[0].client_conn.peername[0] == "10.0.0.2"


def test_ping_and_ipv6(lab: Lab, gw: Gateway) -> None:
    phone(lab, "ping", "-c", "2", "-W", "3", SERVER_V4)
    phone(lab, "ping", "-6", "-c", "2", "-W", "3", SERVER_V6)
    assert curl(lab, "-6", f"http://[{SERVER_V6}]/").startswith("hello from the gateway lab")


def test_udp_and_websocket_echo(lab: Lab, gw: Gateway) -> None:
    script = (
        "import socket, asyncio, websockets\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)\n"
        f"s.sendto(b'udp-hello', ('{SERVER_V4}', 9999)); print(s.recvfrom(100)[0].decode())\n"
        "async def ws():\n"
        f"    async with websockets.connect('ws://{SERVER_V4}:8765/') as c:\n"
        "        await c.send('ws-hello'); print(await asyncio.wait_for(c.recv(), 5))\n"
        "asyncio.run(ws())\n"
    )
    assert phone(lab, sys.executable, "-c", script).split() == ["udp-hello", "ws-hello"]


def _latest_handshake(lab: Lab, node: str = "phone") -> int:
    iface = f"wg{lab.prefix}{node[len('phone'):]}"
    out = phone(lab, "wg", "show", iface, "latest-handshakes", node=node)
    return int(out.split()[1])


def test_100mb_byte_exact_across_rekeys(lab: Lab, gw: Gateway) -> None:
    big = lab.dir / "www" / "wg-up-100m.bin"
    data = os.urandom(BIG)
    big.write_bytes(data)
    try:
        before = _latest_handshake(lab)
        time.sleep(1.1)  # handshake times have a one-second resolution
        out = phone(lab, "sh", "-c", f"curl -sS --max-time 120 http://{SERVER_V4}/{big.name} | sha256sum",
                    timeout=150)
        assert out.split()[0] == hashlib.sha256(data).hexdigest()
        # ~75,000 data packets went to the phone: our side started new sessions on the way.
        assert _latest_handshake(lab) > before
        # And the raw TCP bulk server, both ways, through a TCPFlow.
        script = (
            "import socket\n"
            f"s = socket.create_connection(('{SERVER_V4}', 5001), timeout=60)\n"
            f"s.sendall(b'GET {BIG}\\n'); n = 0\n"
            "while (d := s.recv(1 << 20)): n += len(d)\n"
            "print(n)\n"
            f"s = socket.create_connection(('{SERVER_V4}', 5001), timeout=60)\n"
            "s.sendall(b'PUT 30000000\\n' + bytes(30000000)); print(s.makefile().readline().strip())\n"
        )
        assert phone(lab, sys.executable, "-c", script, timeout=150).split() == [str(BIG), "30000000"]
    finally:
        big.unlink(missing_ok=True)


def test_two_phones_told_apart(lab: Lab, gw: Gateway) -> None:
    r = subprocess.run([sys.executable, "-m", "gateway", "peers", "--state-dir", str(gw.state / "st"),
                        "add", "phone2", "--endpoint", GATEWAY_PHONE2_V4],
                       capture_output=True, text=True, timeout=30, cwd=str(REPO))
    assert r.returncode == 0, r.stderr
    conf = gw.state / "st" / "peers" / "phone2.conf"
    deadline = time.monotonic() + 15
    while b"peer phone2 added" not in gw.log.read_bytes():
        assert time.monotonic() < deadline, "the running gateway did not pick up phone2"
        time.sleep(0.2)
    gw.phone_up(conf, "phone2")
    try:
        curl(lab, f"http://{SERVER_V4}/?from=one")
        out = curl(lab, "-i", f"http://{SERVER_V4}/?from=two", node="phone2")
    finally:
        lab.phone_down("phone2")
        gw.phones.remove("phone2")
    assert "x-gateway-addon: seen phone2" in out.lower()

    def by_query(flows: list, q: str) -> list:
        return [f for f in flows if f"from={q}" in getattr(getattr(f, "request", None), "path", "")]

    flows = wait_for_flows(gw, lambda fs: by_query(fs, "one") and by_query(fs, "two"))
    one, two = by_query(flows, "one"), by_query(flows, "two")
    assert one and two
    assert one[0].client_conn.wireguard_peer == "phone" and one[0].client_conn.peername[0] == "10.0.0.2"
    assert two[0].client_conn.wireguard_peer == "phone2" and two[0].client_conn.peername[0] == "10.0.0.3"


def test_a_strangers_handshake_changes_nothing(lab: Lab, gw: Gateway) -> None:
    """A phone with a key the gateway never issued gets no session; the real phone carries on."""
    conf = (gw.state / "st" / "peers" / "phone.conf").read_text()
    stranger_key = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout.strip()
    lines = []
    for line in conf.splitlines():
        key = line.split("=", 1)[0].strip()
        if key == "PrivateKey":
            line = f"PrivateKey = {stranger_key}"
        elif key == "Endpoint":
            line = f"Endpoint = {GATEWAY_PHONE2_V4}:51820"
        lines.append(line)
    stranger = gw.state / "stranger.conf"
    stranger.write_text("\n".join(lines) + "\n")
    stranger.chmod(0o600)
    lab.phone_up(stranger, "phone2")
    try:
        r = lab.exec("phone2", "curl", "-sS", "--max-time", "4", f"http://{SERVER_V4}/", check=False)
        assert r.returncode != 0
        assert _latest_handshake(lab, "phone2") == 0
    finally:
        lab.phone_down("phone2")
    assert curl(lab, f"http://{SERVER_V4}/").startswith("hello from the gateway lab")


def _run_gateway(lab: Lab, state: Path, *extra: str) -> subprocess.Popen:
    return lab.popen("gateway", sys.executable, "-m", "gateway", "up", "--state-dir", str(state), *extra,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(REPO),
                     env=dict(os.environ, PYTHONPATH=str(REPO)))


def test_busy_port_is_one_line_and_ctrl_c_stops_cleanly(lab: Lab, gw: Gateway, tmp_path: Path) -> None:
    busy = _run_gateway(lab, tmp_path / "busy", "--set", f"wireguard_endpoint={GATEWAY_PHONE_V4}")
    out, _ = busy.communicate(timeout=30)
    text = out.decode(errors="replace")
    assert busy.returncode not in (0, None)
    errors = [line for line in text.splitlines() if "51820" in line or "in use" in line.lower()]
    assert len(errors) == 1, text
    assert "Traceback" not in text

    other = _run_gateway(lab, tmp_path / "other", "--mode", "wireguard@51821",
                         "--set", f"wireguard_endpoint={GATEWAY_PHONE_V4}")
    try:
        assert other.stdout is not None
        deadline = time.monotonic() + 30
        seen = b""
        while b"listening" not in seen:
            assert time.monotonic() < deadline and other.poll() is None, seen.decode(errors="replace")
            seen += other.stdout.readline()
        other.send_signal(2)  # SIGINT, as Ctrl-C
        rest, _ = other.communicate(timeout=15)
        assert other.returncode == 0, (seen + rest).decode(errors="replace")
        assert b"Traceback" not in rest
        # The counters summary is printed on the way out (the terminal log stops last).
        lines = rest.decode(errors="replace").splitlines()
        assert any(line.startswith("wireguard counters: drops:") for line in lines), lines
        assert any(line.startswith("netstack counters: drops:") for line in lines), lines
    finally:
        if other.poll() is None:
            other.kill()
            other.wait(5)


def test_onboarding_page_through_the_tunnel(lab: Lab, gw: Gateway) -> None:
    """The CA download page answers for its host name at whatever address the phone used."""
    out = curl(lab, "http://gateway.internal/cert/pem")  # the name resolves through the in-tunnel DNS
    assert out.strip() == gw.ca.read_text().strip()


def _wait_listening(proc: subprocess.Popen, log: Path, what: bytes = b"listening", timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while what not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_upstream_chaining_from_wireguard_mode(lab: Lab, tmp_path: Path) -> None:
    """`gateway up --upstream-proxy`: the phone's connections leave the WireGuard gateway
    through another proxy (a second gateway in regular mode, which records what it carried)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    up_log, chained_log = tmp_path / "upstream.log", tmp_path / "chained.log"
    up_flows = tmp_path / "upstream.gw"
    with open(up_log, "wb") as up_out, open(chained_log, "wb") as chained_out:
        upstream = lab.popen("gateway", sys.executable, "-m", "gateway", "up", "--mode", "regular@127.0.0.1:3128",
                             "--state-dir", str(tmp_path / "up-st"), "-w", str(up_flows),
                             stdout=up_out, stderr=subprocess.STDOUT, cwd=str(REPO), env=env)
        chained = lab.popen("gateway", sys.executable, "-m", "gateway", "up", "--mode", "wireguard@51822",
                            "--state-dir", str(tmp_path / "ch-st"), "--dns-server", SERVER_V4,
                            "--upstream-proxy", "http://127.0.0.1:3128",
                            "--set", f"wireguard_endpoint={GATEWAY_PHONE2_V4}",
                            stdout=chained_out, stderr=subprocess.STDOUT, cwd=str(REPO), env=env)
        try:
            _wait_listening(upstream, up_log)
            _wait_listening(chained, chained_log)
            conf = tmp_path / "ch-st" / "peers" / "phone.conf"
            assert f"Endpoint = {GATEWAY_PHONE2_V4}:51822" in conf.read_text()
            lab.phone_up(conf, "phone2")
            try:
                out = curl(lab, f"http://{SERVER_V4}/?marker=chained", node="phone2")
                assert out.startswith("hello from the gateway lab")
                script = (
                    "import socket\n"
                    f"s = socket.create_connection(('{SERVER_V4}', 5001), timeout=20); s.sendall(b'GET 5000\\n')\n"
                    "n = 0\n"
                    "while (d := s.recv(65536)): n += len(d)\n"
                    "print(n)\n"
                )
                assert phone(lab, sys.executable, "-c", script, node="phone2").split() == ["5000"]
            finally:
                lab.phone_down("phone2")
        finally:
            _stop(chained)
            _stop(upstream)
    from gateway.io import FlowReader

    with open(up_flows, "rb") as f:
        carried = list(FlowReader(f).stream())
    http = [f for f in carried if "marker=chained" in getattr(getattr(f, "request", None), "path", "")]
    raw = [f for f in carried if type(f).__name__ == "TCPFlow" and f.messages
           and f.messages[0].content.startswith(b"GET 5000")]
    assert http, up_log.read_text(errors="replace")
    assert raw, up_log.read_text(errors="replace")
    assert raw[0].server_conn.address == (SERVER_V4, 5001)
