"""Ready-made flows for tests, as ``mitmproxy.test.tflow``: every field holds a realistic
value so that state round trips, renderers and filters are exercised on real data.

Each call returns fresh objects (new ids) with fixed timestamps (1 Jan 2000), so tests can
compare them.
"""

from __future__ import annotations

import uuid
from typing import Any

from gateway import connection, dns, flow, http, tcp, udp, websocket
from gateway.connection import ConnectionState
from gateway.proxy.mode_specs import ProxyMode

T0 = 946681200.0  # 2000-01-01 00:00:00 UTC (+/- timezone), as mitmproxy's test flows


def ttcpmessages() -> list[tcp.TCPMessage]:
    return [
        tcp.TCPMessage(True, b"hello", T0 + 1),
        tcp.TCPMessage(True, b"it's me", T0 + 2),
        tcp.TCPMessage(False, b"it's also me", T0 + 3),
        tcp.TCPMessage(False, b"\x00\xff binary", T0 + 4),
    ]


def ttcpflow(client_conn: Any = True, server_conn: Any = True, messages: Any = True, err: Any = None) -> tcp.TCPFlow:
    if client_conn is True:
        client_conn = tclient_conn()
    if server_conn is True:
        server_conn = tserver_conn()
    if messages is True:
        messages = ttcpmessages()
    if err is True:
        err = terr()
    f = tcp.TCPFlow(client_conn, server_conn)
    f.timestamp_created = client_conn.timestamp_start
    f.messages = messages
    f.error = err
    f.live = True
    return f


def tudpflow(client_conn: Any = True, server_conn: Any = True, messages: Any = True, err: Any = None) -> udp.UDPFlow:
    if client_conn is True:
        client_conn = tclient_conn(transport_protocol="udp")
    if server_conn is True:
        server_conn = tserver_conn(transport_protocol="udp")
    if messages is True:
        messages = [
            udp.UDPMessage(True, b"hello", T0 + 1),
            udp.UDPMessage(True, b"it's me", T0 + 2),
            udp.UDPMessage(False, b"it's also me", T0 + 3),
        ]
    if err is True:
        err = terr()
    f = udp.UDPFlow(client_conn, server_conn)
    f.timestamp_created = client_conn.timestamp_start
    f.messages = messages
    f.error = err
    f.live = True
    return f


def twebsocketflow(messages: bool = True, err: Any = None, close_code: int | None = None,
                   close_reason: str = "") -> http.HTTPFlow:  # fmt: skip
    """An HTTPFlow upgraded to WebSocket, with a text, a binary and a dropped message."""
    flow_ = tflow(req=True, resp=True)
    flow_.request = http.Request(
        "example.com", 80, b"GET", b"http", b"example.com", b"/ws", b"HTTP/1.1",
        http.Headers([
            (b"Host", b"example.com"), (b"Connection", b"upgrade"), (b"Upgrade", b"websocket"),
            (b"Sec-WebSocket-Version", b"13"), (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        ]),
        b"", None, T0, T0 + 1,
    )  # fmt: skip
    flow_.response = http.Response(
        b"HTTP/1.1", 101, b"Switching Protocols",
        http.Headers([
            (b"Connection", b"upgrade"), (b"Upgrade", b"websocket"),
            (b"Sec-WebSocket-Accept", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ]),
        b"", None, T0 + 2, T0 + 3,
    )  # fmt: skip
    flow_.websocket = websocket.WebSocketData()
    if messages:
        flow_.websocket.messages = [
            websocket.WebSocketMessage(websocket.Opcode.BINARY, True, b"hello binary", T0 + 4),
            websocket.WebSocketMessage(websocket.Opcode.TEXT, True, "hello text ✓".encode(), T0 + 5),
            websocket.WebSocketMessage(websocket.Opcode.TEXT, False, b"it's me", T0 + 6),
            websocket.WebSocketMessage(websocket.Opcode.TEXT, False, b"dropped", T0 + 7, dropped=True),
        ]
    if err is True:
        err = terr()
    flow_.error = err
    if close_code is not None:
        flow_.websocket.close_code = close_code
        flow_.websocket.close_reason = close_reason
        flow_.websocket.closed_by_client = True
        flow_.websocket.timestamp_end = T0 + 8
    return flow_


def tdnsreq() -> dns.DNSMessage:
    return dns.DNSMessage(
        id=42, query=True, op_code=dns.op_codes.QUERY, authoritative_answer=False, truncation=False,
        recursion_desired=True, recursion_available=False, reserved=0,
        response_code=dns.response_codes.NOERROR,
        questions=[dns.Question("dns.google", dns.types.A, dns.classes.IN)],
        answers=[], authorities=[], additionals=[], timestamp=T0,
    )  # fmt: skip


def tdnsresp() -> dns.DNSMessage:
    return dns.DNSMessage(
        id=42, query=False, op_code=dns.op_codes.QUERY, authoritative_answer=False, truncation=False,
        recursion_desired=True, recursion_available=True, reserved=0,
        response_code=dns.response_codes.NOERROR,
        questions=[dns.Question("dns.google", dns.types.A, dns.classes.IN)],
        answers=[
            dns.ResourceRecord.A("dns.google", "8.8.8.8", ttl=32),  # type: ignore[arg-type]
            dns.ResourceRecord.A("dns.google", "8.8.4.4", ttl=32),  # type: ignore[arg-type]
        ],
        authorities=[], additionals=[], timestamp=T0 + 1,
    )  # fmt: skip


def tdnsflow(*, client_conn: Any = True, server_conn: Any = True, req: Any = True, resp: Any = False,
             err: Any = None, live: bool = True) -> dns.DNSFlow:  # fmt: skip
    if client_conn is True:
        client_conn = tclient_conn(transport_protocol="udp")
    if server_conn is True:
        server_conn = tserver_conn(
            transport_protocol="udp", address=("8.8.8.8", 53), peername=("8.8.8.8", 53), tls=False,
            sni=None, alpn=None, alpn_offers=[], cipher=None, tls_version=None, timestamp_tls_setup=None,
        )
    if req is True:
        req = tdnsreq()
    if resp is True:
        resp = tdnsresp()
    if err is True:
        err = terr()
    f = dns.DNSFlow(client_conn, server_conn, live=live)
    f.timestamp_created = req.timestamp if req else T0
    f.request = req
    f.response = resp or None
    f.error = err
    return f


def tflow(*, client_conn: Any = True, server_conn: Any = True, req: Any = True, resp: Any = None,
          err: Any = None, ws: Any = None, live: bool = True) -> http.HTTPFlow:  # fmt: skip
    """An HTTPFlow: ``req``/``resp``/``err``/``ws`` True for the defaults, or an object, or None."""
    if client_conn is True:
        client_conn = tclient_conn()
    if server_conn is True:
        server_conn = tserver_conn()
    if req is True:
        req = treq()
    if resp is True:
        resp = tresp()
    if err is True:
        err = terr()
    if ws is True:
        ws = websocket.WebSocketData(
            messages=[websocket.WebSocketMessage(websocket.Opcode.TEXT, True, b"hello", T0 + 4)]
        )
    f = http.HTTPFlow(client_conn, server_conn, live=live)
    f.timestamp_created = req.timestamp_start if req else T0
    f.request = req
    f.response = resp or None
    f.error = err
    f.websocket = ws
    return f


def tdummyflow(client_conn: Any = True, server_conn: Any = True, err: Any = None) -> flow.Flow:
    """A flow of a type no layer produces, for code that must handle any ``Flow``."""
    if client_conn is True:
        client_conn = tclient_conn()
    if server_conn is True:
        server_conn = tserver_conn()
    if err is True:
        err = terr()
    f = DummyFlow(client_conn, server_conn)
    f.error = err
    f.live = True
    return f


class DummyFlow(flow.Flow):
    type = "dummy"


def tclient_conn(**kwargs: Any) -> connection.Client:
    """A client that came in over WireGuard (peer "phone"), with TLS set up; ``kwargs``
    override attributes."""
    default: dict[str, Any] = dict(
        id=str(uuid.uuid4()),
        peername=("10.0.0.2", 52044),
        sockname=("93.184.216.34", 443),
        state=ConnectionState.OPEN,
        timestamp_start=T0,
        timestamp_tls_setup=T0 + 0.1,
        timestamp_end=T0 + 6,
        tls=True,
        sni="example.com",
        alpn=b"http/1.1",
        alpn_offers=[b"h2", b"http/1.1"],
        cipher="TLS_AES_128_GCM_SHA256",
        cipher_list=["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"],
        tls_version="TLSv1.3",
        proxy_mode=ProxyMode.parse("wireguard"),
        wireguard_peer="phone",
        wireguard_key="xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
    )
    default.update(kwargs)
    return connection.Client(**default)


def tserver_conn(**kwargs: Any) -> connection.Server:
    """A TLS connection to example.com; ``kwargs`` override attributes."""
    default: dict[str, Any] = dict(
        id=str(uuid.uuid4()),
        address=("example.com", 443),
        peername=("93.184.216.34", 443),
        sockname=("192.168.1.5", 40000),
        state=ConnectionState.OPEN,
        timestamp_start=T0 + 0.2,
        timestamp_tcp_setup=T0 + 0.3,
        timestamp_tls_setup=T0 + 0.4,
        timestamp_end=T0 + 5,
        tls=True,
        sni="example.com",
        alpn=b"http/1.1",
        alpn_offers=[b"http/1.1"],
        cipher="TLS_AES_128_GCM_SHA256",
        tls_version="TLSv1.3",
    )
    default.update(kwargs)
    return connection.Server(**default)


def terr(content: str = "error") -> flow.Error:
    return flow.Error(content, T0 + 7)


def treq(**kwargs: Any) -> http.Request:
    """A GET request with a repeated header, a cookie and a body."""
    default: dict[str, Any] = dict(
        host="example.com",
        port=443,
        method=b"GET",
        scheme=b"https",
        authority=b"",
        path=b"/path?q=1",
        http_version=b"HTTP/1.1",
        headers=http.Headers([
            (b"Host", b"example.com"), (b"header", b"qvalue"), (b"Accept", b"text/html"),
            (b"Accept", b"application/json"), (b"Cookie", b"session=abc; theme=dark"),
            (b"content-length", b"7"),
        ]),  # fmt: skip
        content=b"content",
        trailers=None,
        timestamp_start=T0,
        timestamp_end=T0 + 1,
    )
    default.update(kwargs)
    return http.Request(**default)


def tresp(**kwargs: Any) -> http.Response:
    """A 200 response with Set-Cookie attributes and a body."""
    default: dict[str, Any] = dict(
        http_version=b"HTTP/1.1",
        status_code=200,
        reason=b"OK",
        headers=http.Headers([
            (b"header-response", b"svalue"), (b"Content-Type", b"text/plain; charset=utf-8"),
            (b"Set-Cookie", b"id=a3fWa; Path=/; Secure; HttpOnly"), (b"content-length", b"7"),
        ]),  # fmt: skip
        content=b"message",
        trailers=None,
        timestamp_start=T0 + 2,
        timestamp_end=T0 + 3,
    )
    default.update(kwargs)
    return http.Response(**default)
