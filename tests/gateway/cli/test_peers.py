"""`gateway peers` beside a `gateway up` configured with its own tunnel settings."""

from __future__ import annotations

import argparse

from gateway.cli import peers as peers_cli


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="gateway")
    peers_cli.add_parser(parser.add_subparsers(dest="command"))
    return peers_cli.run(parser.parse_args(["peers", *argv]))


def test_show_prints_the_config_gateway_up_wrote_without_rewriting_it(tmp_path, capsys):
    """`gateway up --set wireguard_mtu=1280 --set wireguard_dns=9.9.9.9` wrote phone.conf;
    `gateway peers show phone` overwrote it with MTU 1420 and the tunnel DNS."""
    d = str(tmp_path)
    assert cli("--state-dir", d, "add", "phone", "--endpoint", "192.0.2.1") == 0
    conf = tmp_path / "peers" / "phone.conf"
    written_by_up = conf.read_text().replace("MTU = 1420", "MTU = 1280")
    conf.write_text(written_by_up)
    capsys.readouterr()
    assert cli("--state-dir", d, "show", "phone") == 0
    assert written_by_up in capsys.readouterr().out
    assert conf.read_text() == written_by_up
    # Asked for other settings, it renders (and writes) them.
    assert cli("--state-dir", d, "show", "phone", "--mtu", "1300") == 0
    assert "MTU = 1300" in capsys.readouterr().out and "MTU = 1300" in conf.read_text()


def test_add_follows_the_tunnel_settings_of_config_toml(tmp_path, capsys):
    """A new peer gets the MTU, DNS and keepalive the gateway runs with (config.toml in the
    state directory, which `gateway up` reads too), not the built-in defaults."""
    (tmp_path / "config.toml").write_text(
        'wireguard_mtu = 1280\nwireguard_dns = ["9.9.9.9"]\nwireguard_keepalive = 0\n'
    )
    assert cli("--state-dir", str(tmp_path), "add", "tablet", "--endpoint", "192.0.2.1") == 0
    out = capsys.readouterr().out
    assert "MTU = 1280" in out and "DNS = 9.9.9.9" in out and "PersistentKeepalive" not in out
    # Flags still win.
    assert cli("--state-dir", str(tmp_path), "add", "laptop", "--endpoint", "192.0.2.1", "--mtu", "1400") == 0
    assert "MTU = 1400" in capsys.readouterr().out


def test_add_says_a_running_gateway_takes_the_peer_without_a_restart(tmp_path, capsys):
    assert cli("--state-dir", str(tmp_path), "add", "tablet", "--endpoint", "192.0.2.1") == 0
    err = capsys.readouterr().err
    assert "without a restart" in err and "peers show tablet --qr" in err
