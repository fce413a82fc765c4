"""``LoopWatch``: notice when the asyncio loop stops turning, and say where it is stuck.

A test that awaits with a timeout cannot time out while the loop itself is blocked (a
timer that stays due and spins, a busy loop in the stack): ``asyncio.wait_for`` never gets
to run, and only pytest's global timeout ends the test minutes later with little to go on.
A thread outside the loop can see it: the loop bumps a heartbeat every ``beat`` seconds;
when the heartbeat is older than ``report_after`` the watch records the main thread's stack
(once per stall), and when it is older than ``break_after`` it raises ``LoopBlocked`` in the
main thread.  That exception derives from ``BaseException`` so the stack's own
``except Exception`` guards do not swallow it; asyncio logs it as a failed callback and the
loop turns again, so the test's own timeouts and assertions fail with the recorded stack.
"""

from __future__ import annotations

import asyncio
import ctypes
import sys
import threading
import time
import traceback
from dataclasses import dataclass


class LoopBlocked(BaseException):  # noqa: N818 - it is an event, not an error class
    """Raised in the main thread by ``LoopWatch`` when the loop has been blocked too long."""


@dataclass
class Stall:
    seconds: float
    stack: str
    broken: bool = False


class LoopWatch:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        beat: float = 0.1,
        report_after: float = 2.0,
        break_after: float | None = 20.0,
        max_stalls: int = 20,
    ) -> None:
        self._loop = loop
        self._beat = beat
        self._report_after = report_after
        self._break_after = break_after
        self._max_stalls = max_stalls
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._handle: asyncio.TimerHandle | None = None
        self._thread: threading.Thread | None = None
        self._main_id = threading.get_ident()
        self.stalls: list[Stall] = []
        self.longest = 0.0

    def start(self) -> None:
        self._main_id = threading.get_ident()
        self._last = time.monotonic()
        self._tick()
        self._thread = threading.Thread(target=self._watch, name="loopwatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _tick(self) -> None:
        now = time.monotonic()
        self.longest = max(self.longest, now - self._last)
        self._last = now
        if not self._stop.is_set():
            self._handle = self._loop.call_later(self._beat, self._tick)

    def _watch(self) -> None:
        recorded_for = None  # the heartbeat of the stall already recorded
        broken_for = None
        while not self._stop.wait(self._beat):
            last = self._last
            blocked = time.monotonic() - last - self._beat
            if blocked < self._report_after or not self._loop.is_running():
                continue  # between pytest's steps the loop is idle, not blocked
            if recorded_for != last and len(self.stalls) < self._max_stalls:
                recorded_for = last
                self.stalls.append(Stall(blocked, self._main_stack()))
            elif self.stalls and recorded_for == last:
                self.stalls[-1].seconds = blocked
            if self._break_after is not None and blocked >= self._break_after and broken_for != last:
                broken_for = last
                if self.stalls and recorded_for == last:
                    self.stalls[-1].broken = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._main_id), ctypes.py_object(LoopBlocked)
                )

    def _main_stack(self) -> str:
        frame = sys._current_frames().get(self._main_id)
        return "".join(traceback.format_stack(frame)[-12:]) if frame is not None else "(no frame)"

    def describe(self) -> dict[str, object]:
        return {
            "longest_gap": round(self.longest, 3),
            "stalls": [
                {"seconds": round(s.seconds, 1), "broken": s.broken, "stack": s.stack} for s in self.stalls
            ],
        }
