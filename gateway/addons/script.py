"""Scripts as addons: ``gateway up -s myaddon.py``.

A script is a Python file whose module-level functions named after hooks are called as
an addon, and/or whose ``addons = [...]`` list holds addon objects (as in mitmproxy).
The ``scripts`` option lists them; each script sits in the addon chain under the script
loader, in the order given.

A script that is missing, does not compile or fails while being imported is refused
with a one-line OptionsError naming the file and line, so the CLI can say what is wrong
and exit instead of running without it.  While the gateway runs, scripts are reloaded
when their file changes; a broken edit is logged and the previous version keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import logging
import os
import sys
import traceback
import types
from collections.abc import Sequence

from gateway import ctx
from gateway.optmanager import OptionsError

logger = logging.getLogger(__name__)

RELOAD_INTERVAL = 1.0
"""Seconds between checks of the scripts' modification times."""

_counter = itertools.count()


class ScriptError(Exception):
    """A script could not be loaded; the message is one line naming file and line."""


def load_script(path: str) -> types.ModuleType:
    """Import a script file as a fresh module (never cached: reloads get new code)."""
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isfile(path):
        raise ScriptError(f"No such script: {path}")
    stem = os.path.splitext(os.path.basename(path))[0]
    fullname = f"__gateway_script__.{stem}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(fullname, path)
    if spec is None or spec.loader is None:  # pragma: no cover - only for odd suffixes
        raise ScriptError(f"{path}: not a Python script")
    module = importlib.util.module_from_spec(spec)
    # Registered so that dataclasses, pickle and typing in the script can find their module.
    sys.modules[fullname] = module
    script_dir = os.path.dirname(path)
    sys.path.insert(0, script_dir)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(fullname, None)
        where = f"{e.filename or path}:{e.lineno}" if e.lineno else (e.filename or path)
        raise ScriptError(f"{where}: syntax error: {e.msg}") from None
    except Exception as e:
        sys.modules.pop(fullname, None)
        raise ScriptError(f"{_where(e, path)}: {type(e).__name__}: {e}") from None
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(script_dir)
    return module


def _where(e: BaseException, path: str) -> str:
    """``file:line`` of the deepest frame of the traceback inside the script itself."""
    frames = traceback.extract_tb(e.__traceback__)
    inside = [f for f in frames if os.path.abspath(f.filename) == path]
    frame = inside[-1] if inside else (frames[-1] if frames else None)
    return f"{frame.filename}:{frame.lineno}" if frame else path


class Script:
    """One loaded script: its module is this addon's child."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fullpath = os.path.abspath(os.path.expanduser(path))
        self.name = f"scriptmanager:{path}"
        self.ns: types.ModuleType = load_script(self.fullpath)
        self.addons: list[object] = [self.ns]
        self.mtime = _mtime(self.fullpath)

    def __repr__(self) -> str:
        return f"Script({self.path!r})"

    def changed_on_disk(self) -> bool:
        m = _mtime(self.fullpath)
        return m is not None and m != self.mtime

    def reload(self) -> None:
        """Swap in the file's current code; on failure log it and keep the old module."""
        self.mtime = _mtime(self.fullpath)
        try:
            new = load_script(self.fullpath)
        except ScriptError as e:
            logger.error(f"Reloading {self.path} failed, keeping the previous version: {e}")
            return
        manager = ctx.master.addons
        manager.remove(self.ns)
        self.ns = new
        self.addons = [new]
        try:
            manager.register(new)
        except Exception as e:
            logger.error(f"Reloaded {self.path} but it failed to start: {e}")
            return
        if manager.is_running:
            manager.invoke_addon_sync(new, "running")
        logger.info(f"Reloaded {self.path}")


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


class ScriptLoader:
    """Keeps the loaded scripts in line with the ``scripts`` option."""

    name = "scriptloader"

    def __init__(self) -> None:
        self.addons: list[Script] = []
        self._watcher: asyncio.Task[None] | None = None

    def load(self, loader: object) -> None:
        loader.add_option(  # type: ignore[attr-defined]
            "scripts", Sequence[str], [],
            "Python scripts to load as addons: module-level hook functions or `addons = [...]`.",
        )

    def configure(self, updated: set[str]) -> None:
        if "scripts" not in updated:
            return
        wanted = [os.path.abspath(os.path.expanduser(p)) for p in ctx.options.scripts]
        seen: set[str] = set()
        for original, full in zip(ctx.options.scripts, wanted, strict=True):
            if full in seen:
                raise OptionsError(f"Script given twice: {original}")
            seen.add(full)
            if not os.path.isfile(full):
                raise OptionsError(f"No such script: {original}")
        current = {s.fullpath: s for s in self.addons}
        manager = ctx.master.addons
        # Load every new script before changing anything, so one bad file changes nothing.
        fresh: list[Script] = []
        for original, full in zip(ctx.options.scripts, wanted, strict=True):
            if full not in current:
                try:
                    fresh.append(Script(original))
                except ScriptError as e:
                    raise OptionsError(str(e)) from None
        for s in list(self.addons):
            if s.fullpath not in seen:
                self.addons.remove(s)
                manager.remove(s)
        by_path = {s.fullpath: s for s in [*self.addons, *fresh]}
        self.addons[:] = [by_path[p] for p in wanted]
        manager.invalidate()
        for i, s in enumerate(fresh):
            try:
                manager.register(s)
            except Exception as e:
                for later in fresh[i:]:
                    self._drop(later)
                if isinstance(e, OptionsError):
                    raise
                raise OptionsError(f"{s.path}: {e}") from None
            if manager.is_running:
                manager.invoke_addon_sync(s, "running")

    def _drop(self, s: Script) -> None:
        if s in self.addons:
            self.addons.remove(s)
        ctx.master.addons.remove(s)

    def running(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            for s in list(self.addons):
                if s.changed_on_disk():
                    s.reload()
                    ctx.master.addons.invalidate()

    def done(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
