"""A gateway on loopback (real listeners from ``start_mode``, the real handler and addon
manager) and real servers for it to reach: TCP and TLS echo servers whose certificates
come from a separate test CA that the gateway is told to trust."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from dataclasses import dataclass, field
from typing import Any

import pytest

from gateway.certs import CertStore


class Hooks:
    """Records every hook call in order: (hook name, argument)."""

    name = "hookrecorder"

    def __init__(self) -> None:
        from gateway import hooks

        self.calls: list[tuple[str, Any]] = []
        for hook in hooks.hook_names():
            if hook in ("load", "configure", "running", "done", "update"):
                continue
            setattr(self, hook, self._make(hook))

    def _make(self, hook: str) -> Any:
        def record(*args: Any) -> None:
            self.calls.append((hook, args[0] if args else None))

        return record

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]

    def args(self, hook: str) -> list[Any]:
        return [a for n, a in self.calls if n == hook]

    async def wait_for(self, hook: str, count: int = 1, timeout: float = 10) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.args(hook)) < count:
                await asyncio.sleep(0.01)
        return self.args(hook)


@dataclass
class Gateway:
    handler: Any
    hooks: Hooks
    tctx: Any
    ca_pem: str
    upstream_ca_pem: str
    servers: list[Any] = field(default_factory=list)

    @property
    def options(self) -> Any:
        return self.tctx.options

    async def start(self, spec: str) -> Any:
        from gateway.modes import start_mode

        server = await start_mode(spec, self.handler)
        self.servers.append(server)
        return server

    def client_context(self, alpn: list[str] | None = None) -> ssl.SSLContext:
        """A client that trusts only the gateway's CA."""
        ctx = ssl.create_default_context(cafile=self.ca_pem)
        if alpn:
            ctx.set_alpn_protocols(alpn)
        return ctx


@pytest.fixture
def upstream_ca(tmp_path):
    store = CertStore(tmp_path / "upstream-ca")
    yield store
    store.close()


@pytest.fixture
async def gateway(tmp_path, upstream_ca):
    from gateway.addons.onboarding import Onboarding
    from gateway.addons.proxyserver import Proxyserver
    from gateway.proxy.handler import ConnectionHandler
    from gateway.test import taddons

    hooks = Hooks()
    with taddons.context(Proxyserver(), Onboarding(), hooks) as tctx:
        tctx.options.update(
            state_dir=str(tmp_path / "state"),
            ssl_verify_upstream_trusted_ca=str(upstream_ca.ca_cert_pem_path),
        )
        certs = CertStore(tmp_path / "state")
        handler = ConnectionHandler(tctx.options, tctx.master.addons, certs)
        handler.client_first_timeout = 0.5
        gw = Gateway(handler, hooks, tctx, str(certs.ca_cert_pem_path), str(upstream_ca.ca_cert_pem_path))
        try:
            yield gw
        finally:
            for s in gw.servers:
                await s.stop()
            certs.close()


@dataclass
class Servers:
    upstream_ca: CertStore
    running: list[asyncio.base_events.Server] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)
    runners: list[Any] = field(default_factory=list)
    transports: list[Any] = field(default_factory=list)
    dns_queries: list[str] = field(default_factory=list)

    def tls_context(self, names: list[str], alpn: list[str] | None = None) -> ssl.SSLContext:
        ctx, _ = self.upstream_ca.server_context(
            names[0], names[1:], alpn=[a.encode() for a in alpn] if alpn else None
        )
        return ctx

    async def echo(self, *, tls: ssl.SSLContext | None = None, close_after_line: bool = False,
                   banner: bytes = b"") -> int:
        """Echo server; on the client's EOF it sends b"bye" and closes (tests half-close)."""

        async def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                if banner:
                    w.write(banner)
                    await w.drain()
                while True:
                    data = await (r.readline() if close_after_line else r.read(65536))
                    if not data:
                        break
                    self.received.append(data)
                    w.write(data)
                    await w.drain()
                    if close_after_line and data.endswith(b"\n"):
                        break
                if not close_after_line:
                    w.write(b"bye")
                    await w.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                w.close()

        server = await asyncio.start_server(on_conn, "127.0.0.1", 0, ssl=tls)
        self.running.append(server)
        return server.sockets[0].getsockname()[1]


    async def http(self, *, tls: ssl.SSLContext | None = None) -> int:
        """aiohttp: ``/hello`` answers with the Host header it saw; ``/big`` 1 MiB."""
        from aiohttp import web

        async def hello(request: web.Request) -> web.Response:
            return web.Response(text=f"hello from server, host={request.host}")

        async def big(request: web.Request) -> web.Response:
            return web.Response(body=bytes(range(256)) * 4096)

        app = web.Application()
        app.router.add_get("/hello", hello)
        app.router.add_get("/big", big)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        self.runners.append(runner)
        return site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def udp_echo(self) -> int:
        loop = asyncio.get_running_loop()

        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(b"echo:" + data, addr)

        transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        self.transports.append(transport)
        return transport.get_extra_info("sockname")[1]

    async def dns(self, records: dict[str, str]) -> int:
        """An authoritative-style DNS server (dnspython) on UDP and TCP of one port:
        A records from ``records``, NXDOMAIN otherwise."""
        import dns.message
        import dns.rcode
        import dns.rrset

        def answer(wire: bytes) -> bytes:
            q = dns.message.from_wire(wire)
            r = dns.message.make_response(q)
            name = q.question[0].name.to_text(omit_final_dot=True)
            if name in records:
                r.answer.append(dns.rrset.from_text(q.question[0].name, 300, "IN", "A", records[name]))
            else:
                r.set_rcode(dns.rcode.NXDOMAIN)
            self.dns_queries.append(name)
            return r.to_wire()

        loop = asyncio.get_running_loop()

        class Udp(asyncio.DatagramProtocol):
            def connection_made(self, transport: Any) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(answer(data), addr)

        async def on_tcp(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while True:
                    n = int.from_bytes(await r.readexactly(2), "big")
                    out = answer(await r.readexactly(n))
                    w.write(len(out).to_bytes(2, "big") + out)
                    await w.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                w.close()

        for _ in range(10):  # the UDP port picked by the kernel may be taken on TCP
            transport, _ = await loop.create_datagram_endpoint(Udp, local_addr=("127.0.0.1", 0))
            port = transport.get_extra_info("sockname")[1]
            try:
                server = await asyncio.start_server(on_tcp, "127.0.0.1", port)
            except OSError:
                transport.close()
                continue
            self.transports.append(transport)
            self.running.append(server)
            break
        return port


@pytest.fixture
async def servers(upstream_ca):
    s = Servers(upstream_ca)
    try:
        yield s
    finally:
        for srv in s.running:
            srv.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(srv.wait_closed(), 2)
        for runner in s.runners:
            await runner.cleanup()
        for t in s.transports:
            t.close()


async def run(*cmd: str, timeout: float = 30, stdin: bytes | None = None) -> tuple[int, bytes, bytes]:
    """Run a real client (curl, openssl) to completion."""
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out, err


async def socks5_open(proxy_port: int, host: str, port: int, auth: tuple[str, str] | None = None):
    """A minimal SOCKS5 client (the tests' own, to reach raw TCP/TLS through the gateway)."""
    r, w = await asyncio.open_connection("127.0.0.1", proxy_port)
    w.write(b"\x05\x01" + (b"\x02" if auth else b"\x00"))
    ver, method = await r.readexactly(2)
    if method == 0xFF:
        w.close()
        raise ConnectionRefusedError("no acceptable method")
    if auth:
        u, p = auth[0].encode(), auth[1].encode()
        w.write(bytes([1, len(u)]) + u + bytes([len(p)]) + p)
        _, status = await r.readexactly(2)
        if status != 0:
            w.close()
            raise PermissionError("socks auth failed")
    try:
        ip = ipaddress.ip_address(host)
        addr = (b"\x01" if ip.version == 4 else b"\x04") + ip.packed
    except ValueError:
        addr = b"\x03" + bytes([len(host)]) + host.encode()
    w.write(b"\x05\x01\x00" + addr + port.to_bytes(2, "big"))
    head = await r.readexactly(4)
    assert head[1] == 0, head
    await r.readexactly({1: 4, 4: 16}[head[3]] + 2)
    return r, w


@pytest.fixture
def socks5():
    return socks5_open
