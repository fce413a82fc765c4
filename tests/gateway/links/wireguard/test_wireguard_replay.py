"""The anti-replay window against wireguard-go's case table (replay/replay_test.go)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.links.wireguard.replay import WINDOW_SIZE, ReplayWindow

LIMIT = (1 << 64) - (1 << 4) - 1  # the test's RejectAfterMessages in replay_test.go
T_LIM = WINDOW_SIZE + 1

# (counter, accepted) in order, as in TestReplay; the window must be at least 2048.
CASES = [
    (0, True), (1, True), (1, False), (9, True), (8, True), (7, True), (7, False),
    (T_LIM, True), (T_LIM - 1, True), (T_LIM - 1, False), (T_LIM - 2, True), (2, True), (2, False),
    (T_LIM + 16, True), (3, False), (T_LIM + 16, False), (T_LIM * 4, True),
    (T_LIM * 4 - (T_LIM - 1), True), (10, False), (T_LIM * 4 - T_LIM, False),
    (T_LIM * 4 - (T_LIM + 1), False), (T_LIM * 4 - (T_LIM - 2), True), (T_LIM * 4 + 1 - T_LIM, False),
    (0, False), (LIMIT, False), (LIMIT - 1, True), (LIMIT, False), (LIMIT - 1, False), (LIMIT - 2, True),
    (LIMIT + 1, False), (LIMIT + 2, False), (LIMIT - 2, False), (LIMIT - 3, True), (0, False),
]


def test_window_is_at_least_2048() -> None:
    assert WINDOW_SIZE >= 2048


def test_case_table() -> None:
    window = ReplayWindow()
    for number, (counter, expected) in enumerate(CASES, 1):
        assert window.check(counter, LIMIT) == expected, f"case {number} (check)"
        assert window.update(counter, LIMIT) == expected, f"case {number}"


def _bulk(counters: list[int]) -> ReplayWindow:
    window = ReplayWindow()
    for c in counters:
        assert window.update(c, LIMIT), c
    return window


def test_bulk_1_full_window_then_zero() -> None:
    w = _bulk(list(range(1, WINDOW_SIZE + 1)))
    assert w.update(0, LIMIT) and not w.update(0, LIMIT)


def test_bulk_2_shifted_window_drops_zero() -> None:
    w = _bulk(list(range(2, WINDOW_SIZE + 2)))
    assert w.update(1, LIMIT) and not w.update(0, LIMIT)


def test_bulk_3_descending() -> None:
    _bulk(list(range(WINDOW_SIZE + 1, 0, -1)))


def test_bulk_4_descending_then_zero_is_outside() -> None:
    w = _bulk(list(range(WINDOW_SIZE + 2, 1, -1)))
    assert not w.update(0, LIMIT)


def test_bulk_5_and_6() -> None:
    w = _bulk(list(range(WINDOW_SIZE, 0, -1)))
    assert w.update(WINDOW_SIZE + 1, LIMIT) and not w.update(0, LIMIT)
    w = _bulk(list(range(WINDOW_SIZE, 0, -1)))
    assert w.update(0, LIMIT) and w.update(WINDOW_SIZE + 1, LIMIT)


@pytest.mark.parametrize("jump", [64, 8191, 8192, 10**6, 2**40])
def test_far_future_jump_clears_old_bits(jump: int) -> None:
    w = _bulk([0, 1, 2])
    assert w.update(jump, LIMIT)
    assert not w.update(jump, LIMIT)
    assert w.update(jump - 1, LIMIT) or jump - 1 <= 2
    assert not w.update(0, LIMIT) or jump - 0 <= WINDOW_SIZE


def test_check_does_not_change_state() -> None:
    w = ReplayWindow()
    assert w.check(100, LIMIT) and w.check(100, LIMIT)
    assert w.greatest == 0
    assert w.update(100, LIMIT) and not w.check(100, LIMIT)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30_000), max_size=300))
def test_against_a_set_model(counters: list[int]) -> None:
    """Accepted iff never accepted before and within WINDOW_SIZE of the greatest so far."""
    w, seen, greatest = ReplayWindow(), set(), 0
    for c in counters:
        expected = c not in seen and (c > greatest or greatest - c <= WINDOW_SIZE)
        assert w.update(c, LIMIT) == expected
        if expected:
            seen.add(c)
            greatest = max(greatest, c)
