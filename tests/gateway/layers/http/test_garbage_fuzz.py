"""Random and mangled bytes from clients: every connection ends with an answer or a close,
and the layer never fails with an unexpected exception (which it would log)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(120)

SEEDS = [
    b"GET http://127.0.0.1:{port}/hello HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST http://127.0.0.1:{port}/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST http://127.0.0.1:{port}/echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
    b"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
]


def mangle(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    b = bytearray(data[: max(1, cut % (len(data) + 1))])
    for pos, val in flips:
        if b:
            b[pos % len(b)] = val
    return bytes(b)


@given(
    seed=st.sampled_from(SEEDS),
    cut=st.integers(min_value=0, max_value=400),
    flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_mangled_requests_never_break_the_layer(seed: bytes, cut: int, flips: list, caplog: Any) -> None:
    asyncio.run(_one(seed, cut, flips, caplog))


async def _one(seed: bytes, cut: int, flips: list, caplog: Any) -> None:
    import importlib.util
    import sys
    from pathlib import Path

    name = "_http_layer_harness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "conftest.py")
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    harness = sys.modules[name]

    async def origin(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 2)
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await w.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, TimeoutError):
            pass
        w.close()

    server = await asyncio.start_server(origin, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = await harness.make_proxy()
    caplog.clear()
    try:
        with caplog.at_level(logging.ERROR, logger="gateway"):
            data = mangle(seed.replace(b"{port}", str(port).encode()), cut, flips)
            reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(data)
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            try:
                await asyncio.wait_for(reader.read(), 5)
            except (TimeoutError, ConnectionError):
                pass
            writer.close()
            for _ in range(50):
                if not proxy.tasks:
                    break
                await asyncio.sleep(0.01)
        failures = [r for r in caplog.records if r.exc_info]
        assert not failures, failures[0].getMessage()
    finally:
        proxy.server.close()
        for t in list(proxy.tasks):
            t.cancel()
        server.close()
