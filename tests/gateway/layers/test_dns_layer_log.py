"""Log lines of the DNS layer name the client as an address and say why once."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from gateway.layers.dns import DnsLayer


async def test_malformed_query_log_line(caplog) -> None:  # type: ignore[no-untyped-def]
    client = SimpleNamespace(peername=("::ffff:10.99.1.2", 54767, 0, 0), proxy_mode=SimpleNamespace(type_name="wireguard"))
    layer = DnsLayer(SimpleNamespace(client=client, options=SimpleNamespace(dns_server=[])), ("192.0.2.53", 53), "udp")
    with caplog.at_level(logging.INFO, logger="gateway.dns"):
        assert await layer.answer(b"\x00\x01garbage") is None
    [message] = [r.getMessage() for r in caplog.records]
    assert message.startswith("client 10.99.1.2:54767 sent a malformed DNS message")
    assert message.lower().count("malformed") == 1, message
    assert layer.bad == 1
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gateway.dns"):
        assert await layer.answer(b"\x00\x01\x01\x00\x00\x05" + bytes(6)) is None  # 5 questions, none there
    [message] = [r.getMessage() for r in caplog.records]
    assert message.lower().count("malformed") == 1 and "10.99.1.2:54767" in message, message
