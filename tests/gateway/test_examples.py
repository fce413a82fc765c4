"""The example addons in examples/, run through the taddons harness as users would load them."""

from __future__ import annotations

from pathlib import Path

from gateway.http import HTTPFlow, Response
from gateway.test import taddons, tflow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def http_flow(url: str, response: bool = True) -> HTTPFlow:
    f = tflow.tflow(resp=Response.make(200, b"hello", {"Content-Type": "text/plain"}) if response else None)
    f.request.url = url
    return f


async def test_add_header_sets_header_on_every_response():
    with taddons.context() as tctx:
        script = tctx.script(str(EXAMPLES / "add_header.py"))
        f = http_flow("https://example.com/a")
        await tctx.cycle(script, f)
        assert f.response.headers["x-gateway"] == "seen"
        assert f.response.content == b"hello"


async def test_block_host_answers_403_for_host_and_subdomains_only():
    with taddons.context() as tctx:
        tctx.script(str(EXAMPLES / "block_host.py"))
        tctx.options.update(block_host=["ads.example.com"])
        addon = tctx.master.addons.get("blockhost")
        assert addon is not None
        for url, blocked in [
            ("http://ads.example.com/x", True),
            ("https://cdn.ads.example.com/y.js", True),
            ("http://example.com/", False),
            ("http://badads.example.com/", False),
        ]:
            f = http_flow(url, response=False)
            await tctx.cycle(addon, f)
            assert (f.response is not None and f.response.status_code == 403) is blocked, url
        assert tctx.master.has_log("blocked http://ads.example.com/x")


async def test_block_host_option_can_be_set_with_set_syntax():
    with taddons.context() as tctx:
        tctx.options.set("block_host=tracker.test", defer=True)
        tctx.script(str(EXAMPLES / "block_host.py"))
        assert tctx.options.block_host == ["tracker.test"]
        addon = tctx.master.addons.get("blockhost")
        f = http_flow("http://tracker.test/pixel.gif", response=False)
        await tctx.cycle(addon, f)
        assert f.response.status_code == 403


async def test_log_dns_logs_query_and_answer():
    import ipaddress

    from gateway import dns

    with taddons.context() as tctx:
        script = tctx.script(str(EXAMPLES / "log_dns.py"))
        f = tflow.tdnsflow(req=dns.DNSMessage.make_query("example.org", dns.types.AAAA))
        f.response = f.request.succeed(
            [dns.ResourceRecord.AAAA("example.org", ipaddress.IPv6Address("2001:db8::7"))]
        )
        client = f.client_conn.peername[0]
        await tctx.cycle(script, f)
        assert tctx.master.has_log(f"{client} asks example.org AAAA", "info")
        assert tctx.master.has_log(f"{client} got example.org AAAA -> 2001:db8::7", "info")
