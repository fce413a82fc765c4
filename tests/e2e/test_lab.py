"""The lab itself: it comes up and goes down repeatedly, and nothing in it reaches outside."""

from __future__ import annotations

import json
import subprocess

from tests.e2e.lab import SERVER_V4, SERVER_V6, Lab

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
