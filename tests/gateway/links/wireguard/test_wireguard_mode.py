"""The WireGuard mode server on loopback: the counters summary it logs when it stops."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
from types import SimpleNamespace

from gateway.links.wireguard.mode import WireGuardServer, format_counters
from gateway.proxy.mode_specs import ProxyMode


def test_format_counters_lists_drops_by_reason_first() -> None:
    line = format_counters("wireguard", {"replay": 2, "handshakes_completed": 1, "bad_mac1": 1, "roamed": 0},
                           is_drop=lambda k: k in ("replay", "bad_mac1", "roamed"))
    assert line == "wireguard counters: drops: bad_mac1=1, replay=2 (total 3); handshakes_completed=1"
    assert format_counters("netstack", {"rx.udp": 5}, is_drop=lambda k: not k.startswith("rx.")) == (
        "netstack counters: drops: none; rx.udp=5"
    )


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_stop_logs_wireguard_and_netstack_counters(tmp_path, caplog) -> None:
    port = _free_udp_port()
    handler = SimpleNamespace(options=SimpleNamespace(state_dir=str(tmp_path), wireguard_endpoint="127.0.0.1"),
                              listen_addresses=None)
    server = WireGuardServer(ProxyMode.parse(f"wireguard@127.0.0.1:{port}"), handler, out=io.StringIO())
    await server.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"\x01not a handshake", ("127.0.0.1", port))
            s.sendto(b"\x04\x00\x00\x00" + bytes(28), ("127.0.0.1", port))  # data for no session
        async with asyncio.timeout(5):
            while sum(server.device.counters.values()) < 2:
                await asyncio.sleep(0.01)
    finally:
        with caplog.at_level(logging.INFO, logger="gateway.wireguard"):
            await server.stop()
    lines = [r.getMessage() for r in caplog.records if "counters" in r.getMessage()]
    assert lines[0] == "wireguard counters: drops: malformed=1, unknown_index=1 (total 2)"
    assert lines[1].startswith("netstack counters: drops: none")


async def test_the_written_config_points_at_the_port_we_listen_on(tmp_path) -> None:
    port = _free_udp_port()
    handler = SimpleNamespace(options=SimpleNamespace(state_dir=str(tmp_path), wireguard_endpoint="192.0.2.1"),
                              listen_addresses=None)
    server = WireGuardServer(ProxyMode.parse(f"wireguard@127.0.0.1:{port}"), handler, out=io.StringIO())
    await server.start()
    await server.stop()
    conf = (tmp_path / "peers" / "phone.conf").read_text()
    assert f"Endpoint = 192.0.2.1:{port}" in conf.splitlines()
    assert server.store.load().listen_port == port  # so `gateway peers add` writes the same
