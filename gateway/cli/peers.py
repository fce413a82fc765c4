"""`gateway peers add NAME | list | show NAME [--qr] | remove NAME`: the phones of WireGuard mode.

gateway/cli/main.py calls ``add_parser(subparsers)`` and, for the "peers" command,
``run(args)``.  A running ``gateway up`` picks changes up through
``gateway.links.wireguard.config.sync_device``.
"""

from __future__ import annotations

import argparse
import sys

from gateway.links.wireguard.config import (
    DEFAULT_KEEPALIVE,
    StateError,
    StateStore,
    render_client_config,
    render_qr,
)
from gateway.links.wireguard.constants import DEFAULT_MTU


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
    parser.add_argument("--mtu", type=int, default=DEFAULT_MTU)
    parser.add_argument("--keepalive", type=int, default=DEFAULT_KEEPALIVE,
                        help="PersistentKeepalive seconds for the phone (0: off)")


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
            return _print_config(store, state, state.get_peer(args.name), args, out)
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


def _print_config(store: StateStore, state, entry, args: argparse.Namespace, out) -> int:  # type: ignore[no-untyped-def]
    text = render_client_config(state, entry, endpoint=args.endpoint, dns=args.dns, mtu=args.mtu,
                                keepalive=args.keepalive)
    path = store.write_client_config(entry.name, text)
    print(text, file=out)
    if args.qr:
        print(render_qr(text, invert=not args.qr_dark_on_light), file=out)
    print(f"# written to {path}", file=out)
    return 0
