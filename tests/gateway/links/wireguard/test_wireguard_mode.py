"""The WireGuard mode server on loopback: the counters summary it logs when it stops."""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import socket
from types import SimpleNamespace

import pytest

from gateway.cli import peers as peers_cli
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


async def test_peers_add_writes_the_tunnel_settings_gateway_up_runs_with(tmp_path, capsys) -> None:
    """`gateway up --set wireguard_mtu=1280 ...` (no config.toml): a peer added afterwards
    gets the same MTU, DNS and keepalive, not the defaults."""
    port = _free_udp_port()
    options = SimpleNamespace(state_dir=str(tmp_path), wireguard_endpoint="192.0.2.1", wireguard_mtu=1280,
                              wireguard_dns=["9.9.9.9"], wireguard_keepalive=0)
    server = WireGuardServer(ProxyMode.parse(f"wireguard@127.0.0.1:{port}"), SimpleNamespace(options=options),
                             out=io.StringIO())
    await server.start()
    await server.stop()
    parser = argparse.ArgumentParser(prog="gateway")
    peers_cli.add_parser(parser.add_subparsers(dest="command"))
    assert peers_cli.run(parser.parse_args(["peers", "--state-dir", str(tmp_path), "add", "tablet"])) == 0
    conf = (tmp_path / "peers" / "tablet.conf").read_text().splitlines()
    assert "MTU = 1280" in conf and "DNS = 9.9.9.9" in conf
    assert not any(line.startswith("PersistentKeepalive") for line in conf)
    assert f"Endpoint = 192.0.2.1:{port}" in conf


async def test_a_busy_port_leaves_no_state_behind(tmp_path) -> None:
    """A second `gateway up` with a new state dir failed on the busy port after creating
    keys and peers there: nothing is written when the socket cannot open."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        state_dir = tmp_path / "state"
        handler = SimpleNamespace(options=SimpleNamespace(state_dir=str(state_dir), wireguard_endpoint="192.0.2.1"))
        server = WireGuardServer(ProxyMode.parse(f"wireguard@127.0.0.1:{port}"), handler, out=io.StringIO())
        with pytest.raises(OSError):
            await server.start()
    assert not state_dir.exists() or not any(state_dir.iterdir())


async def test_says_how_to_add_a_peer_when_none_is_left(tmp_path) -> None:
    """All peers removed: `gateway up` said nothing at all about how to connect a phone."""
    def start_output() -> tuple[io.StringIO, WireGuardServer]:
        out = io.StringIO()
        handler = SimpleNamespace(options=SimpleNamespace(state_dir=str(tmp_path), wireguard_endpoint="192.0.2.1"))
        server = WireGuardServer(ProxyMode.parse(f"wireguard@127.0.0.1:{_free_udp_port()}"), handler, out=out)
        return out, server

    out, server = start_output()
    await server.start()
    await server.stop()
    store = server.store
    state = store.load()
    state.remove_peer("phone")
    state.add_peer("tablet")
    store.save(state)
    out, server = start_output()
    await server.start()
    await server.stop()
    assert out.getvalue().splitlines() == [
        "WireGuard peers: tablet (`gateway peers show NAME --qr` shows a configuration)"]
    state.remove_peer("tablet")
    store.save(state)
    out, server = start_output()
    await server.start()
    await server.stop()
    [line] = out.getvalue().splitlines()
    assert "no peers" in line and "gateway peers add NAME" in line
