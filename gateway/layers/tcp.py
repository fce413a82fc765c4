"""Raw TCP: relay bytes both ways, recording them as a ``TCPFlow``.

Each chunk read from one side becomes a ``TCPMessage`` and goes through the
``tcp_message`` hook before it is written to the other side, so a hook can change it
(``flow.messages[-1].content = ...``), drop it (set the content to ``b""``) or kill
the flow.  EOF is relayed as a half-close (``write_eof``: a FIN, or a TLS close_notify
then a FIN), so a protocol in which one side finishes sending while the other still
answers keeps working; the flow ends when both directions have ended.

Passthrough connections (``ignore_hosts``, ``tls_clienthello`` passthrough, ``rawtcp``
off) take the same path without a flow or hooks.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from gateway.layers.context import LayerContext
from gateway.proxy.arrival import Address
from gateway.proxy.streams import CHUNK

log = logging.getLogger("gateway.tcp")


class _Killed(Exception):
    pass


def _is_killed(flow: Any) -> bool:
    err = getattr(flow, "error", None)
    if err is None:
        return False
    from gateway.flow import Error

    return getattr(err, "msg", None) == Error.KILLED_MESSAGE


async def handle_tcp(
    ctx: LayerContext, reader: Any, writer: Any, dest: Address, *, passthrough: bool = False
) -> None:
    from gateway.proxy.handler import _fmt, option

    record = not passthrough and bool(option(ctx.options, "rawtcp", True))
    stream = ctx.server
    ctx.server = None
    if passthrough and stream is not None:
        stream = None  # a passthrough never reuses an intercepting server connection
    server_tls = False
    if not passthrough:
        server_tls = bool(ctx.extra.get("server_tls", ctx.extra.get("client_tls", False)))
    flow = None
    if stream is None:
        try:
            earlier = ctx.extra.pop("server_error", None)
            if earlier is not None and not passthrough:
                raise earlier  # the TLS layer already tried this server; do not try twice
            stream = await ctx.connect_server(dest, tls=server_tls, sni=ctx.extra.get("sni"))
        except (OSError, ssl.SSLError, TimeoutError, asyncio.IncompleteReadError) as e:
            log.info("TCP to %s failed: %s", _fmt(dest), e)
            ctx.client.error = ctx.client.error or f"server {_fmt(dest)} unreachable: {e}"
            if record:
                from gateway.connection import Server
                from gateway.flow import Error
                from gateway.tcp import TCPFlow

                server = Server(address=tuple(dest))
                server.error = str(e)
                flow = TCPFlow(ctx.client, server, live=True)
                await ctx.addons.trigger("tcp_start", flow)
                flow.error = Error(f"server unreachable: {e}")
                flow.live = False
                await ctx.addons.trigger("tcp_error", flow)
            return
    if record:
        from gateway.tcp import TCPFlow

        flow = TCPFlow(ctx.client, stream.server, live=True)
        await ctx.addons.trigger("tcp_start", flow)
        if _is_killed(flow):
            _close_both(writer, stream.writer)
            return
    await relay(ctx, flow, reader, writer, stream.reader, stream.writer)


async def relay(
    ctx: LayerContext | None, flow: Any, c_reader: Any, c_writer: Any, s_reader: Any, s_writer: Any
) -> None:
    """Relay until both directions ended; fires ``tcp_end``/``tcp_error`` for ``flow``."""
    tasks = [
        asyncio.create_task(_pump(ctx, flow, c_reader, s_writer, True)),
        asyncio.create_task(_pump(ctx, flow, s_reader, c_writer, False)),
    ]
    error: BaseException | None = None
    try:
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                exc = t.exception()
                if exc is not None and error is None:
                    error = exc
            if error is not None:
                for t in pending:
                    t.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                break
    except asyncio.CancelledError:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        _close_both(c_writer, s_writer)
        raise
    _close_both(c_writer, s_writer)
    if flow is None or ctx is None:
        return
    from gateway.flow import Error

    flow.live = False
    if isinstance(error, _Killed) or _is_killed(flow):
        if flow.error is None:
            flow.error = Error(Error.KILLED_MESSAGE)
        await ctx.addons.trigger("tcp_error", flow)
    elif error is not None:
        flow.error = Error(str(error) or type(error).__name__)
        await ctx.addons.trigger("tcp_error", flow)
    else:
        await ctx.addons.trigger("tcp_end", flow)


async def _pump(ctx: LayerContext | None, flow: Any, src: Any, dst: Any, from_client: bool) -> None:
    if flow is not None:
        from gateway.tcp import TCPMessage
    while True:
        data = await src.read(CHUNK)
        if not data:
            break
        if flow is not None and ctx is not None:
            msg = TCPMessage(from_client, data)
            flow.messages.append(msg)
            await ctx.addons.trigger("tcp_message", flow)
            if _is_killed(flow):
                raise _Killed
            data = msg.content
            if not data:
                continue
        if dst.is_closing():
            raise ConnectionResetError("peer closed")
        dst.write(data)
        await dst.drain()
    _half_close(dst)


def _half_close(writer: Any) -> None:
    try:
        if not writer.is_closing() and writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
    except (OSError, RuntimeError, ssl.SSLError):
        writer.close()


def _close_both(*writers: Any) -> None:
    for w in writers:
        try:
            w.close()
        except Exception:  # noqa: BLE001
            pass
