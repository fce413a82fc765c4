"""``gateway up``: run the gateway until Ctrl-C.

Every flag is a shorthand for an option (``gateway up --options`` lists them all);
``--set name=value`` reaches any option, including those that addons and scripts
declare.  Precedence, lowest first: defaults, the config file (``config.toml`` in the
state directory, or ``--conf FILE``), flags, ``--set``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from gateway.options import CONFIG_FILE, DEFAULT_STATE_DIR, Options
from gateway.optmanager import OptionsError

EXAMPLES = """\
examples:
  gateway up                                  WireGuard endpoint for phones (UDP 51820)
  gateway up --mode regular                   HTTP(S) proxy on 127.0.0.1:8080
  gateway up --mode socks5 --mode regular -w flows.gw
  gateway up --mode regular -s examples/add_header.py --set flow_detail=2
  gateway up --mode reverse:https://example.com@8443
"""

# Flags that map one-to-one to options: (dest, option name).
_FLAG_OPTIONS = [
    ("mode", "mode"),
    ("listen_host", "listen_host"),
    ("listen_port", "listen_port"),
    ("scripts", "scripts"),
    ("save_stream_file", "save_stream_file"),
    ("state_dir", "state_dir"),
    ("proxyauth", "proxyauth"),
    ("upstream_auth", "upstream_auth"),
    ("upstream_proxy", "upstream_proxy"),
    ("ignore_hosts", "ignore_hosts"),
    ("allow_hosts", "allow_hosts"),
    ("tcp_hosts", "tcp_hosts"),
    ("udp_hosts", "udp_hosts"),
    ("dns_server", "dns_server"),
    ("lan", "tun_lan"),
]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "up",
        help="run the gateway (WireGuard endpoint by default, or proxy modes)",
        description=(
            "Run the gateway until Ctrl-C, printing one line per finished flow. Without "
            "--mode it is a WireGuard endpoint for phones; proxy modes listen on "
            "localhost unless --listen-host says otherwise."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    net = p.add_argument_group("modes and listening")
    net.add_argument(
        "--mode", action="append", metavar="SPEC",
        help="mode[:data][@[host:]port]: regular, socks5, upstream:URL, reverse:URL, transparent, "
             "wireguard, tun[:NAME] (repeat for several modes side by side)",
    )
    net.add_argument("--listen-host", metavar="HOST", help="address to listen on (default: per mode)")
    net.add_argument("-p", "--listen-port", type=int, metavar="PORT", help="port to listen on (default: per mode)")
    net.add_argument("--proxyauth", metavar="USER:PASS", help="require this login from proxy clients ('any' accepts all)")
    net.add_argument("--upstream-auth", metavar="USER:PASS", help="login sent to the upstream proxy")
    net.add_argument("--upstream-proxy", metavar="URL",
                     help="chain the other modes' server connections (WireGuard too) through this "
                          "HTTP(S) proxy, e.g. http://proxy:3128 (CONNECT per TCP connection)")
    net.add_argument(
        "--lan", action="append", metavar="IFACE",
        help="with --mode tun: intercept what hosts on this LAN interface route through this host (repeatable)",
    )
    net.add_argument("--dns-server", action="append", metavar="ADDR", help="upstream DNS resolver (repeatable; default: system)")

    tls = p.add_argument_group("interception")
    tls.add_argument("-k", "--ssl-insecure", action="store_true", default=None,
                     help="do not verify upstream server certificates")
    tls.add_argument("--ignore-hosts", action="append", metavar="REGEX",
                     help="pass matching hosts through without interception (repeatable)")
    tls.add_argument("--allow-hosts", action="append", metavar="REGEX",
                     help="intercept only matching hosts (repeatable)")
    tls.add_argument("--tcp-hosts", action="append", metavar="REGEX", help="treat matching hosts as raw TCP")
    tls.add_argument("--udp-hosts", action="append", metavar="REGEX", help="treat matching hosts as raw UDP")

    out = p.add_argument_group("addons and output")
    out.add_argument("-s", "--script", dest="scripts", action="extend", nargs="+", metavar="FILE",
                     help="load Python addon scripts (repeatable; -s examples/*.py loads them all)")
    out.add_argument("-w", "--save", dest="save_stream_file", metavar="FILE",
                     help="stream finished flows to FILE (read it with `gateway show FILE`)")
    out.add_argument("-q", "--quiet", action="store_true", help="no flow lines, errors only")
    out.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    out.add_argument("--flow-detail", type=int, choices=range(5), metavar="0-4",
                     help="0 nothing, 1 a line per flow (default), 2 +headers, 3 +bodies (cut), 4 +full bodies")
    out.add_argument("--showhost", action="store_true", default=None,
                     help="show the Host header instead of the connection address in URLs")

    cfg = p.add_argument_group("configuration")
    cfg.add_argument("--set", dest="setoptions", action="append", default=[], metavar="NAME=VALUE",
                     help="set any option (repeatable; see --options)")
    cfg.add_argument("--state-dir", metavar="DIR", help=f"state directory (default: $GATEWAY_STATE_DIR or {DEFAULT_STATE_DIR})")
    cfg.add_argument("--conf", metavar="FILE",
                     help=f"TOML config file (default: {CONFIG_FILE} in the state directory, if present)")
    cfg.add_argument("--options", action="store_true", help="list every option with its default and help, then exit")
    return p


def apply_args(opts: Options, args: argparse.Namespace) -> None:
    """Config file, then flags, then --set; unknown names are kept for later addons."""
    from gateway.cli.main import UsageError

    state_dir = args.state_dir or opts.state_dir
    if args.conf:
        if not os.path.isfile(args.conf):
            raise UsageError(f"no such config file: {args.conf}")
        opts.load_paths(args.conf, defer=True)
    else:
        opts.load_paths(os.path.join(os.path.expanduser(state_dir), CONFIG_FILE), defer=True)

    updates: dict[str, Any] = {}
    for dest, name in _FLAG_OPTIONS:
        value = getattr(args, dest, None)
        if value is not None:
            updates[name] = value
    if args.ssl_insecure:
        updates["ssl_insecure"] = True
    if args.showhost:
        updates["showhost"] = True
    if args.quiet:
        updates["flow_detail"] = 0
        updates["termlog_verbosity"] = "error"
    if args.verbose:
        updates["termlog_verbosity"] = "debug"
    if args.flow_detail is not None:
        updates["flow_detail"] = args.flow_detail
    if "mode" in updates:
        _check_modes(updates["mode"])
    if "scripts" in updates:
        # Applied on their own, after the rest: scripts then see the final core options.
        scripts = updates.pop("scripts")
        opts.update_defer(**updates)
        opts.update(scripts=scripts)
    else:
        opts.update_defer(**updates)
    opts.set(*args.setoptions, defer=True)
    opts.check_deferred()


def _check_modes(specs: list[str]) -> None:
    from gateway.cli.main import UsageError

    try:
        from gateway.proxy.mode_specs import ProxyMode
    except ImportError:  # pragma: no cover - model not built yet
        return
    for spec in specs:
        try:
            ProxyMode.parse(spec)
        except ValueError as e:
            raise UsageError(str(e)) from None


def list_options(opts: Options) -> str:
    from gateway.optmanager import typespec_to_str

    lines = []
    for name in sorted(opts):
        o = opts.option(name)
        default = o.default
        shown = "(none)" if default is None else ("[]" if default == [] else repr(default))
        lines.append(f"{name}  ({typespec_to_str(o.typespec)}, default {shown})")
        if o.choices:
            lines.append(f"    one of: {', '.join(o.choices)}")
        for line in o.help.splitlines():
            lines.append(f"    {line}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from gateway.master import run_loop

    return run_loop(_up(args))


async def _up(args: argparse.Namespace) -> int:
    import logging

    from gateway.addons import default_addons
    from gateway.master import Master, install_signal_handlers

    opts = Options()
    master = Master(opts, with_termlog=not args.options)
    try:
        master.addons.add(*default_addons())
        if args.options:
            print(list_options(opts))
            return 0
        try:
            apply_args(opts, args)
        except OptionsError as e:
            if str(e).startswith("Unknown option"):
                raise OptionsError(f"{e} (see 'gateway up --options')") from None
            raise
        log = logging.getLogger("gateway")
        if master.addons.get("proxyserver") is None and opts.server:
            log.warning("this build has no proxy server yet: running addons only, no listeners")
        if opts.save_stream_file and master.addons.get("save") is None:
            log.warning("this build cannot save flows yet: --save is ignored")
        install_signal_handlers(master)
        code = await master.run()
        return code
    finally:
        if master.termlog is not None:
            master.termlog.uninstall()
        sys.stdout.flush()


__all__ = ["add_parser", "run", "apply_args", "list_options"]
