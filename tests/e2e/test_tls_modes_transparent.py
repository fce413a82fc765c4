"""Transparent mode for real: nft redirects connections inside a private network namespace
to the gateway, which finds their original destination with SO_ORIGINAL_DST (IPv4 and
IPv6), relays raw TCP and intercepts TLS (a certificate for the destination IP).

Everything runs in one namespace made by the test (loopback only, no links out): a
subprocess there starts the servers, the gateway and the clients, and prints what it saw
as JSON.  The client binds to a second loopback address so that only its connections
match the redirect rule, not the gateway's own upstream connections (no loop).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"),
    reason="needs root, ip and nft (network namespace + nat redirect)",
)

RULES = """
table ip gwt {
  chain output {
    type nat hook output priority -100;
    ip saddr 127.0.0.2 tcp dport { 7777, 7443 } redirect to :8081
  }
}
table ip6 gwt6 {
  chain output {
    type nat hook output priority -100;
    ip6 saddr fd77::2 tcp dport 7777 redirect to :8081
  }
}
"""

SCRIPT = r'''
import asyncio, json, ssl, sys, tempfile
from gateway.certs import CertStore
from gateway.modes import start_mode
from gateway.proxy.handler import ConnectionHandler
from gateway.test import taddons

async def echo(r, w):
    while data := await r.read(65536):
        w.write(data)
        await w.drain()
    w.write(b"bye")
    await w.drain()
    w.close()

class Rec:
    def __init__(self): self.flows = []
    def tcp_end(self, f): self.flows.append(f)

async def main():
    tmp = tempfile.mkdtemp()
    upstream = CertStore(tmp + "/up")
    rec = Rec()
    from gateway.addons.proxyserver import Proxyserver
    with taddons.context(Proxyserver(), rec) as tctx:  # Proxyserver declares the trust option
        tctx.options.update(state_dir=tmp + "/state",
                            ssl_verify_upstream_trusted_ca=str(upstream.ca_cert_pem_path))
        gw_certs = CertStore(tmp + "/state")
        handler = ConnectionHandler(tctx.options, tctx.master.addons, gw_certs)
        handler.client_first_timeout = 0.5
        s4 = await asyncio.start_server(echo, "127.0.0.5", 7777)
        s6 = await asyncio.start_server(echo, "fd77::1", 7777)
        sctx, _ = upstream.server_context("127.0.0.5", alpn=[b"x-echo"])
        stls = await asyncio.start_server(echo, "127.0.0.5", 7443, ssl=sctx)
        m4 = await start_mode("transparent@127.0.0.1:8081", handler)
        m6 = await start_mode("transparent@[::1]:8081", handler)
        out = {}
        r, w = await asyncio.open_connection("127.0.0.5", 7777, local_addr=("127.0.0.2", 0))
        w.write(b"\x00v4 data"); await w.drain()
        out["v4_echo"] = (await r.readexactly(8)).decode("latin-1")
        w.write_eof()
        out["v4_bye"] = (await asyncio.wait_for(r.read(), 10)).decode()
        w.close()
        r, w = await asyncio.open_connection("fd77::1", 7777, local_addr=("fd77::2", 0))
        w.write(b"\x00v6 data"); await w.drain()
        out["v6_echo"] = (await r.readexactly(8)).decode("latin-1")
        w.close()
        cctx = ssl.create_default_context(cafile=str(gw_certs.ca_cert_pem_path))
        cctx.set_alpn_protocols(["x-echo"])
        r, w = await asyncio.open_connection("127.0.0.5", 7443, local_addr=("127.0.0.2", 0),
                                             ssl=cctx, server_hostname="127.0.0.5")
        obj = w.get_extra_info("ssl_object")
        out["tls_issuer"] = dict(x[0] for x in obj.getpeercert()["issuer"])["commonName"]
        out["tls_alpn"] = obj.selected_alpn_protocol()
        w.write(b"\x00tls data"); await w.drain()
        out["tls_echo"] = (await r.readexactly(9)).decode("latin-1")
        w.close()
        for _ in range(200):
            if len(rec.flows) >= 3:
                break
            await asyncio.sleep(0.05)
        out["destinations"] = sorted(f"{f.server_conn.address[0]}:{f.server_conn.address[1]}" for f in rec.flows)
        out["tls_flow_server_tls"] = any(f.server_conn.tls for f in rec.flows)
        await m4.stop(); await m6.stop()
        for s in (s4, s6, stls):
            s.close()
        print("RESULT " + json.dumps(out))

if sys.argv[1:] == ["uvloop"]:
    import uvloop
    uvloop.run(main())
else:
    asyncio.run(main())
'''


@pytest.fixture
def netns():
    name = f"gwt{os.getpid()}{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        ex = ["ip", "netns", "exec", name]
        subprocess.run([*ex, "ip", "link", "set", "lo", "up"], check=True)
        for addr in ("fd77::1/128", "fd77::2/128"):
            subprocess.run([*ex, "ip", "addr", "add", addr, "dev", "lo", "nodad"], check=True)
        r = subprocess.run([*ex, "nft", "-f", "-"], input=RULES.encode(), capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"nft nat unavailable here: {r.stderr.decode().strip()}")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_transparent_ipv4_ipv6_and_tls(netns, loop):
    r = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", SCRIPT, loop],
        cwd=ROOT, capture_output=True, timeout=120,
    )
    lines = [ln for ln in r.stdout.decode().splitlines() if ln.startswith("RESULT ")]
    assert r.returncode == 0 and lines, r.stdout.decode() + r.stderr.decode()
    out = json.loads(lines[0][7:])
    assert out["v4_echo"] == "\x00v4 data"
    assert out["v4_bye"] == "bye"  # half-close relayed through the redirect
    assert out["v6_echo"] == "\x00v6 data"
    assert out["tls_issuer"] == "gateway"  # intercepted: our certificate, valid for the IP
    assert out["tls_alpn"] == "x-echo"
    assert out["tls_echo"] == "\x00tls data"
    assert out["destinations"] == ["127.0.0.5:7443", "127.0.0.5:7777", "fd77::1:7777"]
    assert out["tls_flow_server_tls"]
