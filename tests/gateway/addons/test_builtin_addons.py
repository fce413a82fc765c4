"""The built-in traffic addons on real flows: httpx through the HTTP layer (regular mode)
to an aiohttp server, with each addon configured through its mitmproxy option."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.addons.anticache import AntiCache
from gateway.addons.anticomp import AntiComp
from gateway.addons.block_list import BlockList
from gateway.addons.map_local import MapLocal
from gateway.addons.map_remote import MapRemote
from gateway.addons.modify_body import ModifyBody
from gateway.addons.modify_headers import ModifyHeaders
from gateway.addons.upstream_auth import UpstreamAuth
from gateway.optmanager import OptionsError

# The proxy and server fixtures of the HTTP layer's tests (a module loaded by path because
# test directories are not packages).
_spec = importlib.util.spec_from_file_location(
    "_http_layer_harness", Path(__file__).parents[1] / "layers" / "http" / "conftest.py"
)
assert _spec and _spec.loader
_harness = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _harness
_spec.loader.exec_module(_harness)
proxy_factory = _harness.proxy_factory
origin = _harness.origin

pytestmark = pytest.mark.timeout(60)


def echo_headers(r: httpx.Response) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in r.json()["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out


async def test_block_list_answers_and_kills(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(addons=[BlockList()], options={"block_list": ["/~u blocked/403", ":~u dropme:444"]})
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        assert (await client.get(f"{origin.url}/echo/blocked")).status_code == 403
        with pytest.raises(httpx.HTTPError):
            await client.get(f"{origin.url}/echo/dropme")
        assert (await client.get(f"{origin.url}/echo/fine")).status_code == 200
    assert [r.path for r in origin.requests] == ["/echo/fine"]
    blocked = proxy.recorder.flows("request")[0]
    assert blocked.metadata["blocklisted"] is True


async def test_block_list_rejects_bad_specs(proxy_factory: Any) -> None:
    proxy = await proxy_factory(addons=[BlockList()])
    with pytest.raises(OptionsError):
        proxy.master.options.update(block_list=["/~u x/notanumber"])


async def test_map_remote_sends_the_request_elsewhere(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(
        addons=[MapRemote()],
        options={"map_remote": [f"|//example.invalid/|//127.0.0.1:{origin.port}/echo/"]},
    )
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.get("http://example.invalid/some/path?q=1")
    assert r.json()["path"] == "/echo/some/path?q=1"
    assert echo_headers(r)["host"] == [f"127.0.0.1:{origin.port}"]


async def test_map_local_serves_files_and_404s(proxy_factory: Any, origin: Any, tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "page.html").write_text("<p>local</p>")
    (tmp_path / "site" / "sub").mkdir()
    (tmp_path / "site" / "sub" / "index.html").write_text("index")
    (tmp_path / "secret.txt").write_text("outside")
    proxy = await proxy_factory(addons=[MapLocal()], options={"map_local": [f"|example.invalid/static|{tmp_path / 'site'}"]})
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.get("http://example.invalid/static/page.html")
        assert r.status_code == 200 and r.text == "<p>local</p>" and r.headers["content-type"] == "text/html"
        assert (await client.get("http://example.invalid/static/sub")).text == "index"
        assert (await client.get("http://example.invalid/static/missing.css")).status_code == 404
        # a traversal yields no candidate: not served (forwarded, and example.invalid fails)
        r = await client.get("http://example.invalid/static/..%2Fsecret.txt")
        assert r.status_code != 200 and "outside" not in r.text
        assert (await client.get(f"{origin.url}/hello")).text == "hello world"


async def test_modify_headers_request_and_response(proxy_factory: Any, origin: Any, tmp_path: Path) -> None:
    value_file = tmp_path / "v"
    value_file.write_text("from-file")
    proxy = await proxy_factory(
        addons=[ModifyHeaders()],
        options={"modify_headers": [
            "/~q/X-Added/yes", "/~q/User-Agent/", f"/~q/X-File/@{value_file}", "/~s/X-Origin/replaced",
        ]},
    )
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.get(f"{origin.url}/echo")
        h = echo_headers(r)
        assert h["x-added"] == ["yes"] and h["x-file"] == ["from-file"] and "user-agent" not in h
        r = await client.get(f"{origin.url}/hello")
        assert r.headers["x-origin"] == "replaced"


async def test_modify_body_in_both_directions(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(
        addons=[ModifyBody()],
        options={"modify_body": ["/~q/secret/[redacted]", "/~s ~u hello/world/planet"]},
    )
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.post(f"{origin.url}/echo", content=b"my secret is secret")
        assert r.json()["body"] == "my [redacted] is [redacted]"
        r = await client.get(f"{origin.url}/hello")
        assert r.text == "hello planet" and r.headers["content-length"] == str(len("hello planet"))


async def test_anticache_and_anticomp(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(addons=[AntiCache(), AntiComp()], options={"anticache": True, "anticomp": True})
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.get(
            f"{origin.url}/echo",
            headers={"If-None-Match": '"abc"', "If-Modified-Since": "Wed, 21 Oct 2015 07:28:00 GMT",
                     "Accept-Encoding": "gzip, br"},
        )
    h = echo_headers(r)
    assert "if-none-match" not in h and "if-modified-since" not in h
    assert h["accept-encoding"] == ["identity"]


async def test_anticache_off_by_default(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(addons=[AntiCache(), AntiComp()])
    async with httpx.AsyncClient(proxy=proxy.url) as client:
        r = await client.get(f"{origin.url}/echo", headers={"If-None-Match": '"abc"'})
    assert echo_headers(r)["if-none-match"] == ['"abc"']


async def test_upstream_auth_in_reverse_mode(proxy_factory: Any, origin: Any) -> None:
    proxy = await proxy_factory(
        mode=f"reverse:http://127.0.0.1:{origin.port}@0", addons=[UpstreamAuth()],
        options={"upstream_auth": "bob:pw"},
    )
    async with httpx.AsyncClient() as client:
        r = await client.get(f"http://127.0.0.1:{proxy.port}/echo")
    assert echo_headers(r)["authorization"] == ["Basic Ym9iOnB3"]


async def test_upstream_auth_in_upstream_mode(proxy_factory: Any, origin: Any) -> None:
    """Chained: client -> proxy A (upstream mode, upstream_auth) -> proxy B (regular) ->
    origin; B only lets requests through with the right Proxy-Authorization.  (B checks
    with a local addon: the Proxyserver addon reads the process-wide ``ctx.options``,
    which two masters in one process share.)"""

    class RequireAuth:
        def requestheaders(self, flow: Any) -> None:
            from gateway.http import Response

            if flow.request.headers.get("proxy-authorization") != "Basic Ym9iOnB3":
                flow.response = Response.make(407, b"", {"Proxy-Authenticate": "Basic"})
            else:
                del flow.request.headers["proxy-authorization"]

    b = await proxy_factory(addons=[RequireAuth()])
    a = await proxy_factory(mode=f"upstream:http://127.0.0.1:{b.port}", addons=[UpstreamAuth()],
                            options={"upstream_auth": "bob:pw"})
    async with httpx.AsyncClient(proxy=a.url) as client:
        r = await client.get(f"{origin.url}/echo")
    assert r.status_code == 200
    assert "proxy-authorization" not in echo_headers(r)
    assert a.connects == [(("127.0.0.1", b.port), False)]
    bad = await proxy_factory(mode=f"upstream:http://127.0.0.1:{b.port}", addons=[UpstreamAuth()],
                              options={"upstream_auth": "bob:wrong"})
    async with httpx.AsyncClient(proxy=bad.url) as client:
        assert (await client.get(f"{origin.url}/echo")).status_code == 407


def test_upstream_auth_rejects_bad_spec() -> None:
    from gateway.addons.upstream_auth import parse_upstream_auth

    with pytest.raises(OptionsError):
        parse_upstream_auth("nocolon")
    assert json.dumps(parse_upstream_auth("a:b").decode()) == '"Basic YTpi"'
