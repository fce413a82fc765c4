"""Each socket mode with real clients (curl, httpx, openssl s_client, dnspython) against
real servers on loopback."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl

import pytest
from gateway_fixtures import run

pytestmark = pytest.mark.skipif(
    not all(__import__("shutil").which(t) for t in ("curl", "openssl")), reason="needs curl and openssl"
)


async def curl(*args: str) -> tuple[int, str, str]:
    code, out, err = await run("curl", "-sS", "--max-time", "20", *args)
    return code, out.decode(errors="replace"), err.decode(errors="replace")


async def test_regular_plain_http(gateway, servers):
    port = await servers.http()
    proxy = await gateway.start("regular@127.0.0.1:0")
    code, out, err = await curl("--proxy", f"http://127.0.0.1:{proxy.address[1]}", f"http://127.0.0.1:{port}/hello")
    assert code == 0, err
    assert out == f"hello from server, host=127.0.0.1:{port}"
    (flow,) = await gateway.hooks.wait_for("response")
    assert flow.request.url == f"http://127.0.0.1:{port}/hello"
    assert flow.client_conn.proxy_mode.type_name == "regular"


async def test_regular_connect_https_with_our_ca(gateway, servers):
    port = await servers.http(tls=servers.tls_context(["localhost"]))
    proxy = await gateway.start("regular@127.0.0.1:0")
    code, out, err = await curl(
        "--proxy", f"http://127.0.0.1:{proxy.address[1]}", "--cacert", gateway.ca_pem,
        f"https://localhost:{port}/hello",
    )
    assert code == 0, err
    assert out == f"hello from server, host=localhost:{port}"
    (flow,) = await gateway.hooks.wait_for("response")
    assert flow.request.scheme == "https"
    assert flow.client_conn.tls and flow.client_conn.sni == "localhost"
    assert flow.server_conn.tls


async def test_regular_proxyauth(gateway, servers):
    gateway.options.update(proxyauth="alice:s3cret")
    port = await servers.http()
    tls_port = await servers.http(tls=servers.tls_context(["localhost"]))
    proxy = f"http://127.0.0.1:{(await gateway.start('regular@127.0.0.1:0')).address[1]}"
    code, out, err = await curl("-o", "/dev/null", "-w", "%{http_code}", "--proxy", proxy, f"http://127.0.0.1:{port}/hello")
    assert out == "407"
    code, out, err = await curl("--proxy", proxy, "--proxy-user", "alice:wrong", "-o", "/dev/null",
                                "-w", "%{http_code}", f"http://127.0.0.1:{port}/hello")
    assert out == "407"
    code, out, err = await curl("--proxy", proxy, "--proxy-user", "alice:s3cret", f"http://127.0.0.1:{port}/hello")
    assert code == 0 and out.startswith("hello from server"), err
    code, out, err = await curl("--proxy", proxy, "--proxy-user", "alice:s3cret", "--cacert", gateway.ca_pem,
                                f"https://localhost:{tls_port}/hello")
    assert code == 0 and out.startswith("hello from server"), err
    code, out, err = await curl("--proxy", proxy, "--cacert", gateway.ca_pem, f"https://localhost:{tls_port}/hello")
    assert code != 0 and "407" in err
    for flow in gateway.hooks.args("request"):
        assert "Proxy-Authorization" not in flow.request.headers  # never forwarded


async def test_httpx_through_regular(gateway, servers):
    import httpx

    port = await servers.http(tls=servers.tls_context(["localhost"]))
    proxy = await gateway.start("regular@127.0.0.1:0")
    async with httpx.AsyncClient(proxy=f"http://127.0.0.1:{proxy.address[1]}",
                                 verify=ssl.create_default_context(cafile=gateway.ca_pem)) as client:
        r = await client.get(f"https://localhost:{port}/big")
        assert r.status_code == 200
        assert r.content == bytes(range(256)) * 4096


async def test_socks5_with_curl_and_auth(gateway, servers):
    port = await servers.http(tls=servers.tls_context(["localhost"]))
    proxy = await gateway.start("socks5@127.0.0.1:0")
    p = proxy.address[1]
    code, out, err = await curl("--socks5-hostname", f"127.0.0.1:{p}", "--cacert", gateway.ca_pem,
                                f"https://localhost:{port}/hello")
    assert code == 0 and out == f"hello from server, host=localhost:{port}", err
    gateway.options.update(proxyauth="bob:pw")
    code, out, err = await curl("--socks5-hostname", f"127.0.0.1:{p}", "--cacert", gateway.ca_pem,
                                f"https://localhost:{port}/hello")
    assert code != 0
    code, out, err = await curl("--proxy", f"socks5h://bob:bad@127.0.0.1:{p}", "--cacert", gateway.ca_pem,
                                f"https://localhost:{port}/hello")
    assert code != 0
    code, out, err = await curl("--proxy", f"socks5h://bob:pw@127.0.0.1:{p}", "--cacert", gateway.ca_pem,
                                f"https://localhost:{port}/hello")
    assert code == 0 and out.startswith("hello from server"), err


async def test_socks5_refuses_http_client_and_bad_commands(gateway, servers):
    proxy = await gateway.start("socks5@127.0.0.1:0")
    r, w = await asyncio.open_connection("127.0.0.1", proxy.address[1])
    w.write(b"GET http://x/ HTTP/1.1\r\n\r\n")
    assert (await asyncio.wait_for(r.read(), 5)).startswith(b"HTTP/1.1 400")
    w.close()
    r, w = await asyncio.open_connection("127.0.0.1", proxy.address[1])
    w.write(b"\x05\x01\x00" + b"\x05\x02\x00\x01\x7f\x00\x00\x01\x00\x50")  # BIND
    assert await asyncio.wait_for(r.read(), 5) == b"\x05\x00" + b"\x05\x07\x00\x01" + bytes(6)
    w.close()


async def test_reverse_http_and_https(gateway, servers):
    port = await servers.http()
    proxy = await gateway.start(f"reverse:http://127.0.0.1:{port}@127.0.0.1:0")
    code, out, err = await curl(f"http://127.0.0.1:{proxy.address[1]}/hello")
    assert code == 0 and out.startswith("hello from server"), err
    (flow,) = await gateway.hooks.wait_for("response")
    assert flow.server_conn.address == ("127.0.0.1", port)
    # The server is told its own name, not the proxy's (mitmproxy's keep_host_header=False).
    assert flow.request.headers["host"] == f"127.0.0.1:{port}"
    tls_port = await servers.http(tls=servers.tls_context(["localhost"]))
    proxy = await gateway.start(f"reverse:https://localhost:{tls_port}@127.0.0.1:0")
    code, out, err = await curl("--cacert", gateway.ca_pem, f"https://localhost:{proxy.address[1]}/hello")
    assert code == 0 and out.startswith("hello from server"), err
    # A plain-HTTP client of an https reverse target: we speak TLS upstream for it.
    code, out, err = await curl(f"http://127.0.0.1:{proxy.address[1]}/hello")
    assert code == 0 and out.startswith("hello from server"), err


async def test_reverse_tcp(gateway, servers):
    echo = await servers.echo()
    proxy = await gateway.start(f"reverse:tcp://127.0.0.1:{echo}@127.0.0.1:0")
    r, w = await asyncio.open_connection("127.0.0.1", proxy.address[1])
    w.write(b"GET / HTTP/1.1\r\n\r\n")  # looks like HTTP, but tcp:// means raw
    await w.drain()
    assert await r.readexactly(18) == b"GET / HTTP/1.1\r\n\r\n"
    w.write_eof()
    assert await r.read() == b"bye"
    w.close()
    (flow,) = await gateway.hooks.wait_for("tcp_end")
    assert flow.messages[0].content.startswith(b"GET")


async def test_reverse_tls_with_openssl_s_client(gateway, servers):
    """openssl s_client: SNI and ALPN reach the tls_clienthello hook; our cert verifies."""
    echo = await servers.echo(tls=servers.tls_context(["localhost"], alpn=["x-echo"]), close_after_line=True)
    proxy = await gateway.start(f"reverse:tls://localhost:{echo}@127.0.0.1:0")
    code, out, err = await run(
        "openssl", "s_client", "-connect", f"127.0.0.1:{proxy.address[1]}", "-servername", "localhost",
        "-alpn", "x-echo,other", "-CAfile", gateway.ca_pem, "-verify_return_error", "-verify_hostname", "localhost",
        "-ign_eof", stdin=b"ping over tls\n", timeout=30,
    )
    text = out.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in text, text + err.decode()
    assert "ALPN protocol: x-echo" in text
    assert "ping over tls" in text  # stdin is not echoed: this came back from the server
    (data,) = await gateway.hooks.wait_for("tls_clienthello")
    assert data.client_hello.sni == "localhost"
    assert data.client_hello.alpn_protocols == [b"x-echo", b"other"]


async def test_reverse_udp(gateway, servers):
    echo = await servers.udp_echo()
    proxy = await gateway.start(f"reverse:udp://127.0.0.1:{echo}@127.0.0.1:0")
    loop = asyncio.get_running_loop()
    got: asyncio.Queue[bytes] = asyncio.Queue()

    class Client(asyncio.DatagramProtocol):
        def datagram_received(self, data, addr):
            got.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", proxy.address[1]))
    for i in range(3):
        transport.sendto(b"dgram%d" % i)
        assert await asyncio.wait_for(got.get(), 5) == b"echo:dgram%d" % i
    transport.close()
    await gateway.hooks.wait_for("udp_message", 6)
    flow = gateway.hooks.args("udp_message")[-1]
    msgs = [(m.from_client, m.content) for m in flow.messages]
    assert msgs[:2] == [(True, b"dgram0"), (False, b"echo:dgram0")]


async def test_reverse_dns_forward_and_local_answer(gateway, servers):
    import dns.asyncquery
    import dns.message

    from gateway.dns import ResourceRecord

    class Local:
        def dns_request(self, flow):
            if flow.request.question.name == "local.test":
                import ipaddress

                flow.response = flow.request.succeed([ResourceRecord.A("local.test", ipaddress.ip_address("10.9.8.7"))])

    gateway.tctx.master.addons.add(Local())
    upstream = await servers.dns({"example.test": "10.1.2.3"})
    proxy = await gateway.start(f"reverse:dns://127.0.0.1:{upstream}@127.0.0.1:0")
    port = proxy.address[1]
    r = await dns.asyncquery.udp(dns.message.make_query("example.test", "A"), "127.0.0.1", port=port, timeout=5)
    assert r.answer[0][0].address == "10.1.2.3"
    r = await dns.asyncquery.tcp(dns.message.make_query("example.test", "A"), "127.0.0.1", port=port, timeout=5)
    assert r.answer[0][0].address == "10.1.2.3"
    r = await dns.asyncquery.udp(dns.message.make_query("local.test", "A"), "127.0.0.1", port=port, timeout=5)
    assert r.answer[0][0].address == "10.9.8.7"
    assert servers.dns_queries == ["example.test", "example.test"]  # local.test never went upstream
    r = await dns.asyncquery.udp(dns.message.make_query("missing.test", "A"), "127.0.0.1", port=port, timeout=5)
    assert r.rcode() == 3  # NXDOMAIN relayed
    flows = await gateway.hooks.wait_for("dns_response", 4)
    assert {f.request.question.name for f in flows} == {"example.test", "local.test", "missing.test"}


async def test_dns_garbage_is_dropped_and_others_still_answered(gateway, servers):
    import dns.asyncquery
    import dns.message

    upstream = await servers.dns({"example.test": "10.1.2.3"})
    proxy = await gateway.start(f"reverse:dns://127.0.0.1:{upstream}@127.0.0.1:0")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"\x00\x01garbage", ("127.0.0.1", proxy.address[1]))
    s.close()
    r = await dns.asyncquery.udp(dns.message.make_query("example.test", "A"), "127.0.0.1",
                                 port=proxy.address[1], timeout=5)
    assert r.answer[0][0].address == "10.1.2.3"


async def test_dns_upstream_down_gives_servfail_and_dns_error(gateway):
    import dns.asyncquery
    import dns.message

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]  # bound but never answering
    import gateway.layers.dns as dns_layer

    old, dns_layer.UPSTREAM_TIMEOUT = dns_layer.UPSTREAM_TIMEOUT, 0.5
    try:
        proxy = await gateway.start(f"reverse:dns://127.0.0.1:{dead}@127.0.0.1:0")
        r = await dns.asyncquery.udp(dns.message.make_query("x.test", "A"), "127.0.0.1",
                                     port=proxy.address[1], timeout=10)
        assert r.rcode() == 2  # SERVFAIL
        (flow,) = await gateway.hooks.wait_for("dns_error")
        assert "failed" in flow.error.msg
    finally:
        dns_layer.UPSTREAM_TIMEOUT = old
        s.close()


async def test_onboarding_page_without_any_server(gateway):
    proxy = await gateway.start("regular@127.0.0.1:0")
    p = f"http://127.0.0.1:{proxy.address[1]}"
    code, out, err = await curl("--proxy", p, "http://gateway.internal/")
    assert code == 0 and "Trust the gateway" in out, err
    code, out, err = await curl("--proxy", p, "--cacert", gateway.ca_pem, "https://gateway.internal/cert/pem")
    assert code == 0, err
    assert out.encode() == open(gateway.ca_pem, "rb").read()
    code, out, err = await run("curl", "-sS", "--proxy", p, "http://gateway.internal/cert/cer")
    from gateway.certs import Cert

    assert Cert.from_der(out) == Cert.from_pem(open(gateway.ca_pem, "rb").read())
    assert not gateway.hooks.args("server_connect")  # no server was ever contacted


async def test_onboarding_dns_answer(gateway, servers):
    import dns.asyncquery
    import dns.message

    upstream = await servers.dns({})
    proxy = await gateway.start(f"reverse:dns://127.0.0.1:{upstream}@127.0.0.1:0")
    r = await dns.asyncquery.udp(dns.message.make_query("gateway.internal", "A"), "127.0.0.1",
                                 port=proxy.address[1], timeout=5)
    assert r.answer[0][0].address == "198.18.0.1"
    assert servers.dns_queries == []


async def test_busy_port_is_an_oserror(gateway):
    proxy = await gateway.start("regular@127.0.0.1:0")
    from gateway.modes import start_mode

    with pytest.raises(OSError):
        await start_mode(f"regular@127.0.0.1:{proxy.address[1]}", gateway.handler)


def test_proxyauth_header_check():
    from gateway.addons.proxyserver import _valid

    good = "Basic " + base64.b64encode(b"u:p").decode()
    assert _valid("u:p", good)
    assert not _valid("u:p", "Basic " + base64.b64encode(b"u:x").decode())
    assert not _valid("u:p", "Basic !!!")
    assert not _valid("u:p", "Bearer abc")
    assert _valid("any", good)
