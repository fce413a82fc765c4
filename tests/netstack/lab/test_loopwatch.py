"""LoopWatch: a loop blocked by a busy callback is recorded with its stack and broken."""

from __future__ import annotations

import asyncio
import time

from netstack.lab.loopwatch import LoopWatch


def spin_forever_in_a_timer(limit: float) -> bool:
    """Stand-in for a timer that stays due: busy until broken (or ``limit`` as a safety net)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        pass
    return False


async def test_a_blocked_loop_is_recorded_broken_and_turns_again() -> None:
    loop = asyncio.get_running_loop()
    errors: list[BaseException] = []
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx.get("exception")))
    watch = LoopWatch(loop, beat=0.05, report_after=0.3, break_after=0.6)
    watch.start()
    try:
        loop.call_soon(spin_forever_in_a_timer, 30.0)
        await asyncio.sleep(0.01)
        # the loop turns again: this sleep completes, well before the 30 s safety net
        await asyncio.wait_for(asyncio.sleep(0.2), 20)
    finally:
        watch.stop()
    assert len(watch.stalls) == 1
    stall = watch.stalls[0]
    assert stall.broken and "spin_forever_in_a_timer" in stall.stack
    assert [type(e).__name__ for e in errors] == ["LoopBlocked"]
    assert watch.describe()["stalls"][0]["broken"] is True


async def test_a_turning_loop_records_nothing() -> None:
    watch = LoopWatch(asyncio.get_running_loop(), beat=0.05, report_after=1.0, break_after=2.0)
    watch.start()
    try:
        for _ in range(10):
            await asyncio.sleep(0.02)
    finally:
        watch.stop()
    assert watch.stalls == []
