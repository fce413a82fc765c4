"""Raw UDP: datagrams of one client 4-tuple relayed to their destination as a ``UDPFlow``.

Each datagram goes through ``udp_message`` before it is sent on (a hook can change its
content or drop it with ``b""``).  The flow ends (``udp_end``) when the client's stream
ends -- the mode closes streams that stay idle -- or ``udp_error`` if the server cannot
be reached.

A server port that is closed answers with ICMP port unreachable, which the connected
upstream socket reports as ECONNREFUSED: the flow then ends with ``udp_error``, and a
client stream that can (``refuse``, packet modes through netstack) gets the same ICMP
error back, so the client's own socket fails at once instead of waiting for a timeout.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

from gateway.layers.context import LayerContext
from gateway.proxy.arrival import Address

log = logging.getLogger("gateway.udp")

SERVER_QUEUE = 256


class _ServerProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(SERVER_QUEUE)
        self.dropped = 0
        self.refused = False

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            self.dropped += 1

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, ConnectionRefusedError):
            self.refused = True  # the server's ICMP port unreachable: the flow ends
            self.connection_lost(exc)
            return
        log.debug("UDP server error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            pass


async def open_udp(host: str, port: int, listen: Any) -> tuple[asyncio.DatagramTransport, _ServerProtocol]:
    from gateway.proxy.server_connect import LoopRefused, resolve

    candidates = await resolve(host, port)
    if not candidates:
        raise OSError(f"{host}: no address")
    family, ip = candidates[0]
    if listen is not None and listen.contains(ip, port):
        raise LoopRefused(f"refusing UDP to {host}:{port}: that is the gateway's own listening address")
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        _ServerProtocol, remote_addr=(ip, port), family=family or socket.AF_INET
    )
    return transport, proto


async def handle_udp(ctx: LayerContext, stream: Any, dest: Address, *, name: str | None = None) -> None:
    """``name``: what the client resolved ``dest``'s IP from; it labels the flow's
    ``server_conn.address`` while the datagrams still go to ``dest``."""
    from gateway.connection import ConnectionState, Server
    from gateway.flow import Error
    from gateway.proxy.handler import _server_hook_data
    from gateway.udp import UDPFlow, UDPMessage

    client = ctx.client
    label = (name, int(dest[1])) if name else tuple(dest)
    server = Server(address=label, transport_protocol="udp")
    hook_data = _server_hook_data(client, server)
    flow = UDPFlow(client, server, live=True)
    await ctx.addons.trigger("udp_start", flow)
    await ctx.addons.trigger("server_connect", hook_data)
    if server.error:
        flow.error = Error(server.error)
        flow.live = False
        await ctx.addons.trigger("udp_error", flow)
        return
    if tuple(server.address) != label:  # an addon redirected it in server_connect
        dest = (str(server.address[0]), int(server.address[1]))
    try:
        transport, proto = await open_udp(dest[0], dest[1], ctx.extra.get("listen_addresses"))
    except OSError as e:
        server.error = str(e)
        await ctx.addons.trigger("server_connect_error", hook_data)
        flow.error = Error(f"UDP to {dest[0]}:{dest[1]} failed: {e}")
        flow.live = False
        await ctx.addons.trigger("udp_error", flow)
        return
    server.peername = transport.get_extra_info("peername")
    server.sockname = transport.get_extra_info("sockname")
    server.state = ConnectionState.OPEN
    await ctx.addons.trigger("server_connected", hook_data)

    def killed() -> bool:
        return flow.error is not None and flow.error.msg == Error.KILLED_MESSAGE

    async def from_server() -> None:
        while True:
            data = await proto.queue.get()
            if data is None:
                return
            msg = UDPMessage(False, data)
            flow.messages.append(msg)
            await ctx.addons.trigger("udp_message", flow)
            if killed():
                return
            if msg.content:
                stream.send(msg.content)

    back = asyncio.create_task(from_server())
    last_sent = b""
    try:
        while True:
            recv = asyncio.ensure_future(stream.recv())
            done, _ = await asyncio.wait({recv, back}, return_when=asyncio.FIRST_COMPLETED)
            if recv not in done:
                recv.cancel()
                break
            data = recv.result()
            if data is None:
                break
            msg = UDPMessage(True, data)
            flow.messages.append(msg)
            await ctx.addons.trigger("udp_message", flow)
            if killed():
                break
            if msg.content:
                last_sent = msg.content
                transport.sendto(msg.content)
    finally:
        back.cancel()
        await asyncio.gather(back, return_exceptions=True)
        transport.close()
        server.state = ConnectionState.CLOSED
        await ctx.addons.trigger("server_disconnected", hook_data)
    flow.live = False
    if proto.refused and not killed():
        refuse = getattr(stream, "refuse", None)
        if refuse is not None:
            refuse(last_sent)
        flow.error = Error(f"UDP to {dest[0]}:{dest[1]}: connection refused (port unreachable)")
    if killed() or proto.refused:
        await ctx.addons.trigger("udp_error", flow)
    else:
        await ctx.addons.trigger("udp_end", flow)
