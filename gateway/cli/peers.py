"""`gateway peers add NAME | list | show NAME [--qr] | remove NAME`: the phones of WireGuard mode.

gateway/cli/main.py calls ``add_parser(subparsers)`` and, for the "peers" command,
``run(args)``.  A running ``gateway up`` picks changes up through
``gateway.links.wireguard.config.sync_device``.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Any, TextIO

from gateway.links.wireguard.config import (
    DEFAULT_KEEPALIVE,
    PeerEntry,
    StateError,
    StateStore,
    WireGuardState,
    render_client_config,
    render_qr,
)
from gateway.links.wireguard.constants import DEFAULT_MTU
from gateway.options import CONFIG_FILE


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("peers", help="manage the devices (WireGuard peers) of `gateway up`",
                                   description="Manage the WireGuard peers (phones, laptops) of `gateway up`.")
    _state_dir_option(parser, argparse.SUPPRESS)
    actions = parser.add_subparsers(dest="peers_action", metavar="ACTION")
    actions.required = True

    add = actions.add_parser("add", help="create a peer and print its client configuration")
    add.add_argument("name")
    add.add_argument("--no-psk", action="store_true", help="no preshared key")
    _render_options(add)

    actions.add_parser("list", help="list peers")

    show = actions.add_parser("show", help="print a peer's client configuration")
    show.add_argument("name")
    _render_options(show)

    remove = actions.add_parser("remove", help="delete a peer and its configuration file")
    remove.add_argument("name")

    for sub in (add, show, remove, actions.choices["list"]):
        _state_dir_option(sub, argparse.SUPPRESS)
    return parser


def _state_dir_option(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--state-dir", default=default,
                        help="where keys and peers are kept (default: $GATEWAY_STATE_DIR or ~/.gateway)")


def _render_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--qr", action="store_true", help="also print the configuration as a QR code")
    parser.add_argument("--qr-dark-on-light", action="store_true",
                        help="draw the QR code for a terminal with a light background")
    parser.add_argument("--endpoint", help="HOST[:PORT] phones reach the gateway at (IPv6 in brackets)")
    parser.add_argument("--dns", action="append", help="DNS server for the phone (repeatable; "
                        "default: the gateway's tunnel addresses)")
    parser.add_argument("--mtu", type=int, help=f"tunnel MTU (default: wireguard_mtu of config.toml, else {DEFAULT_MTU})")
    parser.add_argument("--keepalive", type=int,
                        help="PersistentKeepalive seconds for the phone, 0: off (default: wireguard_keepalive of "
                             f"config.toml, else {DEFAULT_KEEPALIVE})")


def run(args: argparse.Namespace) -> int:
    store = StateStore(getattr(args, "state_dir", None))
    out = sys.stdout
    try:
        if args.peers_action == "add":
            state, _ = store.load_or_create()
            entry = state.add_peer(args.name, preshared_key=not args.no_psk)
            store.save(state)
            return _print_config(store, state, entry, args, out)
        state = store.load()
        if state is None:
            print(f"no WireGuard state in {store.dir} yet (run `gateway up` or `gateway peers add NAME`)",
                  file=sys.stderr)
            return 1
        if args.peers_action == "list":
            if not state.peers:
                print("no peers", file=out)
            for p in state.peers:
                print(f"{p.name:<20} {p.address4:<15} {p.address6:<28} {p.public_key}", file=out)
            return 0
        if args.peers_action == "show":
            entry = state.get_peer(args.name)
            saved = store.client_config_path(entry.name)
            if saved.exists() and all(getattr(args, k) is None for k in ("endpoint", "dns", "mtu", "keepalive")):
                # What `gateway up` wrote, with the settings it runs with: shown, not redone
                # from defaults (that rewrote MTU and DNS behind a running gateway's back).
                return _print_text(saved.read_text(), saved, args, out)
            return _print_config(store, state, entry, args, out)
        if args.peers_action == "remove":
            state.remove_peer(args.name)
            store.save(state)
            store.remove_client_config(args.name)
            print(f"removed {args.name}", file=out)
            return 0
    except StateError as e:
        print(f"gateway peers: {e}", file=sys.stderr)
        return 1
    raise AssertionError(args.peers_action)


def _print_config(store: StateStore, state: WireGuardState, entry: PeerEntry, args: argparse.Namespace,
                  out: TextIO) -> int:
    tunnel = _tunnel_settings(store, state)
    dns = args.dns if args.dns is not None else tunnel.get("dns")
    mtu = args.mtu if args.mtu is not None else tunnel.get("mtu", DEFAULT_MTU)
    keepalive = args.keepalive if args.keepalive is not None else tunnel.get("keepalive", DEFAULT_KEEPALIVE)
    text = render_client_config(state, entry, endpoint=args.endpoint, dns=dns, mtu=mtu, keepalive=keepalive)
    path = store.write_client_config(entry.name, text)
    _print_text(text, path, args, out)
    if args.peers_action == "add":
        print(f"A running `gateway up` takes {entry.name} without a restart; "
              f"`gateway peers show {entry.name} --qr` draws the QR code.", file=sys.stderr)
    return 0


def _print_text(text: str, path: Path, args: argparse.Namespace, out: TextIO) -> int:
    print(text, file=out)
    if args.qr:
        print(render_qr(text, invert=not args.qr_dark_on_light), file=out)
    print(f"# written to {path}", file=out)
    return 0


def _tunnel_settings(store: StateStore, state: WireGuardState) -> dict[str, Any]:
    """The tunnel settings `gateway up` runs with: a new peer's config must match the
    gateway's MTU and DNS.  `gateway up` records them in the state (also those given as
    `--set` only); a state it never ran with falls back to config.toml of the state
    directory, which it reads as well."""
    if state.mtu is not None:
        recorded: dict[str, Any] = {"mtu": state.mtu}
        if state.keepalive is not None:
            recorded["keepalive"] = state.keepalive
        if state.dns:
            recorded["dns"] = list(state.dns)
        return recorded
    path = Path(store.dir) / CONFIG_FILE
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        print(f"gateway peers: ignoring {path}: {e}", file=sys.stderr)
        return {}
    out: dict[str, Any] = {}
    if isinstance(data.get("wireguard_mtu"), int):
        out["mtu"] = data["wireguard_mtu"]
    if isinstance(data.get("wireguard_keepalive"), int):
        out["keepalive"] = data["wireguard_keepalive"]
    dns = data.get("wireguard_dns")
    if isinstance(dns, str):
        dns = [dns]
    if isinstance(dns, list) and dns and all(isinstance(x, str) for x in dns):
        out["dns"] = dns
    return out
