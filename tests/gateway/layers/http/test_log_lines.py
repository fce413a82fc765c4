"""A failed exchange is reported once: by the flow line the error hook prints.

The layers used to log the same text again at info (every 502, every 413, every 400 and,
for the 400, with the client as a Python tuple), so each failure showed up twice.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)


def _layer_lines(caplog: Any) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("gateway.") and r.levelno >= logging.INFO]


async def test_a_502_logs_nothing_beside_its_error_flow(proxy: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as s:  # bound, never listening: the connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        async with httpx.AsyncClient(proxy=proxy.url) as client:
            r = await client.get(f"http://127.0.0.1:{port}/")
    assert r.status_code == 502
    (flow,) = proxy.recorder.flows("error")
    assert f"127.0.0.1:{port}" in flow.error.msg
    assert _layer_lines(caplog) == []


async def test_a_413_logs_nothing_beside_its_error_flow(proxy_factory: Any, origin: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    proxy = await proxy_factory(options={"body_size_limit": "10k"})
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.post(f"{origin.url}/echo", content=b"a" * 20_000)
    assert r.status_code == 413
    (flow,) = proxy.recorder.flows("error")
    assert "body_size_limit" in flow.error.msg
    assert _layer_lines(caplog) == []


async def test_a_bad_request_logs_nothing_beside_its_error_flow(proxy: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(b"garbage garbage\r\n\r\n")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    assert data.startswith(b"HTTP/1.1 400 ")
    (flow,) = proxy.recorder.flows("error")
    assert flow.error.msg
    assert _layer_lines(caplog) == []
    # The debug line names the client as an address, not as a tuple.
    debug = [r.getMessage() for r in caplog.records if r.name == "gateway.http" and flow.error.msg in r.getMessage()]
    assert debug and all("('" not in m and "127.0.0.1:" in m for m in debug)
