"""The engine sinks' retry policy (worker/sinks/retry.py): waits, budget, log lines.

The policy runs on an injected clock here, so that a 600 s budget is checked in no
time; against real engines that stop and come back, see tests/sinks/test_outage.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from worker.errors import EngineOutage
from worker.sinks.retry import (
    WARN_EVERY,
    OutageLog,
    Retry,
    RetryPolicy,
    next_wait,
    no_answer,
    wait_ceiling,
)

ENGINE = "opensearch at http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("failures", "ceiling"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (40, 30.0)],
)
def test_the_longest_wait_doubles_up_to_the_cap(failures: int, ceiling: float) -> None:
    assert wait_ceiling(failures, base=0.5, cap=30.0) == ceiling


def test_a_wait_is_the_draw_of_the_ceiling_and_never_past_the_budget() -> None:
    assert next_wait(3, base=0.5, cap=30.0, left=100.0, draw=0.25) == 0.5
    assert next_wait(3, base=0.5, cap=30.0, left=100.0, draw=0.0) == 0.0
    assert next_wait(10, base=0.5, cap=30.0, left=4.0, draw=0.99) == 4.0


class Clock:
    """Time that passes only when the policy sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def policy(clock: Clock, budget: float = 600.0) -> RetryPolicy:
    return RetryPolicy(
        ENGINE,
        budget=budget,
        base=0.5,
        cap=30.0,
        outages=OutageLog(ENGINE, clock=clock),
        clock=clock,
        sleep=clock.sleep,
        draw=lambda: 0.5,
    )


def failing(causes: list[str], *, answered: bool = False) -> Callable[[], str]:
    """An attempt that fails with each of `causes` in turn, then returns "done"."""
    left = list(causes)

    def attempt() -> str:
        if left:
            raise Retry(left.pop(0), answered=answered)
        return "done"

    return attempt


def test_an_engine_back_within_the_budget_is_waited_for(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    caplog.set_level(logging.DEBUG, logger="worker.sinks.retry")
    causes = ["connection refused"] * 12
    assert policy(clock).run(failing(causes)) == "done"
    # Half of each ceiling: 0.25, 0.5, 1, 2, 4, 8, then 15 (half the 30 s cap).
    assert clock.waits == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0, 15.0, 15.0, 15.0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{ENGINE}: connection refused; retrying for up to 600 s",
        f"{ENGINE} answering again after 105.8 s",
    ]
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 11


def test_the_budget_running_out_raises_engine_outage_naming_engine_and_cause() -> None:
    clock = Clock()
    with pytest.raises(EngineOutage) as info:
        policy(clock, budget=5.0).run(failing(["HTTP 503: unavailable"] * 100, answered=True))
    assert str(info.value) == (
        f"{ENGINE} overloaded: HTTP 503: unavailable; gave up after 5 s of retries"
    )
    assert clock.now - 1000.0 == 5.0  # the last attempt at the budget's end, none after


def test_progress_starts_the_budget_again() -> None:
    clock = Clock()
    outcomes = iter([False, True, False, True, False, True, False])

    def attempt() -> str:
        landed = next(outcomes, None)
        if landed is None:
            return "done"
        raise Retry("rejected", answered=True, progress=landed)

    # Each wait is 4 s and the budget 5 s: only the restarts let it reach the end.
    fixed = RetryPolicy(
        ENGINE, 5.0, 4.0, 4.0, OutageLog(ENGINE, clock=clock), clock, clock.sleep, lambda: 1.0
    )
    assert fixed.run(attempt) == "done"


def test_outages_within_a_minute_of_a_warning_log_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    caplog.set_level(logging.DEBUG, logger="worker.sinks.retry")
    outages = OutageLog(ENGINE, clock=clock)
    for _ in range(5):  # an engine flapping every 2 s
        outages.failed("connection reset", 600)
        clock.now += 1
        outages.answered()
        clock.now += 1
    clock.now += WARN_EVERY
    outages.failed("HTTP 429: rejected", 600)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{ENGINE}: connection reset; retrying for up to 600 s",
        f"{ENGINE} answering again after 1.0 s",
        f"{ENGINE}: HTTP 429: rejected; retrying for up to 600 s",
    ]


def test_no_answer_names_the_cause_in_the_exception_chain() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as inner:
            raise RuntimeError("HTTPConnection(host='h', port=1): Failed") from inner
    except RuntimeError as outer:
        assert no_answer(outer) == "connection refused"
    assert no_answer(RuntimeError("Read timed out. (read timeout=120)")) == "timed out"
    assert no_answer(RuntimeError("something else")) == "something else"


def test_interactive_reads_give_up_at_once_on_an_engine_that_never_answered() -> None:
    clock = Clock()
    quick = policy(clock).interactive(10.0)
    with pytest.raises(EngineOutage) as info:
        quick.run(failing(["connection refused"]))
    assert str(info.value) == f"{ENGINE} unreachable: connection refused"
    assert clock.waits == []
    # Once it has answered, an engine that goes away is waited for, briefly.
    assert quick.run(failing([])) == "done"
    with pytest.raises(EngineOutage) as info:
        quick.run(failing(["connection reset"] * 100))
    assert str(info.value) == (
        f"{ENGINE} unreachable: connection reset; gave up after 10 s of retries"
    )
    assert sum(clock.waits) == 10.0
