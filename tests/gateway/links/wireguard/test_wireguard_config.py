"""State file, address assignment, client configuration, QR code and the `gateway peers` CLI."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import stat

import pytest
import qrcode

from gateway.cli import peers as peers_cli
from gateway.links.wireguard import config as wg_config
from gateway.links.wireguard import keys
from gateway.links.wireguard.config import (
    StateError,
    StateStore,
    WireGuardState,
    create_device,
    format_endpoint,
    render_client_config,
    render_qr,
    sync_device,
)


def _parse(text: str) -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        elif "=" in line:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()  # type: ignore[index]
    return sections


def test_state_is_created_once_and_kept_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = StateStore(tmp_path / "state")
    state, created = store.load_or_create(first_peer="phone")
    assert created and [p.name for p in state.peers] == ["phone"]
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    again, created = store.load_or_create(first_peer="other")
    assert not created and again == state
    assert keys.public_key(keys.from_base64(state.private_key)) == keys.from_base64(state.public_key)
    assert ipaddress.IPv6Network(state.ipv6_range).subnet_of(ipaddress.IPv6Network("fd00::/8"))


def test_addresses_are_assigned_and_reused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = WireGuardState.new("10.7.0.0/29", "fd12:3456:789a::/64")
    assert (state.server_address4, state.server_address6) == ("10.7.0.1", "fd12:3456:789a::1")
    a, b = state.add_peer("a"), state.add_peer("b")
    assert (a.address4, a.address6, b.address4, b.address6) == ("10.7.0.2", "fd12:3456:789a::2",
                                                                 "10.7.0.3", "fd12:3456:789a::3")
    state.remove_peer("a")
    assert state.add_peer("c").address4 == "10.7.0.2"
    for n in range(4):
        state.add_peer(f"p{n}") if n < 3 else None
    with pytest.raises(StateError):
        state.add_peer("one-too-many")
    with pytest.raises(StateError):
        state.add_peer("b")
    with pytest.raises(StateError):
        state.add_peer("bad name/with slash")
    assert WireGuardState.from_json(state.to_json()) == state


@pytest.mark.parametrize("endpoint,expected", [
    ("192.0.2.1", "192.0.2.1:51820"),
    ("192.0.2.1:4000", "192.0.2.1:4000"),
    ("2001:db8::1", "[2001:db8::1]:51820"),
    ("[2001:db8::1]:4000", "[2001:db8::1]:4000"),
    ("gateway.example", "gateway.example:51820"),
])
def test_client_config(endpoint: str, expected: str) -> None:
    state = WireGuardState.new("10.0.0.0/24", "fd00:1:2::/64")
    peer = state.add_peer("phone")
    conf = _parse(render_client_config(state, peer, endpoint=endpoint))
    assert conf["Interface"] == {"PrivateKey": peer.private_key, "Address": "10.0.0.2/32, fd00:1:2::2/128",
                                 "DNS": "10.0.0.1, fd00:1:2::1", "MTU": "1420"}
    assert conf["Peer"] == {"PublicKey": state.public_key, "PresharedKey": peer.preshared_key,
                            "AllowedIPs": "0.0.0.0/0, ::/0", "Endpoint": expected, "PersistentKeepalive": "25"}


def test_client_config_options() -> None:
    state = WireGuardState.new()
    peer = state.add_peer("laptop", preshared_key=False)
    conf = _parse(render_client_config(state, peer, endpoint="192.0.2.1", port=5555, dns=["192.0.2.53"],
                                       mtu=1280, keepalive=0))
    assert "PresharedKey" not in conf["Peer"] and "PersistentKeepalive" not in conf["Peer"]
    assert conf["Interface"]["DNS"] == "192.0.2.53" and conf["Interface"]["MTU"] == "1280"
    assert conf["Peer"]["Endpoint"] == "192.0.2.1:5555"
    assert format_endpoint("fe80::1%eth0", 1) == "[fe80::1%eth0]:1"


def test_endpoint_guess_without_default_route(monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    """No default route (a lab, an offline LAN): a global interface address beats the
    hostname; with none either, the hostname comes with a one-line warning naming the fix."""
    state = WireGuardState.new()
    peer = state.add_peer("phone")
    monkeypatch.setattr(wg_config, "default_route_source", lambda: None)
    monkeypatch.setattr(wg_config, "interface_addresses", lambda: ["10.7.0.5", "2001:db8::5"])
    with caplog.at_level(logging.WARNING, logger="gateway.wireguard"):
        conf = _parse(render_client_config(state, peer))
    assert conf["Peer"]["Endpoint"] == "10.7.0.5:51820"
    assert not caplog.records

    monkeypatch.setattr(wg_config, "interface_addresses", lambda: [])
    with caplog.at_level(logging.WARNING, logger="gateway.wireguard"):
        conf = _parse(render_client_config(state, peer))
    assert conf["Peer"]["Endpoint"] == f"{socket.gethostname()}:51820"
    [record] = caplog.records
    assert "--set wireguard_endpoint=ADDRESS" in record.getMessage() and "\n" not in record.getMessage()

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gateway.wireguard"):
        _parse(render_client_config(state, peer, endpoint="192.0.2.1"))  # told: no guess, no warning
    assert not caplog.records


def test_interface_addresses_are_usable_unicast() -> None:
    for text in wg_config.interface_addresses():
        ip = ipaddress.ip_address(text)
        assert not (ip.is_loopback or ip.is_link_local or ip.is_multicast)


@pytest.mark.parametrize("invert", [True, False])
def test_qr_code_half_blocks_encode_the_qr_matrix(invert: bool) -> None:
    text = "[Interface]\nPrivateKey = x\n"
    drawn = render_qr(text, invert=invert).splitlines()
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L, border=2)
    qr.add_data(text)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    top = {"█": True, "▀": True, "▄": False, " ": False}
    bottom = {"█": True, "▀": False, "▄": True, " ": False}
    decoded = []
    for line in drawn:
        decoded.append([top[ch] != invert for ch in line])
        decoded.append([bottom[ch] != invert for ch in line])
    assert decoded[:len(matrix)] == matrix


def test_create_and_sync_device() -> None:
    state = WireGuardState.new()
    state.add_peer("a")
    device = create_device(state)
    assert [p.name for p in device.peers.values()] == ["a"]
    assert device.allowed_ips.lookup(state.peers[0].address6).name == "a"
    state.add_peer("b")
    state.remove_peer("a")
    sync_device(device, state)
    assert [p.name for p in device.peers.values()] == ["b"]
    assert device.allowed_ips.lookup("10.0.0.2") is None


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="gateway")
    peers_cli.add_parser(parser.add_subparsers(dest="command"))
    return peers_cli.run(parser.parse_args(["peers", *argv]))


def test_peers_cli(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    d = str(tmp_path)
    assert _cli("--state-dir", d, "list") == 1  # nothing yet
    assert _cli("--state-dir", d, "add", "alice", "--endpoint", "[2001:db8::7]:51820", "--qr") == 0
    out = capsys.readouterr().out
    assert "Endpoint = [2001:db8::7]:51820" in out and "█" in out
    assert (tmp_path / "peers" / "alice.conf").read_text() in out
    assert _cli("add", "bob", "--state-dir", d, "--endpoint", "192.0.2.1") == 0
    capsys.readouterr()
    assert _cli("list", "--state-dir", d) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listing] == ["alice", "bob"]
    assert _cli("--state-dir", d, "show", "bob", "--endpoint", "192.0.2.9:1") == 0
    assert "Endpoint = 192.0.2.9:1" in capsys.readouterr().out
    assert _cli("--state-dir", d, "remove", "alice") == 0
    assert not (tmp_path / "peers" / "alice.conf").exists()
    assert _cli("--state-dir", d, "show", "alice") == 1
    assert "no peer named 'alice'" in capsys.readouterr().err
    assert _cli("--state-dir", d, "add", "bob") == 1
