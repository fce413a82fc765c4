"""server_replay and client_replay on real flows: flows recorded through the HTTP layer,
written to a flow file, then replayed."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.addons.client_replay import ClientReplay
from gateway.addons.server_replay import ServerReplay
from gateway.io import FlowWriter

_spec = importlib.util.spec_from_file_location(
    "_http_layer_harness", Path(__file__).parents[1] / "layers" / "http" / "conftest.py"
)
assert _spec and _spec.loader
_harness = sys.modules.get(_spec.name) or importlib.util.module_from_spec(_spec)
if _spec.name not in sys.modules:
    sys.modules[_spec.name] = _harness
    _spec.loader.exec_module(_harness)
proxy_factory = _harness.proxy_factory
origin = _harness.origin

pytestmark = pytest.mark.timeout(60)


async def record(proxy_factory: Any, origin: Any, tmp_path: Path, paths: list[str]) -> tuple[Path, list[Any]]:
    rec = await proxy_factory()
    async with httpx.AsyncClient(proxy=rec.url) as client:
        for p in paths:
            await client.get(f"{origin.url}{p}")
    flows = rec.recorder.flows("response")
    path = tmp_path / "flows.gw"
    with open(path, "wb") as f:
        w = FlowWriter(f)
        for fl in flows:
            w.add(fl)
    return path, flows


async def test_server_replay_answers_from_the_file(proxy_factory: Any, origin: Any, tmp_path: Path) -> None:
    path, _ = await record(proxy_factory, origin, tmp_path, ["/echo/a?x=1", "/echo/b"])
    recorded = len(origin.requests)
    proxy = await proxy_factory(addons=[ServerReplay()], options={"server_replay": [str(path)]})
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.get(f"{origin.url}/echo/a?x=1")
        assert r.json()["path"] == "/echo/a?x=1"
        r = await client.get(f"{origin.url}/echo/unknown")  # not recorded: forwarded
        assert r.json()["path"] == "/echo/unknown"
        r = await client.get(f"{origin.url}/echo/a?x=1")  # used up (no nopop): forwarded
    assert len(origin.requests) == recorded + 2
    replayed = proxy.recorder.flows("response")[0]
    assert replayed.is_replay == "response"


async def test_server_replay_extra_kill_and_status(proxy_factory: Any, origin: Any, tmp_path: Path) -> None:
    path, flows = await record(proxy_factory, origin, tmp_path, ["/echo/a", "/echo/b"])
    addon = ServerReplay()
    proxy = await proxy_factory(addons=[addon], options={"server_replay_extra": "404", "server_replay_nopop": True})
    addon.load_flows(flows)
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        assert (await client.get(f"{origin.url}/echo/other")).status_code == 404
        for _ in range(3):  # nopop: the same response every time
            assert (await client.get(f"{origin.url}/echo/a")).json()["path"] == "/echo/a"
    proxy.master.options.update(server_replay_extra="kill")
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(f"{origin.url}/echo/other")
    assert addon.count() == 2


async def test_server_replay_ignore_params(proxy_factory: Any, origin: Any, tmp_path: Path) -> None:
    _, flows = await record(proxy_factory, origin, tmp_path, ["/echo/a?session=1&q=x"])
    addon = ServerReplay()
    proxy = await proxy_factory(addons=[addon], options={"server_replay_ignore_params": ["session"]})
    addon.load_flows(flows)
    before = len(origin.requests)
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.get(f"{origin.url}/echo/a?session=99&q=x")
    assert r.json()["path"] == "/echo/a?session=1&q=x"  # the recorded answer
    assert len(origin.requests) == before


async def test_client_replay_resends_requests_with_hooks(proxy_factory: Any, origin: Any, tmp_path: Path) -> None:
    path, _ = await record(proxy_factory, origin, tmp_path, ["/echo/one", "/echo/two"])
    before = len(origin.requests)
    addon = ClientReplay()
    proxy = await proxy_factory(addons=[addon])
    addon.load_file(str(path))
    for _ in range(250):
        if len(addon.done_flows) == 2:
            break
        await asyncio.sleep(0.02)
    assert [r.path for r in origin.requests[before:]] == ["/echo/one", "/echo/two"]
    flows = addon.done_flows
    assert all(f.is_replay == "request" and f.response.status_code == 200 for f in flows)
    assert proxy.recorder.names(flows[0]) == ["requestheaders", "request", "responseheaders", "response"]
    assert addon.count() == 0
