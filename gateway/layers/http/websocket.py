"""WebSocket after a 101: messages relayed with wsproto, recorded in ``flow.websocket``,
passed through ``websocket_message`` (which may change or drop them).

Two low-level wsproto connections, one per side (we are the server toward the client and
the client toward the server), with the permessage-deflate parameters the server
accepted.  Fragments are joined into whole messages because that is what addons see and
change; pings and pongs are passed on to the other side as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import wsproto
import wsproto.extensions
import wsproto.frame_protocol
import wsproto.utilities
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Pong,
    TextMessage,
)

from gateway.layers.context import LayerContext
from gateway.layers.http.flow_hooks import trigger

log = logging.getLogger("gateway.websocket")

READ_SIZE = 256 * 1024
MAX_MESSAGE = 64 * 1024 * 1024


def _extensions(flow: Any) -> tuple[list[Any], list[Any]]:
    client_ext: list[Any] = []
    server_ext: list[Any] = []
    header = flow.response.headers.get("sec-websocket-extensions", "")
    if header:
        for ext in wsproto.utilities.split_comma_header(header.encode("ascii", "replace")):
            name = ext.split(";", 1)[0].strip()
            if name == wsproto.extensions.PerMessageDeflate.name:
                c = wsproto.extensions.PerMessageDeflate()
                c.finalize(ext)
                client_ext.append(c)
                s = wsproto.extensions.PerMessageDeflate()
                s.finalize(ext)
                server_ext.append(s)
            else:
                log.info("ignoring unknown WebSocket extension %r", name)
    return client_ext, server_ext


class _Side:
    def __init__(self, conn: Connection, reader: Any, writer: Any, from_client: bool) -> None:
        self.conn = conn
        self.reader = reader
        self.writer = writer
        self.from_client = from_client
        self.lock = asyncio.Lock()
        self.closed = False

    async def send(self, event: Any) -> None:
        if self.closed:
            return
        try:
            data = self.conn.send(event)
        except wsproto.utilities.LocalProtocolError:
            return
        async with self.lock:
            try:
                self.writer.write(data)
                await self.writer.drain()
            except (ConnectionError, OSError):
                self.closed = True


async def relay_websocket(
    ctx: LayerContext, flow: Any, creader: Any, cwriter: Any, sreader: Any, swriter: Any
) -> None:
    from gateway.websocket import WebSocketData

    client_ext, server_ext = _extensions(flow)
    client = _Side(Connection(wsproto.ConnectionType.SERVER, client_ext), creader, cwriter, True)
    server = _Side(Connection(wsproto.ConnectionType.CLIENT, server_ext), sreader, swriter, False)
    if flow.websocket is None:
        flow.websocket = WebSocketData()
    await trigger(ctx, "websocket_start", flow)
    try:
        tasks = [
            asyncio.ensure_future(_pump(ctx, flow, client, server)),
            asyncio.ensure_future(_pump(ctx, flow, server, client)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            # When one side is gone without a close handshake, the other side is closed
            # too (there is nobody to talk to); give a closing handshake a moment.
            _, pending = await asyncio.wait(tasks, timeout=5)
            for t in pending:
                t.cancel()
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
                with contextlib.suppress(BaseException):
                    await t
    finally:
        ws = flow.websocket
        if ws.close_code is None:
            ws.close_code = 1006
        if ws.timestamp_end is None:
            ws.timestamp_end = time.time()
        for w in (cwriter, swriter):
            with contextlib.suppress(Exception):
                w.close()
        await trigger(ctx, "websocket_end", flow)


async def _pump(ctx: LayerContext, flow: Any, src: _Side, dst: _Side) -> None:
    from gateway.websocket import WebSocketMessage

    ws = flow.websocket
    fragments: list[bytes | str] = []
    while True:
        try:
            data = await src.reader.read(READ_SIZE)
        except (ConnectionError, OSError):
            data = b""
        if not data:
            if ws.closed_by_client is None:
                ws.closed_by_client = src.from_client
                ws.close_code = 1006
                ws.timestamp_end = time.time()
            src.closed = True
            with contextlib.suppress(Exception):
                dst.writer.close()
            dst.closed = True
            return
        try:
            src.conn.receive_data(data)
            events = list(src.conn.events())
        except wsproto.utilities.RemoteProtocolError as e:
            log.info("WebSocket protocol error from %s: %s", "client" if src.from_client else "server", e)
            events = []
            if ws.closed_by_client is None:
                ws.closed_by_client = src.from_client
                ws.close_code = 1002
                ws.close_reason = str(e)
            await dst.send(CloseConnection(code=1002, reason="protocol error"))
            src.closed = True
            return
        for event in events:
            if isinstance(event, Message):
                fragments.append(event.data)
                if sum(len(f) for f in fragments) > MAX_MESSAGE:
                    await src.send(CloseConnection(code=1009, reason="message too big"))
                    return
                if not event.message_finished:
                    continue
                is_text = isinstance(event, TextMessage)
                if is_text:
                    content = "".join(str(f) for f in fragments).encode()
                    opcode = wsproto.frame_protocol.Opcode.TEXT
                else:
                    content = b"".join(bytes(f) for f in fragments)  # type: ignore[arg-type]
                    opcode = wsproto.frame_protocol.Opcode.BINARY
                fragments = []
                msg = WebSocketMessage(opcode, src.from_client, content)
                ws.messages.append(msg)
                await trigger(ctx, "websocket_message", flow)
                if msg.dropped:
                    continue
                if msg.type == wsproto.frame_protocol.Opcode.TEXT:
                    await dst.send(TextMessage(data=msg.content.decode("utf-8", "replace")))
                else:
                    await dst.send(BytesMessage(data=msg.content))
            elif isinstance(event, Ping | Pong):
                await dst.send(event)
            elif isinstance(event, CloseConnection):
                if ws.closed_by_client is None:
                    ws.closed_by_client = src.from_client
                    ws.close_code = event.code
                    ws.close_reason = event.reason
                    ws.timestamp_end = time.time()
                if src.conn.state is ConnectionState.REMOTE_CLOSING:
                    await src.send(event.response())
                if dst.conn.state is ConnectionState.OPEN:
                    await dst.send(CloseConnection(code=event.code, reason=event.reason))
                if dst.conn.state is ConnectionState.CLOSED or src.conn.state is ConnectionState.CLOSED:
                    # Both close frames have passed: the TCP connections can end.
                    if dst.conn.state is ConnectionState.CLOSED:
                        with contextlib.suppress(Exception):
                            dst.writer.close()
                    with contextlib.suppress(Exception):
                        src.writer.close()
                    return
