"""Typed options: the one store of settings that the CLI, config file, scripts and addons share.

An option has a name, a type, a default and a help text.  Types are the few that can be
written on a command line and in a TOML file without ambiguity: ``bool``, ``int``,
``float``, ``str``, ``Optional[str]``, ``Optional[int]`` and ``Sequence[str]``.  Every change
goes through ``update()`` so subscribers (the addon manager, which calls each addon's
``configure(updated)``) always see a consistent set of new values; a subscriber that
raises ``OptionsError`` rolls the change back, so a bad value never stays half-applied.

Names follow mitmproxy's ``OptManager`` so that addons port unchanged.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tomllib
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

SUPPORTED_TYPES: tuple[Any, ...] = (
    bool,
    int,
    float,
    str,
    Optional[str],  # noqa: UP045 - mitmproxy addons spell it this way
    Optional[int],  # noqa: UP045
    Sequence[str],
)


class OptionsError(Exception):
    """A bad option name or value; its message is a single line fit for the terminal."""


def typespec_to_str(typespec: Any) -> str:
    if typespec in (bool, int, float, str):
        return typespec.__name__
    if typespec == Optional[str]:  # noqa: UP045
        return "optional str"
    if typespec == Optional[int]:  # noqa: UP045
        return "optional int"
    if typespec == Sequence[str]:
        return "sequence of str"
    return str(typespec)


def _normalise_typespec(typespec: Any) -> Any:
    """Accept ``str | None`` and ``list[str]`` as spellings of the supported types."""
    if typespec in SUPPORTED_TYPES:
        return typespec
    args = set(typing.get_args(typespec))
    if args == {str, type(None)}:
        return Optional[str]  # noqa: UP045
    if args == {int, type(None)}:
        return Optional[int]  # noqa: UP045
    origin = typing.get_origin(typespec)
    if origin in (list, tuple, Sequence) and typing.get_args(typespec) in ((str,), (str, ...)):
        return Sequence[str]
    raise TypeError(f"unsupported option type {typespec!r}")


def check_type(name: str, value: Any, typespec: Any) -> None:
    """Raise OptionsError unless ``value`` fits ``typespec``."""
    ok: bool
    if typespec is bool:
        ok = isinstance(value, bool)
    elif typespec is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif typespec is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif typespec is str:
        ok = isinstance(value, str)
    elif typespec == Optional[str]:  # noqa: UP045
        ok = value is None or isinstance(value, str)
    elif typespec == Optional[int]:  # noqa: UP045
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
    elif typespec == Sequence[str]:
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    else:  # pragma: no cover - add_option refuses other types
        ok = False
    if not ok:
        raise OptionsError(
            f"option {name}: expected {typespec_to_str(typespec)}, got {value!r} ({type(value).__name__})"
        )


@dataclass
class _Option:
    name: str
    typespec: Any
    default: Any
    help: str
    choices: Sequence[str] | None = None
    value: Any = field(default=None)
    is_set: bool = False

    def current(self) -> Any:
        v = self.value if self.is_set else self.default
        # Lists are handed out as copies so that `opts.mode.append(x)` cannot bypass update().
        return list(v) if isinstance(v, list) else v

    def set(self, value: Any) -> None:
        self.value = list(value) if isinstance(value, tuple) else value
        self.is_set = True

    def reset(self) -> None:
        self.value = None
        self.is_set = False

    def has_changed(self) -> bool:
        return self.is_set and self.value != self.default


class _Signal:
    """A minimal blinker-style signal: ``connect(fn)``, ``disconnect(fn)``, ``send(...)``."""

    def __init__(self) -> None:
        self.receivers: list[Callable[..., Any]] = []

    def connect(self, receiver: Callable[..., Any]) -> None:
        if receiver not in self.receivers:
            self.receivers.append(receiver)

    def disconnect(self, receiver: Callable[..., Any]) -> None:
        with contextlib.suppress(ValueError):
            self.receivers.remove(receiver)

    def send(self, *args: Any) -> None:
        for receiver in list(self.receivers):
            receiver(*args)


class OptManager:
    """Option store with attribute access (``opts.listen_port``).

    ``changed`` is sent ``updated: set[str]`` after every successful change; a receiver
    may raise ``OptionsError`` to reject it, which restores the previous values and
    re-raises to the caller of ``update``/``set``.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_options", {})
        object.__setattr__(self, "deferred", {})
        object.__setattr__(self, "changed", _Signal())
        object.__setattr__(self, "errored", _Signal())

    # -- declaration -------------------------------------------------------------------

    def add_option(
        self,
        name: str,
        typespec: Any,
        default: Any,
        help: str,
        choices: Sequence[str] | None = None,
    ) -> None:
        if name in self._options:
            raise ValueError(f"option {name} already exists")
        if hasattr(type(self), name) or name.startswith("_"):
            raise ValueError(f"option name {name!r} clashes with an OptManager attribute")
        typespec = _normalise_typespec(typespec)
        check_type(name, default, typespec)
        if choices is not None and default not in choices and default is not None:
            raise ValueError(f"option {name}: default {default!r} is not one of its choices")
        if isinstance(default, tuple):
            default = list(default)
        self._options[name] = _Option(name, typespec, default, help, list(choices) if choices else None)

    def remove_option(self, name: str) -> None:
        self._options.pop(name, None)

    # -- reading -----------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        options = object.__getattribute__(self, "_options")
        if name in options:
            return options[name].current()
        raise AttributeError(f"No such option: {name}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._options:
            self.update(**{name: value})
        else:
            raise OptionsError(f"No such option: {name}")

    def __contains__(self, name: object) -> bool:
        return name in self._options

    def __iter__(self) -> Iterator[str]:
        return iter(self._options)

    def __len__(self) -> int:
        return len(self._options)

    def keys(self) -> set[str]:
        return set(self._options)

    def items(self) -> list[tuple[str, Any]]:
        return [(k, o.current()) for k, o in self._options.items()]

    def default(self, name: str) -> Any:
        return copy.deepcopy(self._options[name].default)

    def has_changed(self, name: str) -> bool:
        """True when the option holds a value other than its default."""
        return self._options[name].has_changed()

    def option(self, name: str) -> _Option:
        """The declaration (type, default, help, choices) of one option."""
        try:
            return self._options[name]
        except KeyError:
            raise OptionsError(f"No such option: {name}") from None

    # -- changing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def rollback(self, names: Sequence[str] | set[str], reraise: bool = False) -> Iterator[None]:
        """Restore the given options if the body raises OptionsError."""
        saved = {n: (self._options[n].value, self._options[n].is_set) for n in names if n in self._options}
        try:
            yield
        except OptionsError as e:
            for n, (value, is_set) in saved.items():
                self._options[n].value, self._options[n].is_set = value, is_set
            self.errored.send(e)
            # Tell receivers the values went back, so they can undo what they built from them.
            with contextlib.suppress(OptionsError):
                self.changed.send(set(saved))
            if reraise:
                raise

    def update_known(self, **kwargs: Any) -> dict[str, Any]:
        """Update the options that exist; return the others untouched."""
        known = {k: v for k, v in kwargs.items() if k in self._options}
        unknown = {k: v for k, v in kwargs.items() if k not in self._options}
        for name, value in known.items():
            opt = self._options[name]
            check_type(name, value, opt.typespec)
            if opt.choices is not None and value is not None and value not in opt.choices:
                raise OptionsError(
                    f"option {name}: {value!r} is not one of {', '.join(map(str, opt.choices))}"
                )
        if known:
            with self.rollback(set(known), reraise=True):
                for name, value in known.items():
                    self._options[name].set(value)
                self.changed.send(set(known))
        return unknown

    def update(self, **kwargs: Any) -> None:
        unknown = self.update_known(**kwargs)
        if unknown:
            raise OptionsError(f"Unknown option(s): {', '.join(sorted(unknown))}")

    def update_defer(self, **kwargs: Any) -> None:
        """Update known options; keep unknown ones until an addon declares them."""
        unknown = self.update_known(**kwargs)
        self.deferred.update(unknown)

    def reset(self) -> None:
        """Every option back to its default."""
        names = set(self._options)
        for o in self._options.values():
            o.reset()
        self.changed.send(names)

    def subscribe(self, func: Callable[[OptManager, set[str]], Any], opts: Sequence[str]) -> None:
        """Call ``func(options, updated)`` when any of ``opts`` changes."""
        for name in opts:
            if name not in self._options:
                raise OptionsError(f"No such option: {name}")
        wanted = set(opts)

        def receiver(updated: set[str]) -> None:
            if updated & wanted:
                func(self, updated)

        self.changed.connect(receiver)

    # -- parsing from strings (--set name=value) -----------------------------------------

    def parse_setval(self, name: str, values: list[str | None]) -> Any:
        """Turn the strings given for one option on the command line into a typed value.

        ``values`` holds one entry per ``--set`` occurrence; ``None`` stands for ``--set
        name`` without ``=``.  Sequence options collect every value given in one call,
        replacing what was there; ``--set name`` alone empties them.
        """
        o = self.option(name)
        if o.typespec == Sequence[str]:
            return [v for v in values if v is not None]
        if len(values) > 1:
            raise OptionsError(f"option {name}: given {len(values)} times, expects one value")
        v = values[0]
        if o.typespec in (str, Optional[str]):  # noqa: UP045
            if v is None:
                if o.typespec is str:
                    raise OptionsError(f"option {name}: expects a value ({name}=VALUE)")
                return None
            value: Any = v
        elif o.typespec in (int, Optional[int]):  # noqa: UP045
            if v is None or v == "":
                if o.typespec is int:
                    raise OptionsError(f"option {name}: expects an integer ({name}=N)")
                return None
            try:
                value = int(v, 0)
            except ValueError:
                raise OptionsError(f"option {name}: not an integer: {v!r}") from None
        elif o.typespec is float:
            try:
                value = float(v) if v is not None else None
            except ValueError:
                value = None
            if value is None:
                raise OptionsError(f"option {name}: not a number: {v!r}")
        elif o.typespec is bool:
            lowered = "true" if v is None else v.strip().lower()
            if lowered in ("true", "yes", "on", "1"):
                value = True
            elif lowered in ("false", "no", "off", "0"):
                value = False
            else:
                raise OptionsError(f"option {name}: expects true or false, got {v!r}")
        else:  # pragma: no cover
            raise OptionsError(f"option {name}: cannot be set from a string")
        if o.choices is not None and value is not None and value not in o.choices:
            raise OptionsError(f"option {name}: {value!r} is not one of {', '.join(map(str, o.choices))}")
        return value

    def set(self, *specs: str, defer: bool = False) -> None:
        """Apply ``"name=value"`` strings (``--set``) in one update.

        Unknown names raise OptionsError, or with ``defer=True`` wait in ``deferred``
        until an addon (typically a script loaded later) declares them.
        """
        grouped: dict[str, list[str | None]] = {}
        for spec in specs:
            name, sep, value = spec.partition("=")
            name = name.strip()
            if not name:
                raise OptionsError(f"bad --set {spec!r}: expected name=value")
            grouped.setdefault(name, []).append(value if sep else None)
        processed: dict[str, Any] = {}
        unknown: dict[str, list[str | None]] = {}
        for name, values in grouped.items():
            if name in self._options:
                processed[name] = self.parse_setval(name, values)
            else:
                unknown[name] = values
        if unknown and not defer:
            raise OptionsError(f"Unknown option(s): {', '.join(sorted(unknown))}")
        self.update(**processed)
        for name, values in unknown.items():
            self.deferred[name] = _DeferredSet(values)

    def process_deferred(self) -> None:
        """Apply deferred values whose options now exist."""
        ready: dict[str, Any] = {}
        for name in list(self.deferred):
            if name in self._options:
                value = self.deferred.pop(name)
                ready[name] = self.parse_setval(name, value.values) if isinstance(value, _DeferredSet) else value
        if ready:
            self.update(**ready)

    def check_deferred(self) -> None:
        """Raise OptionsError naming any option that was set but never declared."""
        if self.deferred:
            raise OptionsError(f"Unknown option(s): {', '.join(sorted(self.deferred))}")

    # -- config files ------------------------------------------------------------------

    def load_toml(self, text: str, source: str = "config", defer: bool = True) -> None:
        """Apply a TOML document whose top-level keys are option names."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise OptionsError(f"{source}: invalid TOML: {e}") from None
        values: dict[str, Any] = {}
        for name, value in data.items():
            if isinstance(value, dict):
                raise OptionsError(f"{source}: [{name}] tables are not options; use top-level keys")
            if name in self._options:
                values[name] = self._from_config(name, value, source)
            elif defer:
                self.deferred[name] = value
            else:
                raise OptionsError(f"{source}: unknown option {name}")
        self.update(**values)

    def _from_config(self, name: str, value: Any, source: str) -> Any:
        """TOML already types values; strings are also accepted for non-string options."""
        o = self._options[name]
        if isinstance(value, str) and o.typespec not in (str, Optional[str]):  # noqa: UP045
            if o.typespec == Sequence[str]:
                return [value]
            try:
                return self.parse_setval(name, [value])
            except OptionsError as e:
                raise OptionsError(f"{source}: {e}") from None
        try:
            check_type(name, value, o.typespec)
        except OptionsError as e:
            raise OptionsError(f"{source}: {e}") from None
        return value

    def load_paths(self, *paths: str, defer: bool = True) -> None:
        """Apply each existing TOML file in turn; a missing file is skipped."""
        for path in paths:
            path = os.path.expanduser(path)
            if not os.path.exists(path):
                continue
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise OptionsError(f"{path}: cannot read: {e}") from None
            self.load_toml(text, source=path, defer=defer)

    def serialize_toml(self, defaults: bool = False) -> str:
        """The options as a TOML document (changed ones only unless ``defaults``)."""
        lines: list[str] = []
        for name, o in sorted(self._options.items()):
            if not defaults and not o.has_changed():
                continue
            value = o.current()
            if value is None:
                continue  # TOML has no null; leaving it out means the default
            for help_line in o.help.splitlines():
                lines.append(f"# {help_line}")
            lines.append(f"{name} = {_toml_value(value)}")
            lines.append("")
        return "\n".join(lines)

    def __repr__(self) -> str:
        changed = ", ".join(f"{k}={o.current()!r}" for k, o in self._options.items() if o.has_changed())
        return f"{type(self).__name__}({changed})"


@dataclass
class _DeferredSet:
    """Strings from ``--set`` for an option nobody has declared yet."""

    values: list[str | None]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")  # pragma: no cover
