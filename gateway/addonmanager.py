"""The addon manager: holds the addons in order and calls their hooks.

An addon is any object (or module) with methods named after hooks (``gateway.hooks``).
Addons run in the order they were added; an addon's ``addons`` attribute lists child
addons that run right after it (depth first), which is how a script's ``addons = [...]``
and the script loader's scripts take their place in the chain.

Hook dispatch is the hot path of every flow, so the list of (addon, method) pairs for a
hook name is computed once and kept until the chain changes (``register``/``remove``);
an addon that grows a hook method after it was added must call ``invalidate()``.

Failure policy: a hook that raises is logged with its traceback and the next addon
still runs, because one broken script must not take connections down.  Two exceptions
are let through on purpose: ``OptionsError`` from ``configure`` (the option change is
refused and rolled back) and ``AddonHalt`` (the addon asks that later addons not see
this event).
"""

from __future__ import annotations

import difflib
import inspect
import logging
import types
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from gateway import hooks
from gateway.optmanager import OptionsError

if TYPE_CHECKING:
    from gateway.master import Master

logger = logging.getLogger(__name__)

__all__ = ["AddonHalt", "AddonManager", "AddonManagerError", "Loader", "OptionsError", "traverse"]


class AddonManagerError(Exception):
    """Adding an addon failed (e.g. two addons with one name)."""


class AddonHalt(Exception):
    """Raised from a hook: stop here, later addons do not see this event."""


def _get_name(addon: Any) -> str:
    name = getattr(addon, "name", None)
    if isinstance(name, str) and name:
        return name
    if isinstance(addon, types.ModuleType):
        return addon.__name__
    return type(addon).__name__.lower()


def traverse(chain: Iterable[Any]) -> Iterator[Any]:
    """Each addon, followed by its ``addons`` children, depth first."""
    for a in chain:
        yield a
        children = getattr(a, "addons", None)
        if children and not isinstance(children, str | bytes):
            yield from traverse(children)


class Loader:
    """Passed to ``load(loader)``: how an addon declares its options (and commands)."""

    def __init__(self, master: Master) -> None:
        self.master = master

    def add_option(
        self,
        name: str,
        typespec: Any,
        default: Any,
        help: str,
        choices: Sequence[str] | None = None,
    ) -> None:
        """Declare an option; declaring it again with the same type keeps its value.

        Re-declaration happens when a script is reloaded or when a core option is also
        declared by the addon that uses it; both are normal.
        """
        options = self.master.options
        if name in options:
            existing = options.option(name)
            same_type = _same_typespec(existing.typespec, typespec)
            if same_type:
                existing.help = help
                existing.choices = list(choices) if choices else None
                if existing.default != default:
                    existing.default = default
                return
            logger.warning(f"Over-riding existing option {name} (type {existing.typespec} -> {typespec})")
            options.remove_option(name)
        options.add_option(name, typespec, default, help, choices)

    def add_command(self, path: str, func: Callable[..., Any]) -> None:
        """Register a command by name (kept in ``master.commands``)."""
        commands = getattr(self.master, "commands", None)
        if isinstance(commands, dict):
            commands[path] = func


def _same_typespec(a: Any, b: Any) -> bool:
    from gateway.optmanager import _normalise_typespec

    try:
        return _normalise_typespec(a) == _normalise_typespec(b)
    except TypeError:
        return False


class AddonManager:
    def __init__(self, master: Master) -> None:
        self.master = master
        self.chain: list[Any] = []
        """The top-level addons, in order."""
        self.lookup: dict[str, Any] = {}
        """Name -> addon, for every addon including children."""
        self._hook_cache: dict[str, list[tuple[Any, Callable[..., Any]]]] = {}
        self.configured = False
        """Set once the master has sent the initial ``configure``: later addons get it on add."""
        self.is_running = False
        """Set once ``running`` was sent: later addons get ``running`` on add."""
        master.options.changed.connect(self._configure_all)

    # -- membership --------------------------------------------------------------------

    def get(self, name: str) -> Any | None:
        return self.lookup.get(name)

    def __contains__(self, addon: object) -> bool:
        return any(a is addon for a in traverse(self.chain))

    def __len__(self) -> int:
        return sum(1 for _ in traverse(self.chain))

    def __repr__(self) -> str:
        return f"AddonManager({[_get_name(a) for a in self.chain]})"

    def invalidate(self) -> None:
        """Forget the cached hook lists (after changing an addon's methods or children)."""
        self._hook_cache.clear()

    def register(self, addon: Any) -> Any:
        """Load an addon and its children without adding it to the top-level chain.

        Used for children added later to a parent already in the chain (scripts under
        the script loader).  Runs ``load``, then applies deferred option values the
        addon's options were waiting for; if the gateway is already configured (and
        running), the addon also gets ``configure`` with every option (and ``running``).
        """
        new = list(traverse([addon]))
        for a in new:
            name = _get_name(a)
            if name in self.lookup and self.lookup[name] is not a:
                raise AddonManagerError(f"An addon called {name!r} already exists.")
        loader = Loader(self.master)
        for a in new:
            self.invoke_addon_sync_one(a, hooks.LoadHook(loader))
        for a in new:
            self.lookup[_get_name(a)] = a
            self._warn_misspelt(a)
        self.invalidate()
        self.master.options.process_deferred()
        if self.configured:
            for a in new:
                self.invoke_addon_sync_one(a, hooks.ConfigureHook(self.master.options.keys()), reraise_options=True)
        return addon

    def add(self, *addons: Any) -> None:
        """Append addons to the chain, each loaded (and its children) as it is added."""
        for a in addons:
            self.register(a)
            self.chain.append(a)
            self.invalidate()
        if self.is_running:
            for a in addons:
                for sub in traverse([a]):
                    self.invoke_addon_sync_one(sub, hooks.RunningHook())

    def remove(self, addon: Any) -> None:
        """Remove an addon (top-level or child) and its children; they get ``done``."""
        gone = list(traverse([addon]))
        for a in gone:
            name = _get_name(a)
            if self.lookup.get(name) is a:
                del self.lookup[name]
        self.chain = [a for a in self.chain if a is not addon]
        self.invalidate()
        for a in gone:
            self.invoke_addon_sync_one(a, hooks.DoneHook())

    def clear(self) -> None:
        for a in reversed(list(self.chain)):
            self.remove(a)

    # -- dispatch ----------------------------------------------------------------------

    def _hooks_for(self, name: str) -> list[tuple[Any, Callable[..., Any]]]:
        found = self._hook_cache.get(name)
        if found is None:
            found = []
            for a in traverse(self.chain):
                func = getattr(a, name, None)
                if func is not None and callable(func) and not isinstance(func, type):
                    found.append((a, func))
            self._hook_cache[name] = found
        return found

    def has_hook(self, name: str) -> bool:
        """Whether any addon implements ``name``: layers may skip building costly arguments."""
        return bool(self._hooks_for(name))

    async def trigger(self, event: str | hooks.Hook, *args: Any) -> None:
        """Call hook ``event`` on every addon in order, awaiting coroutines.

        ``trigger("request", flow)`` or ``trigger(RequestHook(flow))``.  When the argument
        is a flow that an addon intercepted, this returns only once it is resumed
        (``flow.resume()`` from any task), so the connection holding it waits while
        other connections go on.
        """
        name, args = _name_and_args(event, args)
        for addon, func in self._hooks_for(name):
            try:
                result = func(*args)
                if inspect.isawaitable(result):
                    await result
            except AddonHalt:
                break
            except OptionsError:
                if name == "configure":
                    raise
                _log_addon_error(addon, name)
            except Exception:
                _log_addon_error(addon, name)
        if args:
            await _wait_if_intercepted(args[0])

    async def trigger_event(self, event: hooks.Hook) -> None:
        await self.trigger(event)

    def trigger_sync(self, event: str | hooks.Hook, *args: Any) -> None:
        """Like ``trigger`` for code outside the event loop; async hooks are refused (logged)."""
        name, args = _name_and_args(event, args)
        for addon, func in self._hooks_for(name):
            try:
                self._call_sync(addon, name, func, args)
            except AddonHalt:
                break

    async def invoke_addon(self, addon: Any, event: str | hooks.Hook, *args: Any) -> None:
        """Send one event to one addon and its children (no interception wait)."""
        name, args = _name_and_args(event, args)
        for a in traverse([addon]):
            func = getattr(a, name, None)
            if func is None or not callable(func):
                continue
            try:
                result = func(*args)
                if inspect.isawaitable(result):
                    await result
            except AddonHalt:
                break
            except OptionsError:
                if name == "configure":
                    raise
                _log_addon_error(a, name)
            except Exception:
                _log_addon_error(a, name)

    def invoke_addon_sync(self, addon: Any, event: str | hooks.Hook, *args: Any) -> None:
        """Send one event to one addon and its children, synchronously.

        OptionsError propagates (a ``configure`` refusing a value)."""
        name, args = _name_and_args(event, args)
        for a in traverse([addon]):
            func = getattr(a, name, None)
            if func is None or not callable(func):
                continue
            try:
                self._call_sync(a, name, func, args)
            except AddonHalt:
                break

    def invoke_addon_sync_one(
        self, addon: Any, event: str | hooks.Hook, *args: Any, reraise_options: bool = False
    ) -> None:
        """Send one event to this addon only (not its children)."""
        name, args = _name_and_args(event, args)
        func = getattr(addon, name, None)
        if func is None or not callable(func):
            return
        try:
            self._call_sync(addon, name, func, args)
        except OptionsError:
            if reraise_options and name == "configure":
                raise
            _log_addon_error(addon, name)

    @staticmethod
    def _call_sync(addon: Any, name: str, func: Callable[..., Any], args: Sequence[Any]) -> None:
        try:
            result = func(*args)
        except (AddonHalt, OptionsError):
            raise
        except Exception:
            _log_addon_error(addon, name)
            return
        if inspect.isawaitable(result):
            _schedule_or_refuse(addon, name, result)

    def _configure_all(self, updated: set[str]) -> None:
        """Options changed: every addon's ``configure(updated)``, in order.

        OptionsError goes back to ``OptManager.update``, which rolls the change back.
        """
        for addon, func in self._hooks_for("configure"):
            self._call_sync(addon, "configure", func, [set(updated)])

    # -- misspelt hooks ----------------------------------------------------------------

    def _warn_misspelt(self, addon: Any) -> None:
        known = hooks.all_hooks
        for method in _own_public_callables(addon):
            if method in known:
                continue
            close = difflib.get_close_matches(method, known, n=1, cutoff=0.85)
            if close:
                logger.warning(
                    f"Addon {_get_name(addon)}: {method!r} is not a hook and will never be called; "
                    f"did you mean {close[0]!r}?"
                )


def _own_public_callables(addon: Any) -> list[str]:
    """Methods written for this addon: its module's own functions, or its class's methods."""
    names: list[str] = []
    if isinstance(addon, types.ModuleType):
        for n, v in vars(addon).items():
            if not n.startswith("_") and inspect.isfunction(v) and v.__module__ == addon.__name__:
                names.append(n)
        return names
    for cls in type(addon).__mro__:
        if cls is object:
            continue
        for n, v in vars(cls).items():
            if not n.startswith("_") and (inspect.isfunction(v) or isinstance(v, staticmethod | classmethod)):
                names.append(n)
    return names


def _name_and_args(event: str | hooks.Hook, args: Sequence[Any]) -> tuple[str, list[Any]]:
    if isinstance(event, hooks.Hook):
        return event.name, event.args()
    return event, list(args)


async def _wait_if_intercepted(arg: Any) -> None:
    # Duck-typed on the Flow API (intercepted / wait_for_resume) so that the manager does
    # not import the flow model.
    if getattr(arg, "intercepted", False) is True:
        wait = getattr(arg, "wait_for_resume", None)
        if wait is not None:
            await wait()


def _log_addon_error(addon: Any, hook: str) -> None:
    import sys

    etype, value, tb = sys.exc_info()
    # Drop our own frame so that the traceback starts in the addon's code.
    if tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    logger.error(f"Addon error in {_get_name(addon)}.{hook}: {value!r}", exc_info=(etype, value, tb))


def _schedule_or_refuse(addon: Any, name: str, awaitable: Any) -> None:
    """An async hook called from synchronous code: run it on the loop if there is one."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        logger.error(f"Addon {_get_name(addon)}: async {name} hook called outside the event loop; skipped")
        return
    task = loop.create_task(awaitable)
    _background.add(task)

    def finished(t: asyncio.Task[Any]) -> None:
        _background.discard(t)
        if not t.cancelled() and t.exception() is not None:
            exc = t.exception()
            logger.error(f"Addon error in {_get_name(addon)}.{name}: {exc!r}", exc_info=exc)

    task.add_done_callback(finished)


_background: set[Any] = set()
