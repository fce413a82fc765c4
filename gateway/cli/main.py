"""``gateway``: the command line.

Each subcommand lives in its own module of this package with ``add_parser(subparsers)
-> ArgumentParser`` and ``run(args) -> int``.  Modules not written yet are left out of
the help, and one that fails to import does not take the other subcommands down: it
answers with a one-line error when used.

Bad input (unknown flags, bad values, missing scripts) ends in a single line on stderr
and exit status 2; no traceback, because that is the user's mistake, not ours.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from gateway.version import VERSION

SUBCOMMANDS = ["up", "down", "peers", "ca", "show"]
"""In the order they are listed in ``gateway --help``."""

EXIT_USAGE = 2
STATE_DIR_ENV = "GATEWAY_STATE_DIR"
"""Names the state directory for every command when --state-dir does not."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``gateway up: error: ... (see gateway up --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class UsageError(Exception):
    """Raised by a subcommand for bad input: printed as one line, exit status 2."""


def build_parser() -> Parser:
    parser = Parser(
        prog="gateway",
        description=(
            "An interception gateway: phones connect over WireGuard (or clients through "
            "proxy modes), and every request, TCP/UDP stream and DNS query they make is "
            "shown, recorded and scriptable with addons."
        ),
        epilog=(
            "Start with `gateway up` and scan the QR code with the WireGuard app.\n"
            "Run `gateway COMMAND --help` for the options of each command."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"gateway {VERSION}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for name in SUBCOMMANDS:
        _add_subcommand(subparsers, name)
    return parser


def _parse(parser: Parser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Like parse_args, but leftover arguments are reported by the subcommand's parser,
    so the message names ``gateway up`` and points at its help."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub = _subparsers(parser).get(getattr(args, "command", None) or "", parser)
        sub.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _add_subcommand(subparsers: Any, name: str) -> None:
    module_name = f"gateway.cli.{name}"
    try:
        module = importlib.import_module(module_name)
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    except ModuleNotFoundError as e:
        if e.name == module_name:
            return  # not written yet
        _add_broken(subparsers, name, e)
    except Exception as e:  # a broken module must not break the other commands
        _add_broken(subparsers, name, e)


def _add_broken(subparsers: Any, name: str, error: Exception) -> None:
    sub = subparsers.add_parser(name, help=f"(unavailable: {type(error).__name__})", add_help=True)
    sub.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def run(_: argparse.Namespace) -> int:
        print(f"gateway {name}: error: this command failed to load: {error}", file=sys.stderr)
        return 1

    sub.set_defaults(_run=run)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return EXIT_USAGE
    if getattr(args, "state_dir", None) is None and os.environ.get(STATE_DIR_ENV):
        # One state directory for every command: `gateway peers` adding a device to the
        # directory a running `gateway up` watches, whichever way it was named.
        args.state_dir = os.environ[STATE_DIR_ENV]
    return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    prog = f"gateway {args.command}"
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error worth a traceback.
        try:
            sys.stdout = None  # type: ignore[assignment]
        finally:
            return 0  # noqa: B012
    except Exception as e:
        message = _user_error(e)
        if message is None:
            raise
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_USAGE


def _user_error(e: Exception) -> str | None:
    """The one-line message for errors caused by the user's input, None for our bugs."""
    from gateway.addonmanager import AddonManagerError
    from gateway.addons.script import ScriptError
    from gateway.optmanager import OptionsError

    if isinstance(e, OptionsError | AddonManagerError | ScriptError | UsageError):
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
