"""``client_replay``: send recorded requests to their servers again, as mitmproxy's option.

Each flow is copied, marked ``is_replay = "request"`` and run through the same exchange
as live traffic (gateway.layers.http.exchange), so every addon sees requestheaders,
request, responseheaders and response (or error) for it.  ``client_replay_concurrency``
bounds how many run at once (-1: all).  The replay connects to servers directly; TLS
certificates are verified unless ``ssl_insecure``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from typing import Any

from gateway import ctx
from gateway.optmanager import OptionsError

log = logging.getLogger(__name__)


class _ReplayClient:
    """The client side of a replayed exchange: the recorded body in, the response kept
    on the flow only."""

    request_trailers = None

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def request_body(self) -> AsyncIterator[bytes]:
        if self.body:
            yield self.body

    async def send_continue(self) -> None:
        pass

    async def send_response(self, response: Any) -> None:
        pass

    async def start_response(self, response: Any) -> Any:
        return self

    async def data(self, data: bytes) -> None:
        pass

    async def end(self, trailers: Any = None) -> None:
        pass

    async def send_error_response(self, status_code: int, message: str) -> None:
        pass


async def _connect_direct(address: tuple[str, int], *, tls: bool, sni: str | None = None,
                          alpn: list[bytes] | None = None) -> Any:
    from gateway.connection import ConnectionState, Server
    from gateway.layers.context import ServerStream

    sslctx = None
    if tls:
        sslctx = ssl.create_default_context()
        if getattr(ctx.options, "ssl_insecure", False):
            sslctx.check_hostname = False
            sslctx.verify_mode = ssl.CERT_NONE
        if alpn:
            sslctx.set_alpn_protocols([a.decode() for a in alpn])
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(address[0], address[1], ssl=sslctx,
                                server_hostname=(sni or address[0]) if tls else None, limit=2**20),
        30,
    )
    server = Server(address=tuple(address), transport_protocol="tcp")
    server.peername = writer.get_extra_info("peername")[:2]
    server.sockname = writer.get_extra_info("sockname")[:2]
    if tls:
        server.tls = True
        server.sni = sni or address[0]
        obj = writer.get_extra_info("ssl_object")
        proto = obj.selected_alpn_protocol() if obj is not None else None
        server.alpn = proto.encode() if proto else None
    server.state = ConnectionState.OPEN
    return ServerStream(reader, writer, server)


class ClientReplay:
    def __init__(self) -> None:
        self.queue: list[Any] = []
        self.inflight = 0
        self._task: asyncio.Task[None] | None = None
        self.done_flows: list[Any] = []

    def load(self, loader: Any) -> None:
        loader.add_option("client_replay", Sequence[str], [], "Replay client requests from a saved file.")
        loader.add_option("client_replay_concurrency", int, 1,
                          "Concurrency limit on in-flight client replay requests. Currently the only valid "
                          "values are 1 and -1 (no limit).")
        loader.add_command("replay.client", self.start_replay)
        loader.add_command("replay.client.file", self.load_file)
        loader.add_command("replay.client.count", self.count)
        loader.add_command("replay.client.stop", self.stop_replay)

    def configure(self, updated: set[str]) -> None:
        if "client_replay_concurrency" in updated:
            if ctx.options.client_replay_concurrency not in (-1, 1):
                raise OptionsError("Currently the only valid client_replay_concurrency values are -1 and 1.")
        if "client_replay" in updated and ctx.options.client_replay:
            self.load_file(*ctx.options.client_replay)

    def running(self) -> None:
        self._kick()

    def count(self) -> int:
        return len(self.queue) + self.inflight

    def load_file(self, *paths: str) -> None:
        from gateway.io.framing import FlowReadException
        from gateway.io.reader import read_flows_from_paths

        try:
            flows = read_flows_from_paths(paths)
        except FlowReadException as e:
            raise OptionsError(str(e)) from e
        self.start_replay(flows)

    def start_replay(self, flows: Sequence[Any]) -> None:
        """Queue copies of these flows for replay."""
        from gateway.http import HTTPFlow

        for f in flows:
            if not isinstance(f, HTTPFlow):
                continue
            if f.live or f.intercepted:
                log.warning("Can't replay a live or intercepted flow.")
                continue
            if f.request.raw_content is None:
                log.warning("Can't replay a flow with missing content.")
                continue
            c = f.copy()
            c.response = None
            c.error = None
            c.websocket = None
            c.is_replay = "request"
            c.live = True
            self.queue.append(c)
        self._kick()

    def stop_replay(self) -> None:
        self.queue.clear()
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _kick(self) -> None:
        if not self.queue or (self._task is not None and not self._task.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # started from `running` once the loop is up
        self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        limit = ctx.options.client_replay_concurrency
        sem = asyncio.Semaphore(10_000 if limit == -1 else max(1, limit))
        pending: set[asyncio.Task[None]] = set()
        while self.queue:
            flow = self.queue.pop(0)
            await sem.acquire()
            self.inflight += 1
            task = asyncio.get_running_loop().create_task(self._replay(flow))
            pending.add(task)

            def finished(t: asyncio.Task[None]) -> None:
                pending.discard(t)
                self.inflight -= 1
                sem.release()

            task.add_done_callback(finished)
        if pending:
            await asyncio.wait(pending)
        if not ctx.options.keepserving and ctx.master is not None:
            ctx.master.shutdown()

    async def _replay(self, flow: Any) -> None:
        from gateway.layers.context import LayerContext
        from gateway.layers.http.exchange import run_exchange
        from gateway.layers.http.upstream import ServerPool
        from gateway.proxy.arrival import Arrival

        arrival = Arrival("regular", "tcp", ("client-replay", 0), ("", 0))
        lctx = LayerContext(
            options=ctx.options, addons=ctx.master.addons, client=flow.client_conn, arrival=arrival,
            connect_server=_connect_direct, next_layer=None,  # type: ignore[arg-type]
        )
        pool = ServerPool(lctx)
        body = flow.request.raw_content or b""
        flow.request.raw_content = body
        try:
            alpn = [b"h2", b"http/1.1"] if flow.request.http_version == "HTTP/2.0" else [b"http/1.1"]
            await run_exchange(lctx, pool, flow, _ReplayClient(body), alpn=alpn)
        except Exception:  # noqa: BLE001 - one bad flow must not stop the replay
            log.exception("client replay failed for %s", flow.request.url)
        finally:
            flow.live = False
            await pool.close()
            self.done_flows.append(flow)
