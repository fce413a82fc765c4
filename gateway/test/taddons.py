"""A harness for testing addons without a running proxy (like ``mitmproxy.test.taddons``).

::

    with taddons.context(MyAddon()) as tctx:
        tctx.configure(addon, my_option=True)
        await tctx.cycle(addon, tflow.tflow(resp=True))
        assert tctx.master.has_log("something happened")

The context owns a real ``Master`` and ``Options`` (so ``ctx.options`` and
``ctx.master`` work inside hooks), records every log record, and behaves as a master
that is already configured: addons added inside it get ``configure`` at once.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway import ctx, hooks
from gateway.addons.script import Script
from gateway.master import Master
from gateway.options import Options


class _RecordingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class RecordingMaster(Master):
    """A master that keeps every log record, for ``has_log`` assertions."""

    def __init__(self, opts: Options) -> None:
        super().__init__(opts)
        self._recorder = _RecordingHandler()

    @property
    def logs(self) -> list[logging.LogRecord]:
        return self._recorder.records

    def has_log(self, txt: str, level: str | None = None) -> bool:
        """Whether a record containing ``txt`` (at ``level``: "debug" ... "error") was logged."""
        for r in self.logs:
            if txt in r.getMessage() and (level is None or r.levelname.lower().startswith(level[:4])):
                return True
        return False

    def clear_logs(self) -> None:
        self.logs.clear()


class context:
    """A test context: a master with the given addons loaded and configured."""

    def __init__(self, *addons: Any, options: Options | None = None) -> None:
        # Saved before the master exists: creating a Master sets ctx.
        self._saved: tuple[Any, Any] | None = (ctx.master, ctx.options)
        self._root_level: int | None = None
        self.options = options if options is not None else Options()
        self.master = RecordingMaster(self.options)
        self.master.addons.configured = True
        self._enter()
        for a in addons:
            self.master.addons.add(a)

    def _enter(self) -> None:
        if self._saved is None:
            self._saved = (ctx.master, ctx.options)
        if self._root_level is None:
            root = logging.getLogger()
            self._root_level = root.level
            root.addHandler(self.master._recorder)
            if root.level > logging.DEBUG or root.level == logging.NOTSET:
                root.setLevel(logging.DEBUG)
        ctx.master = self.master
        ctx.options = self.options

    def __enter__(self) -> context:
        self._enter()
        return self

    def __exit__(self, *exc: object) -> None:
        root = logging.getLogger()
        root.removeHandler(self.master._recorder)
        if self._root_level is not None:
            root.setLevel(self._root_level)
            self._root_level = None
        if self._saved is not None:
            ctx.master, ctx.options = self._saved
            self._saved = None

    def configure(self, addon: Any, **kwargs: Any) -> None:
        """Set options (every addon's ``configure`` sees them), or, with none, send
        ``configure(set())`` to ``addon`` alone.  OptionsError propagates."""
        if kwargs:
            self.options.update(**kwargs)
        else:
            self.master.addons.invoke_addon_sync(addon, hooks.ConfigureHook(set()))

    async def cycle(self, addon: Any, f: Any) -> Any:
        """Send ``addon`` the hooks ``f`` would see live, in order; stop if intercepted."""
        for event in hooks.event_sequence(f):
            await self.master.addons.invoke_addon(addon, event)
            if getattr(f, "intercepted", False):
                break
        return f

    async def invoke(self, addon: Any, event: str | hooks.Hook, *args: Any) -> None:
        """Send one hook to one addon (and its children)."""
        await self.master.addons.invoke_addon(addon, event, *args)

    def script(self, path: str) -> Any:
        """Load a script into the master and return its module (the addon object)."""
        s = Script(path)
        self.master.addons.add(s)
        return s.ns
