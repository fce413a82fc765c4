"""Hooks steer traffic: answering in requestheaders/request, kill, intercept/resume while
other flows go on, and streaming chosen by a hook or by stream_large_bodies."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)


class Answer:
    def __init__(self, hook: str) -> None:
        self.hook = hook
        setattr(self, hook, self._answer)

    def _answer(self, flow: Any) -> None:
        from gateway.http import Response

        flow.response = Response.make(418, b"from the addon", {"X-Addon": "yes"})


@pytest.mark.parametrize("hook", ["requestheaders", "request"])
async def test_response_set_in_hook_skips_the_server(proxy_factory: Any, origin: Any, hook: str) -> None:
    proxy = await proxy_factory(addons=[Answer(hook)])
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.get(f"{origin.url}/hello")
        r2 = await client.get(f"{origin.url}/hello")  # keep-alive still works
    assert r.status_code == 418 and r.text == "from the addon" and r.headers["x-addon"] == "yes"
    assert r2.status_code == 418
    assert origin.requests == [] and proxy.connects == []
    flow = proxy.recorder.flows("response")[0]
    assert "responseheaders" not in proxy.recorder.names(flow)


class Kill:
    def request(self, flow: Any) -> None:
        if "kill" in flow.request.path:
            flow.kill()


async def test_kill_closes_the_connection_without_contacting_the_server(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(addons=[Kill()])
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(f"{origin.url}/kill")
        assert (await client.get(f"{origin.url}/hello")).status_code == 200
    assert [r.path for r in origin.requests] == ["/hello"]
    killed = proxy.recorder.flows("request")[0]
    assert killed.error is not None and killed.error.msg == "Connection killed."
    # As in mitmproxy, a killed flow ends with the error hook (its terminal line, its save).
    assert proxy.recorder.names(killed) == ["requestheaders", "request", "error"]


class KillIn:
    def __init__(self, hook: str) -> None:
        setattr(self, hook, self._kill)

    def _kill(self, flow: Any) -> None:
        flow.kill()


@pytest.mark.parametrize("hook", ["requestheaders", "request", "responseheaders", "response"])
async def test_a_flow_killed_in_any_hook_gets_the_error_hook_once(
    proxy_factory: Any, origin: Any, hook: str
) -> None:
    proxy = await proxy_factory(addons=[KillIn(hook)])
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(f"{origin.url}/hello")
    (flow,) = {id(f): f for _, f in proxy.recorder.calls}.values()
    names = proxy.recorder.names(flow)
    assert names[-1] == "error" and names.count("error") == 1 and hook in names
    assert flow.error.msg == "Connection killed."


class Intercept:
    def __init__(self) -> None:
        self.held: list[Any] = []

    def request(self, flow: Any) -> None:
        if "hold" in flow.request.path:
            flow.intercept()
            self.held.append(flow)


async def test_intercepted_flow_waits_while_others_go_on(proxy_factory: Any, origin: Any) -> None:
    addon = Intercept()
    proxy = await proxy_factory(addons=[addon])
    async with httpx.AsyncClient(proxy=proxy.url) as c1, httpx.AsyncClient(proxy=proxy.url) as c2:
        held = asyncio.ensure_future(c1.get(f"{origin.url}/echo/hold"))
        for _ in range(250):
            if addon.held:
                break
            await asyncio.sleep(0.02)
        assert addon.held and not held.done()
        for _ in range(3):
            assert (await c2.get(f"{origin.url}/hello")).text == "hello world"
        assert not held.done()
        addon.held[0].request.path = "/echo/resumed"
        addon.held[0].resume()
        r = await asyncio.wait_for(held, 10)
    assert r.json()["path"] == "/echo/resumed"


class StreamFlag:
    def __init__(self) -> None:
        self.chunks: list[int] = []

    def requestheaders(self, flow: Any) -> None:
        flow.request.stream = True

    def responseheaders(self, flow: Any) -> None:
        def count(chunk: bytes) -> bytes:
            self.chunks.append(len(chunk))
            return chunk

        flow.response.stream = count


async def test_stream_flag_from_hooks_passes_bodies_through(proxy_factory: Any, origin: Any) -> None:
    addon = StreamFlag()
    proxy = await proxy_factory(addons=[addon])
    body = b"z" * 300_000
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.post(f"{origin.url}/echo", content=body)
        assert r.json()["body"] == body.decode()
        r = await client.get(f"{origin.url}/bytes/2000000")
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(_pattern(2_000_000)).digest()
    flows = proxy.recorder.flows("response")
    assert all(f.request.raw_content is None and f.response.raw_content is None for f in flows)
    # the echo response (a JSON of the body) and the download both went through the callable
    assert sum(addon.chunks) == int(
        flows[0].response.headers["content-length"]) + 2_000_000
    assert len(addon.chunks) > 2
    for f in flows:
        assert proxy.recorder.names(f) == ["requestheaders", "request", "responseheaders", "response"]


def _pattern(n: int) -> bytes:
    p = bytes(range(256)) * 256
    reps, rest = divmod(n, len(p))
    return p * reps + p[:rest]


async def test_stream_large_bodies_option(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(options={"stream_large_bodies": "100k"})
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        small = await client.get(f"{origin.url}/bytes/1000")
        big = await client.get(f"{origin.url}/bytes/500000")  # chunked: switches while buffering
        big_cl = await client.get(f"{origin.url}/bytes/500000?length=1")
    assert small.content == _pattern(1000)
    assert big.content == _pattern(500_000) and big_cl.content == _pattern(500_000)
    f_small, f_big, f_big_cl = proxy.recorder.flows("response")
    assert f_small.response.content == _pattern(1000)
    assert f_big.response.raw_content is None and f_big_cl.response.raw_content is None


async def test_default_options_stream_bodies_over_four_mib(proxy_factory: Any, origin: Any) -> None:
    """A phone's large download must not be held in memory by default (issue 4: flat memory)."""
    proxy = await proxy_factory()
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        small = await client.get(f"{origin.url}/bytes/3000000?length=1")
        big = await client.get(f"{origin.url}/bytes/6000000?length=1")
    assert small.content == _pattern(3_000_000) and big.content == _pattern(6_000_000)
    f_small, f_big = proxy.recorder.flows("response")
    assert f_small.response.content == _pattern(3_000_000)
    assert f_big.response.raw_content is None


async def test_body_size_limit_refuses_large_bodies(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(options={"body_size_limit": "10k"})
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.post(f"{origin.url}/echo", content=b"a" * 20_000)
        assert r.status_code == 413
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.get(f"{origin.url}/bytes/50000")
        assert r.status_code == 502 and "body_size_limit" in r.text
        assert (await client.get(f"{origin.url}/bytes/5000")).content == _pattern(5000)
    errors = proxy.recorder.flows("error")
    assert len(errors) == 2 and all("body_size_limit" in f.error.msg for f in errors)


async def test_streamed_request_without_body_stays_without_body(proxy_factory: Any, origin: Any) -> None:
    class StreamAll:
        def requestheaders(self, flow: Any) -> None:
            flow.request.stream = True

    proxy = await proxy_factory(addons=[StreamAll()])
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.get(f"{origin.url}/echo")
    names = {k.lower() for k, _ in r.json()["headers"]}
    assert "transfer-encoding" not in names and "content-length" not in names
    assert r.json()["body"] == ""
