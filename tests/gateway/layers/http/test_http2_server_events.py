"""How the HTTP/2 upstream handles a server that resets streams, sends GOAWAY or tries
to push: a scripted h2 server over TLS (ALPN h2) behind reverse mode."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import httpx
import pytest

pytestmark = pytest.mark.timeout(60)


async def h2_server(tls_cert: tuple[str, str], on_request: Callable[[Any, int, dict], None],
                    seen_settings: list[dict]) -> tuple[asyncio.base_events.Server, int]:
    sslctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sslctx.load_cert_chain(*tls_cert)
    sslctx.set_alpn_protocols(["h2"])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        try:
            while data := await reader.read(65536):
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RemoteSettingsChanged):
                        seen_settings.append({k: v.new_value for k, v in ev.changed_settings.items()})
                    if isinstance(ev, h2.events.RequestReceived):
                        on_request(conn, ev.stream_id, dict(ev.headers))
                writer.write(conn.data_to_send())
                await writer.drain()
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=sslctx)
    return server, server.sockets[0].getsockname()[1]


def answer(conn: Any, sid: int, body: bytes) -> None:
    conn.send_headers(sid, [(b":status", b"200"), (b"content-length", str(len(body)).encode())])
    conn.send_data(sid, body, end_stream=True)


async def test_server_reset_stream_gives_502_and_error_flow(proxy_factory: Any, tls_cert: Any) -> None:
    def on_request(conn: Any, sid: int, headers: dict) -> None:
        if headers[b":path"] == b"/reset":
            conn.reset_stream(sid, 0x2)
        else:
            answer(conn, sid, b"ok")

    server, port = await h2_server(tls_cert, on_request, [])
    try:
        proxy = await proxy_factory(mode=f"reverse:https://127.0.0.1:{port}@0")
        async with httpx.AsyncClient(http1=False, http2=True) as client:
            r = await client.get(f"http://127.0.0.1:{proxy.port}/reset")
            assert r.status_code == 502
            r2 = await client.get(f"http://127.0.0.1:{proxy.port}/fine")
        assert r2.text == "ok"
        (flow,) = proxy.recorder.flows("error")
        assert "reset" in flow.error.msg
    finally:
        server.close()


async def test_goaway_fails_unanswered_streams_and_a_new_connection_follows(
    proxy_factory: Any, tls_cert: Any
) -> None:
    def on_request(conn: Any, sid: int, headers: dict) -> None:
        if headers[b":path"] == b"/goaway":
            conn.close_connection(last_stream_id=sid - 2)
        else:
            answer(conn, sid, b"ok")

    server, port = await h2_server(tls_cert, on_request, [])
    try:
        proxy = await proxy_factory(mode=f"reverse:https://127.0.0.1:{port}@0")
        async with httpx.AsyncClient(http1=False, http2=True) as client:
            assert (await client.get(f"http://127.0.0.1:{proxy.port}/first")).text == "ok"
            r = await client.get(f"http://127.0.0.1:{proxy.port}/goaway")
            assert r.status_code == 502
        async with httpx.AsyncClient(http1=False, http2=True) as client:
            assert (await client.get(f"http://127.0.0.1:{proxy.port}/again")).text == "ok"
        assert len(proxy.connects) == 2
    finally:
        server.close()


async def test_upstream_connection_disables_server_push(proxy_factory: Any, tls_cert: Any) -> None:
    settings: list[dict] = []
    pushed: list[bool] = []

    def on_request(conn: Any, sid: int, headers: dict) -> None:
        try:
            conn.push_stream(sid, sid + 1, [(b":method", b"GET"), (b":scheme", b"https"),
                                          (b":authority", b"x"), (b":path", b"/pushed")])
            pushed.append(True)
        except h2.exceptions.ProtocolError:
            pushed.append(False)
        answer(conn, sid, b"ok")

    server, port = await h2_server(tls_cert, on_request, settings)
    try:
        proxy = await proxy_factory(mode=f"reverse:https://127.0.0.1:{port}@0")
        async with httpx.AsyncClient(http1=False, http2=True) as client:
            assert (await client.get(f"http://127.0.0.1:{proxy.port}/")).text == "ok"
        assert settings and settings[0].get(h2.settings.SettingCodes.ENABLE_PUSH) == 0
        assert pushed == [False]  # h2 refuses to push to a peer that disabled it
    finally:
        server.close()
