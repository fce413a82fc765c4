"""A 1 GB download streamed through the proxy: the bytes arrive intact (sha256) and the
proxy process's memory stays low.  Server and client are separate processes (a Python
socket server and curl piped into sha256sum), so this process's RSS is the proxy's."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from typing import Any

import pytest

SIZE = 1024**3
PATTERN = bytes(range(256)) * 256

SERVER = r"""
import socket, sys
size = int(sys.argv[1])
pattern = bytes(range(256)) * 256
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(4)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            break
        buf += d
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
    sent = 0
    while sent < size:
        n = min(len(pattern), size - sent)
        c.sendall(pattern[:n])
        sent += n
    c.close()
"""


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def expected_sha256(size: int) -> str:
    h = hashlib.sha256()
    reps, rest = divmod(size, len(PATTERN))
    for _ in range(reps):
        h.update(PATTERN)
    h.update(PATTERN[:rest])
    return h.hexdigest()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", ["stream_large_bodies", "hook"])
async def test_1gb_download_streams_with_low_memory(proxy_factory: Any, how: str) -> None:
    class StreamIt:
        def responseheaders(self, flow: Any) -> None:
            flow.response.stream = True

    if how == "hook":
        proxy = await proxy_factory(addons=[StreamIt()])
    else:
        proxy = await proxy_factory(options={"stream_large_bodies": "1m"})
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER, str(SIZE), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert server.stdout is not None
        port = int((await asyncio.wait_for(server.stdout.readline(), 10)).decode())
        baseline = rss_bytes()
        peak = baseline
        client = await asyncio.create_subprocess_shell(
            f"curl -sS --max-time 240 --proxy {proxy.url} http://127.0.0.1:{port}/big | sha256sum",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        done = asyncio.ensure_future(client.communicate())
        while not done.done():
            peak = max(peak, rss_bytes())
            await asyncio.wait([done], timeout=0.2)
        out, err = done.result()
        assert client.returncode == 0, err
        assert out.split()[0].decode() == expected_sha256(SIZE)
        assert peak - baseline < 64 * 1024**2, f"RSS grew by {(peak - baseline) / 2**20:.1f} MiB"
        (flow,) = proxy.recorder.flows("response")
        assert flow.response.raw_content is None
    finally:
        server.kill()
        await server.wait()
