"""The lab itself: it comes up and goes down repeatedly, nothing in it reaches outside, and
the namespace lab and the Vagrant lab take their addresses from one plan (plan.env)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.lab import PLAN, PLAN_FILE, REPO, SERVER_V4, SERVER_V6, Lab, read_plan

VAGRANT_DIR = REPO / "vagrant"
needs_ruby = pytest.mark.skipif(shutil.which("ruby") is None, reason="ruby not installed (apt-get install ruby)")
needs_vagrant = pytest.mark.skipif(shutil.which("vagrant") is None,
                                   reason="vagrant not installed (apt-get install vagrant)")

NODES = ("phone", "phone2", "lan-client", "gateway", "servers")


def netns_list() -> set[str]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True).stdout or "[]"
    return {n["name"] for n in json.loads(out)}


def root_links() -> set[str]:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout
    return {link["ifname"] for link in json.loads(out)}


def test_up_down_repeatedly_from_clean_state():
    before_links = root_links()
    for _ in range(2):
        lab = Lab()
        with lab:
            assert {lab.ns(n) for n in NODES} <= netns_list()
            # servers answer through the gateway namespace's forwarding
            out = lab.exec("lan-client", "curl", "-s", "--max-time", "5", f"http://{SERVER_V4}/")
            assert out.stdout == b"hello from the gateway lab\n"
            out = lab.exec("lan-client", "curl", "-s", "--max-time", "5", "--cacert", str(lab.server_ca),
                           "--http2", "-o", "/dev/null", "-w", "%{http_version}",
                           "--resolve", f"www.lab.test:443:{SERVER_V4}", "https://www.lab.test/")
            assert out.stdout == b"2"
            out = lab.exec("gateway", "python3", "-c",
                           "import dns.resolver;print(dns.resolver.resolve('www.lab.test','AAAA')[0])")
            assert out.stdout.decode().strip() == SERVER_V6
        assert not {lab.ns(n) for n in NODES} & netns_list()
        assert not lab.dir.exists()
        assert root_links() == before_links


def test_nothing_reaches_beyond_the_namespaces(lab):
    lab_ns = {lab.ns(n) for n in NODES}
    # No link of the root namespace has its other end in a lab namespace.
    ids = json.loads(subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True).stdout)
    lab_ids = {n["id"] for n in ids if n["name"] in lab_ns and "id" in n}
    links = json.loads(subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout)
    assert not [link["ifname"] for link in links if link.get("link_netnsid") in lab_ids]
    # And inside the lab every ethernet link is one of the lab's veths.
    for node in NODES:
        names = {link["ifname"] for link in json.loads(lab.exec(node, "ip", "-j", "link", "show").stdout)}
        assert names <= {"lo", "to-gw", "to-phone", "to-phone2", "to-lan", "to-srv"}, (node, names)
    # No route to an outside address: the gateway has no default route, and everything
    # else only routes to the gateway.  (`ip route get` sends nothing.)
    for dest in ("1.1.1.1", "8.8.8.8", "192.168.1.1"):
        r = lab.exec("gateway", "ip", "route", "get", dest, check=False)
        assert r.returncode != 0 and b"unreachable" in r.stderr.lower()
    r = lab.exec("gateway", "ip", "-6", "route", "get", "2001:4860:4860::8888", check=False)
    assert r.returncode != 0


# -- one address plan ---------------------------------------------------------------------

@pytest.fixture
def other_plan(tmp_path: Path) -> Path:
    """The same plan moved to 10.98.0.0/16 and fd98::/16."""
    path = tmp_path / "plan.env"
    path.write_text(PLAN_FILE.read_text().replace("10.99.", "10.98.").replace("fd99:", "fd98:"))
    return path


def shell_plan(path: Path) -> dict[str, str]:
    script = 'set -eu; . "$1"; for k in $(sed -n "s/^\\([A-Z][A-Z0-9_]*\\)=.*/\\1/p" "$1"); do printf "%s=%s\\n" "$k" "${!k}"; done'
    out = subprocess.run(["bash", "-c", script, "_", str(path)], capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines())


def ruby(*code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["ruby", "-e", "\n".join(code)], capture_output=True, text=True, timeout=60,
                          cwd=VAGRANT_DIR, env=env)


def vagrant(*args: str, dotfiles: Path, plan: Path | None = None) -> subprocess.CompletedProcess:
    # No update check against HashiCorp's servers: tests send nothing outside the machine.
    # Vagrant's machine state goes to a temporary folder, not into vagrant/.vagrant.
    env = dict(os.environ, VAGRANT_CHECKPOINT_DISABLE="1", VAGRANT_NO_COLOR="1",
               VAGRANT_DOTFILE_PATH=str(dotfiles))
    if plan is not None:
        env["LAB_PLAN"] = str(plan)
    return subprocess.run(["vagrant", *args], capture_output=True, text=True, timeout=180,
                          cwd=VAGRANT_DIR, env=env)


def vm_nodes(plan: Path) -> dict[str, list[list[str]]]:
    res = ruby('require_relative "plan"; require "json"',
               "puts JSON.generate(GwlabPlan.nodes(GwlabPlan.load(ARGV.fetch(0, ENV['LAB_PLAN']))))",
               env=dict(os.environ, LAB_PLAN=str(plan)))
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_the_plan_reads_the_same_in_shell_and_python(other_plan: Path) -> None:
    for path in (PLAN_FILE, other_plan):
        assert shell_plan(path) == read_plan(path)
    assert read_plan(other_plan)["SRV_V4"] == "10.98.3.2"


@needs_ruby
def test_the_plan_reads_the_same_in_ruby() -> None:
    res = ruby('require_relative "plan"; require "json"', "puts JSON.generate(GwlabPlan.load)")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == PLAN


@needs_ruby
def test_a_plan_line_the_shell_would_read_differently_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "plan.env"
    bad.write_text(PLAN_FILE.read_text() + 'SRV_V4="10.99.3.2"\n')
    res = ruby('require_relative "plan"', "GwlabPlan.load", env=dict(os.environ, LAB_PLAN=str(bad)))
    assert res.returncode != 0 and "not a plain KEY=VALUE line" in res.stderr
    with pytest.raises(ValueError, match="not a plain KEY=VALUE line"):
        read_plan(bad)


@needs_ruby
def test_the_vms_take_their_addresses_from_the_plan(other_plan: Path) -> None:
    for path in (PLAN_FILE, other_plan):
        plan = read_plan(path)
        nodes = vm_nodes(path)
        assert set(nodes) == {"gateway", "phone-sim", "lan-client", "servers"}
        assert dict(nodes["gateway"]) == {"gwlab-phone": plan["GW_PHONE_V4"], "gwlab-lan": plan["GW_LAN_V4"],
                                          "gwlab-srv": plan["GW_SRV_V4"]}
        assert nodes["phone-sim"] == [["gwlab-phone", plan["PHONE_V4"]]]
        assert nodes["lan-client"] == [["gwlab-lan", plan["LAN_V4"]]]
        assert nodes["servers"] == [["gwlab-srv", plan["SRV_V4"]]]


@needs_ruby
def test_vagrantfile_syntax() -> None:
    for name in ("Vagrantfile", "plan.rb"):
        res = subprocess.run(["ruby", "-c", name], capture_output=True, text=True, cwd=VAGRANT_DIR, timeout=60)
        assert res.returncode == 0 and "Syntax OK" in res.stdout, res.stderr


@needs_vagrant
def test_vagrant_validates_the_vagrantfile(tmp_path: Path) -> None:
    """`vagrant validate` loads the Vagrantfile with its providers' settings (no VM boots)."""
    res = vagrant("validate", dotfiles=tmp_path / "dot")
    assert res.returncode == 0 and "validated successfully" in res.stdout, res.stdout + res.stderr
    # It really reads the plan: a broken plan breaks it.
    bad = tmp_path / "plan.env"
    bad.write_text("SRV_V4=10.99.3.2 # comment after a value\n")
    res = vagrant("validate", dotfiles=tmp_path / "dot", plan=bad)
    assert res.returncode != 0 and "not a plain KEY=VALUE line" in res.stdout + res.stderr, res.stdout + res.stderr


MY_LAB_FILES = ["scripts/lab", "scripts/lab.d/topology.sh", "scripts/lab.d/vm-node.sh",
                "scripts/lab.d/provision-servers.sh", "vagrant/Vagrantfile", "vagrant/plan.rb",
                "tests/e2e/lab.py", "tests/e2e/test_tun_lan.py"]


def test_no_lab_address_is_written_outside_the_plan() -> None:
    """Only comments (the diagrams) may repeat an address; code takes them from plan.env."""
    literal = re.compile(r"\b10\.99\.\d+\.\d+\b|\bfd99:[0-9a-f:]*")
    found = []
    for rel in MY_LAB_FILES:
        for n, line in enumerate((REPO / rel).read_text().splitlines(), 1):
            code = line.split("#", 1)[0] if not rel.endswith(".py") else line
            if line.lstrip().startswith("#"):
                continue
            if literal.search(code):
                found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "\n".join(found)


def test_an_address_changed_in_the_plan_moves_the_namespace_lab(other_plan: Path) -> None:
    plan = read_plan(other_plan)
    with Lab(plan=other_plan) as lab:
        addrs = json.loads(lab.exec("servers", "ip", "-j", "addr", "show", "to-gw").stdout)
        local = {a["local"] for a in addrs[0]["addr_info"]}
        assert {plan["SRV_V4"], plan["SRV_V6"]} <= local
        assert not any(a.startswith(("10.99.", "fd99:")) for a in local)
        out = lab.exec("lan-client", "curl", "-s", "--max-time", "5", "--cacert", str(lab.server_ca),
                       "--resolve", f"www.lab.test:443:{plan['SRV_V4']}", "https://www.lab.test/")
        assert out.stdout == b"hello from the gateway lab\n"
        # The servers' DNS answers with the moved address, and every node resolves with it.
        out = lab.exec("lan-client", "python3", "-c",
                       "import dns.resolver;print(dns.resolver.resolve('www.lab.test','AAAA')[0])")
        assert out.stdout.decode().strip() == plan["SRV_V6"]


# -- the VM provisioning, on namespaces standing in for the VMs -----------------------------

VM_LINKS = (  # (gateway's interface, other VM, plan key of the gateway side, of the other side)
    ("eth1", "phone-sim", "GW_PHONE_V4", "PHONE_V4"),
    ("eth2", "lan-client", "GW_LAN_V4", "LAN_V4"),
    ("eth3", "servers", "GW_SRV_V4", "SRV_V4"),
)


@pytest.fixture
def vm_namespaces(tmp_path: Path):
    """Four namespaces wired as the Vagrantfile wires the VMs (IPv4 on eth1.. only, as
    Vagrant's private networks give them), with no-op apt-get and systemctl: what
    vm-node.sh finds on a freshly booted box, minus the package downloads."""
    prefix = "v" + os.urandom(3).hex()
    roles = ("gateway", "phone-sim", "lan-client", "servers")
    ns = {role: f"{prefix}-{role}" for role in roles}
    # nginx's workers (www-data) read the web root: LAB_DIR must be world-readable, as
    # /var/lib/gwlab is on a VM (pytest's tmp_path is not).
    lab_root = Path(f"/tmp/{prefix}-vm")
    lab_root.mkdir(mode=0o755)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in ("apt-get", "systemctl"):
        (stubs / name).write_text("#!/bin/sh\nexit 0\n")
        (stubs / name).chmod(0o755)
    try:
        for role in roles:
            subprocess.run(["ip", "netns", "add", ns[role]], check=True)
            subprocess.run(["ip", "-n", ns[role], "link", "set", "lo", "up"], check=True)
            etc = Path("/etc/netns") / ns[role]
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")  # vm-node.sh rewrites it
        prefix4 = PLAN["PREFIX4"]
        for gw_if, other, gw_key, other_key in VM_LINKS:
            subprocess.run(["ip", "link", "add", gw_if, "netns", ns["gateway"], "type", "veth",
                            "peer", "name", "eth1", "netns", ns[other]], check=True)
            for where, ifname, key in ((ns["gateway"], gw_if, gw_key), (ns[other], "eth1", other_key)):
                subprocess.run(["ip", "-n", where, "addr", "add", f"{PLAN[key]}/{prefix4}", "dev", ifname], check=True)
                subprocess.run(["ip", "-n", where, "link", "set", ifname, "up"], check=True)

        def provision(role: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                ["ip", "netns", "exec", ns[role], "env", f"PATH={stubs}:{os.environ['PATH']}",
                 f"LAB_DIR={lab_root / role}", "bash", str(REPO / "scripts/lab.d/vm-node.sh"), role],
                capture_output=True, text=True, timeout=120)

        yield ns, provision
    finally:
        for role in roles:
            for pidf in (lab_root / role).glob("*.pid"):
                subprocess.run(["kill", pidf.read_text().strip()], capture_output=True)
            pids = subprocess.run(["ip", "netns", "pids", ns[role]], capture_output=True, text=True).stdout.split()
            for pid in pids:
                subprocess.run(["kill", "-9", pid], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns[role]], capture_output=True)
            shutil.rmtree(Path("/etc/netns") / ns[role], ignore_errors=True)
        shutil.rmtree(lab_root, ignore_errors=True)


def test_vm_node_provisions_the_vms_of_the_vagrantfile(vm_namespaces) -> None:
    ns, provision = vm_namespaces
    for role in ("servers", "gateway", "lan-client", "phone-sim"):
        res = provision(role)
        assert res.returncode == 0, (role, res.stdout, res.stderr)
        assert f"vm-node: {role} provisioned" in res.stdout
        if role == "gateway":
            assert "LAN interface: eth2" in res.stdout

    def run(role: str, *cmd: str) -> str:
        res = subprocess.run(["ip", "netns", "exec", ns[role], *cmd], capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, (role, cmd, res.stderr)
        return res.stdout

    hello = "hello from the gateway lab\n"
    # IPv4 from Vagrant, IPv6 twins, routes and forwarding from vm-node.sh: both families
    # reach the servers through the gateway, from the LAN client and from the phone.
    for role in ("lan-client", "phone-sim"):
        assert run(role, "curl", "-sS", "-m", "5", f"http://{PLAN['SRV_V4']}/") == hello
        assert run(role, "curl", "-sS", "-m", "5", f"http://[{PLAN['SRV_V6']}]/") == hello
    # The LAN client resolves with the lab's DNS server (its resolv.conf was written).
    out = run("lan-client", "python3", "-c",
              "import dns.resolver;print(dns.resolver.resolve('www.lab.test','AAAA')[0])")
    assert out.strip() == PLAN["SRV_V6"]
    # `vagrant provision` again: the servers restart in place of the earlier ones.
    res = provision("servers")
    assert res.returncode == 0, res.stderr
    assert run("lan-client", "curl", "-sS", "-m", "5", f"http://{PLAN['SRV_V4']}/") == hello
    in_ns = subprocess.run(["ip", "netns", "pids", ns["servers"]], capture_output=True, text=True).stdout.split()
    servers_py = [pid for pid in in_ns if b"scripts/lab.d/servers.py" in _cmdline(pid)]
    assert len(servers_py) == 1, servers_py


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (apt-get install shellcheck)")
def test_lab_shell_scripts_and_the_plan_pass_shellcheck() -> None:
    scripts = ["scripts/lab", *sorted(str(p.relative_to(REPO)) for p in (REPO / "scripts/lab.d").glob("*.sh"))]
    res = subprocess.run(["shellcheck", "-x", *scripts], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    res = subprocess.run(["shellcheck", "scripts/lab.d/plan.env"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
