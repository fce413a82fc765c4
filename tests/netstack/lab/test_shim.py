"""The lossy shim used by the e2e tests and the benchmark: seeded, at the asked rates."""

from __future__ import annotations

import asyncio

import pytest

from netstack.lab.shim import Impairment, LossyLink


async def run_through(imp: Impairment, packets: list[bytes]) -> list[bytes]:
    loop = asyncio.get_running_loop()
    got: list[bytes] = []
    link = LossyLink(imp, got.extend, loop)
    link.push(packets)
    for _ in range(200):
        if link.in_flight == 0:
            break
        await asyncio.sleep(0.005)
    return got


async def test_passthrough_delivers_everything_in_order_at_once() -> None:
    packets = [bytes([i]) * 20 for i in range(100)]
    got: list[bytes] = []
    LossyLink(Impairment(), got.extend, asyncio.get_running_loop()).push(packets)
    assert got == packets


async def test_rates_are_roughly_those_asked_and_seeded() -> None:
    packets = [i.to_bytes(4, "big") * 8 for i in range(4000)]
    imp = Impairment(drop=0.1, duplicate=0.05, corrupt=0.05, reorder=0.1, delay=0.002, seed=5)
    a = await run_through(imp, packets)
    b = await run_through(Impairment(**imp_args(imp)), packets)
    assert a == b  # same seed, same result
    original = set(packets)
    kept = [p for p in a if p in original]
    corrupted = [p for p in a if p not in original]
    assert 0.85 * 4000 < len(set(kept)) + len(set(corrupted)) < 0.95 * 4000
    assert len(a) - len(set(a)) > 100  # duplicates
    assert 100 < len(set(corrupted)) < 300
    order = [int.from_bytes(p[:4], "big") for p in kept]
    assert order != sorted(order)  # reordered


def imp_args(imp: Impairment) -> dict:
    return {f: getattr(imp, f) for f in imp.__slots__}


async def test_delay_holds_packets_back() -> None:
    loop = asyncio.get_running_loop()
    got: list[tuple[float, bytes]] = []
    link = LossyLink(Impairment(delay=0.05), lambda ps: got.extend((loop.time(), p) for p in ps), loop)
    t0 = loop.time()
    link.push([b"x"])
    assert got == [] and link.in_flight == 1
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.01)
    ((t, pkt),) = got
    assert pkt == b"x" and t >= t0 + 0.05  # never early (a lower bound cannot fail from slowness)


@pytest.mark.parametrize("rate", [10_000.0])
async def test_rate_limit_drops_tail_beyond_the_queue(rate: float) -> None:
    loop = asyncio.get_running_loop()
    got: list[bytes] = []
    link = LossyLink(Impairment(rate=rate, queue_limit=5_000), got.extend, loop)
    link.push([b"y" * 1000] * 20)
    assert link.dropped > 0 and link.passed + link.dropped == 20
