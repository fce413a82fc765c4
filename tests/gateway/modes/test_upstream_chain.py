"""Upstream mode chained to a second gateway instance (a real ``gateway up`` process)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys

import pytest
from gateway_fixtures import run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def second_gateway(state_dir: str, trusted_ca: str, *extra: str):
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "up", "--mode", f"regular@127.0.0.1:{port}", "--state-dir", state_dir,
        "--set", f"ssl_verify_upstream_trusted_ca={trusted_ca}", "-q", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))),
    )
    try:
        for _ in range(200):  # up to ~10 s for the listener
            if proc.returncode is not None:
                out = await proc.stdout.read()
                pytest.fail(f"second gateway exited: {out.decode(errors='replace')}")
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("second gateway did not start listening")
        yield port
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_upstream_chain_http_and_https(gateway, servers, tmp_path):
    # Both gateways use the same CA; the first trusts it (to accept the second's minted
    # certificates) and the real servers' CA.
    from gateway.addons.upstream_auth import UpstreamAuth

    gateway.tctx.master.addons.add(UpstreamAuth())  # Proxy-Authorization on absolute-form requests
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(open(gateway.ca_pem, "rb").read() + open(gateway.upstream_ca_pem, "rb").read())
    gateway.options.update(ssl_verify_upstream_trusted_ca=str(bundle), upstream_auth="carol:pw")
    plain = await servers.http()
    tls = await servers.http(tls=servers.tls_context(["localhost"]))
    state_dir = str(os.path.dirname(gateway.ca_pem))
    async with second_gateway(state_dir, gateway.upstream_ca_pem, "--proxyauth", "carol:pw") as up_port:
        first = await gateway.start(f"upstream:http://127.0.0.1:{up_port}@127.0.0.1:0")
        proxy = f"http://127.0.0.1:{first.address[1]}"
        code, out, err = await run("curl", "-sS", "--max-time", "20", "--proxy", proxy, "--cacert", gateway.ca_pem,
                                   f"https://localhost:{tls}/hello")
        assert code == 0, err
        assert out.decode() == f"hello from server, host=localhost:{tls}"
        code, out, err = await run("curl", "-sS", "--max-time", "20", "--proxy", proxy, f"http://127.0.0.1:{plain}/hello")
        assert code == 0, err
        assert out.decode().startswith("hello from server")
    flows = await gateway.hooks.wait_for("response", 2)
    https_flow = flows[0]
    # The first gateway reached the server through the second one.
    assert https_flow.server_conn.via is not None and tuple(https_flow.server_conn.via[1]) == ("127.0.0.1", up_port)
    assert https_flow.server_conn.peername[1] == up_port


async def test_upstream_refusing_connect_gives_error(gateway, servers, tmp_path):
    tls = await servers.http(tls=servers.tls_context(["localhost"]))
    state_dir = str(tmp_path / "other-state")
    async with second_gateway(state_dir, gateway.upstream_ca_pem, "--proxyauth", "dave:pw") as up_port:
        first = await gateway.start(f"upstream:http://127.0.0.1:{up_port}@127.0.0.1:0")
        code, out, err = await run("curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}",
                                   "--proxy", f"http://127.0.0.1:{first.address[1]}", "--cacert", gateway.ca_pem,
                                   f"https://localhost:{tls}/hello")
        # No upstream_auth: the second gateway answers 407 to our CONNECT; the client
        # gets an error response from us, not a hang.
        assert out.decode() in ("502", "407"), err
    errors = gateway.hooks.args("server_connect_error")
    assert errors and "407" in errors[0].server.error
