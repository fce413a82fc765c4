"""DNS over UDP and TCP: one ``DNSFlow`` per query.

``dns_request`` fires with the parsed query; a hook that sets ``flow.response``
answers locally and no resolver is asked.  Otherwise the (possibly modified) query goes
to the upstream resolver with dnspython (UDP, retried over TCP when the answer is
truncated), ``dns_response`` fires, and the answer goes back to the client.

Upstream: the ``reverse:dns://`` target; else the first ``dns_server`` option entry;
else the destination the client sent the query to (transparent and packet modes);
without any of these, the system's resolvers (``/etc/resolv.conf``).  A query that
cannot be answered gets ``SERVFAIL`` so the client does not wait for its timeout, and
``dns_error`` fires.  Bytes that do not parse as DNS are dropped and logged.

Queries on one UDP stream are handled concurrently (clients send A and AAAA at once);
on TCP they are answered in order.

Every answer sent back also teaches the connection handler's ``resolved_names`` which name
each A/AAAA address was the answer to, for this client, so the flows of its later
connections to those addresses show the name (``gateway.proxy.resolved_names``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from typing import Any

from gateway.layers.context import LayerContext
from gateway.net.address_text import format_address
from gateway.proxy.arrival import Address

log = logging.getLogger("gateway.dns")

UPSTREAM_TIMEOUT = 5.0
SERVFAIL = 2
MAX_TCP_MESSAGE = 65535


def message_from_wire(data: bytes) -> Any:
    from gateway.dns import DNSMessage

    return DNSMessage.unpack(data)


def _malformed_reason(e: ValueError) -> str:
    """`` (why)`` from DNSMessage.unpack's "malformed DNS message: why", or nothing when
    "why" only says it again (dnspython's "DNS message is malformed.")."""
    why = str(e).removeprefix("malformed DNS message").lstrip(": ").rstrip(".")
    return "" if not why or why.lower() == "dns message is malformed" else f" ({why})"


def _parse_server(spec: str) -> Address:
    spec = spec.strip()
    if spec.startswith("["):
        host, _, port = spec[1:].partition("]")
        return host, int(port.lstrip(":") or 53)
    if spec.count(":") == 1:
        host, _, port = spec.partition(":")
        return host, int(port)
    return spec, 53


def _system_resolver() -> Address | None:
    try:
        import dns.resolver

        ns = dns.resolver.Resolver().nameservers
    except Exception:  # noqa: BLE001 - no resolv.conf
        return None
    return (str(ns[0]), 53) if ns else None


def upstream_for(ctx: LayerContext, dest: Address | None) -> Address | None:
    from gateway.proxy.handler import option

    mode = ctx.client.proxy_mode
    if mode.type_name == "reverse":
        return tuple(mode.address)  # type: ignore[attr-defined,return-value]
    servers = option(ctx.options, "dns_server", [])
    if servers:
        try:
            return _parse_server(servers[0])
        except ValueError:
            log.error("bad dns_server entry %r", servers[0])
    if dest is not None:
        return dest
    return _system_resolver()


class DnsLayer:
    """Answers queries of one client (a UDP stream or a TCP connection)."""

    def __init__(self, ctx: LayerContext, dest: Address | None, transport: str) -> None:
        self.ctx = ctx
        self.dest = dest
        self.transport = transport
        self.upstream = upstream_for(ctx, dest)
        self.bad = 0

    def _server(self) -> Any:
        from gateway.connection import Server

        return Server(address=self.upstream, transport_protocol=self.transport)  # type: ignore[arg-type]

    async def answer(self, raw: bytes) -> bytes | None:
        """The bytes to send back for one query, or None (dropped)."""
        from gateway.dns import DNSFlow
        from gateway.flow import Error

        ctx = self.ctx
        try:
            query = message_from_wire(raw)
        except ValueError as e:
            self.bad += 1
            log.info("client %s sent a malformed DNS message%s; dropped", format_address(ctx.client.peername),
                     _malformed_reason(e))
            return None
        if not query.query:
            self.bad += 1
            log.info("client %s sent a DNS response, not a query; dropped", format_address(ctx.client.peername))
            return None
        flow = DNSFlow(ctx.client, self._server(), live=True)
        flow.request = query
        await ctx.addons.trigger("dns_request", flow)
        if _killed(flow):
            return None
        if flow.response is None:
            try:
                flow.response = await self._ask_upstream(flow.request)
            except (OSError, TimeoutError, ValueError, EOFError, ConnectionError) as e:
                flow.error = Error(f"DNS upstream {self._fmt_upstream()} failed: {e or type(e).__name__}")
                flow.live = False
                log.info("%s", flow.error.msg)
                await ctx.addons.trigger("dns_error", flow)
                return flow.request.fail(SERVFAIL).packed
            except Exception as e:  # noqa: BLE001 - dnspython raises its own exception types
                flow.error = Error(f"DNS upstream {self._fmt_upstream()} failed: {e!r}")
                flow.live = False
                await ctx.addons.trigger("dns_error", flow)
                return flow.request.fail(SERVFAIL).packed
            await ctx.addons.trigger("dns_response", flow)
        else:
            await ctx.addons.trigger("dns_response", flow)
        if _killed(flow) or flow.response is None:
            return None
        flow.live = False
        response = flow.response
        response.id = flow.request.id
        self._remember_names(response)
        return response.packed

    def _remember_names(self, response: Any) -> None:
        """Record which name each answered address was for (the answer as the client gets
        it, after the hooks), so its later connections there are labelled with it."""
        names = self.ctx.extra.get("resolved_names")
        if names is None:
            return
        from gateway.proxy.resolved_names import client_key

        try:
            names.learn_message(client_key(self.ctx.client), response, time.monotonic())
        except (ValueError, AttributeError, TypeError) as e:
            log.debug("cannot learn names from a DNS answer: %s", e)

    def _fmt_upstream(self) -> str:
        if self.upstream is None:
            return "(none)"
        host, port = self.upstream
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    async def _ask_upstream(self, query: Any) -> Any:
        import dns.asyncquery
        import dns.message

        from gateway.dns import DNSMessage

        if self.upstream is None:
            raise OSError("no upstream DNS resolver configured")
        host, port = self.upstream
        listen = getattr(self.ctx, "extra", {}).get("listen_addresses")
        if listen is not None and listen.contains(host, port):
            raise ConnectionRefusedError("the upstream resolver is the gateway itself")
        try:
            ipaddress.ip_address(host)
            where = host
        except ValueError:
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(host, port)
            where = infos[0][4][0]
        q = dns.message.from_wire(query.packed)
        if self.transport == "tcp":
            resp = await dns.asyncquery.tcp(q, where, timeout=UPSTREAM_TIMEOUT, port=port)
        else:
            resp, _ = await dns.asyncquery.udp_with_fallback(
                q, where, timeout=UPSTREAM_TIMEOUT, port=port, ignore_unexpected=True
            )
        return DNSMessage.unpack(resp.to_wire(), time.time())


def _killed(flow: Any) -> bool:
    from gateway.flow import Error

    return flow.error is not None and flow.error.msg == Error.KILLED_MESSAGE


async def handle_dns_udp(ctx: LayerContext, stream: Any, dest: Address | None) -> None:
    layer = DnsLayer(ctx, dest, "udp")
    tasks: set[asyncio.Task] = set()

    async def one(raw: bytes) -> None:
        try:
            out = await layer.answer(raw)
        except Exception:  # noqa: BLE001
            log.exception("DNS query from %s failed", format_address(ctx.client.peername))
            return
        if out is not None:
            stream.send(out)

    try:
        while True:
            raw = await stream.recv()
            if raw is None:
                break
            t = asyncio.create_task(one(raw))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=UPSTREAM_TIMEOUT * 3)
    finally:
        for t in tasks:
            t.cancel()


async def handle_dns_tcp(ctx: LayerContext, reader: Any, writer: Any, dest: Address | None) -> None:
    layer = DnsLayer(ctx, dest, "tcp")
    try:
        while True:
            try:
                head = await reader.readexactly(2)
            except asyncio.IncompleteReadError:
                return
            size = int.from_bytes(head, "big")
            try:
                raw = await reader.readexactly(size)
            except asyncio.IncompleteReadError:
                log.info("client %s closed in the middle of a DNS message", format_address(ctx.client.peername))
                return
            out = await layer.answer(raw)
            if out is None:
                if layer.bad:
                    return  # garbage on a TCP stream: the framing can no longer be trusted
                continue
            if len(out) > MAX_TCP_MESSAGE:
                continue
            writer.write(len(out).to_bytes(2, "big") + out)
            await writer.drain()
    finally:
        writer.close()
