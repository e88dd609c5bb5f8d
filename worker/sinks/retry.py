"""How an engine sink waits for an engine that does not answer or is overloaded.

Every request of an engine sink goes through one RetryPolicy: an attempt that got no
answer (refused, reset, timed out) or an overload status is sent again after a wait
drawn at random from [0, min(cap, base * 2^n)] ("full jitter": workers that failed
together do not come back together), for as long as the policy's budget allows from
the first failure of the request; then EngineOutage, naming the engine and the last
cause. Writers wait minutes (`sink.outage_seconds`). Reads for a person or a check
(searches, start-up, /healthz) wait seconds, and not at all for an engine that has
never answered this sink: nothing listening there is more often a wrong URL or an
engine not started than an outage, and is better said at once.

The waits and the give-up rule are pure functions; the policy only runs them.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from worker.errors import EngineOutage, SinkError, one_line

log = logging.getLogger(__name__)

T = TypeVar("T")

# Statuses meaning "too busy now" (from the engine or a proxy before it), for which a
# whole request is worth sending again.
OVERLOADED = frozenset({429, 502, 503, 504})
# At most one WARNING that the engine stopped answering per this many seconds: an
# engine flapping, or overloaded between successes, would otherwise log a pair of
# lines per request.
WARN_EVERY = 60.0
# What a read for a person at a terminal (`log-shipper search`) waits at most.
INTERACTIVE_SECONDS = 10.0


class EngineUnavailable(SinkError):
    """No HTTP answer came back (connection refused, reset, timed out); the message is
    the cause in a few words (`no_answer`). A RetryPolicy tries again."""


class Retry(Exception):
    """Raised by an attempt that failed for a passing reason: try it again.

    `answered`: an HTTP answer came (an overload status), as opposed to none at all;
    `progress`: the engine did part of the work (some items of a bulk landed), so the
    budget of this request starts again.
    """

    def __init__(self, cause: str, *, answered: bool, progress: bool = False) -> None:
        super().__init__(cause)
        self.cause = cause
        self.answered = answered
        self.progress = progress


def wait_ceiling(failures: int, base: float, cap: float) -> float:
    """The longest wait after the `failures`-th failure in a row (1, 2, ...)."""
    return min(cap, base * 2.0 ** max(failures - 1, 0))


def next_wait(failures: int, base: float, cap: float, left: float, draw: float) -> float:
    """The wait before the next attempt: `draw` (in [0, 1)) of the ceiling, never past
    the `left` seconds of budget, so the last attempt comes before it runs out."""
    return max(0.0, min(draw * wait_ceiling(failures, base, cap), left))


def no_answer(exc: BaseException) -> str:
    """Why no HTTP answer came, in a few words: the cause an operator acts on
    (connection refused, reset, timed out) found in the client's exception chain,
    else the exception's own text as one bounded line."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, ConnectionResetError | BrokenPipeError):
            return "connection reset"
        if isinstance(current, TimeoutError):
            return "timed out"
        # opensearch-py keeps the original exception in `info`, not in the chain.
        info = getattr(current, "info", None)
        after = current.__cause__ or current.__context__
        current = info if isinstance(info, BaseException) and after is None else after
    text = str(exc)
    lowered = text.lower()
    for words, cause in (
        ("refused", "connection refused"),
        ("reset", "connection reset"),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
        ("remotedisconnected", "connection closed without an answer"),
        ("connection aborted", "connection closed without an answer"),
    ):
        if words in lowered:
            return cause
    return one_line(text, 200)


@dataclass(slots=True)
class OutageLog:
    """The log lines of one engine's outages, shared by every request of its sink:
    one WARNING when it stops answering (at most one each WARN_EVERY seconds), DEBUG
    for the failed attempts after it, one WARNING with how long it was away when it
    answers again."""

    engine: str
    clock: Callable[[], float] = time.monotonic
    ever_answered: bool = False  # any answer since the sink was opened
    since: float | None = None  # when the current outage began
    warned: bool = False  # its start was logged at WARNING, so its end is too
    last_warning: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def failed(self, cause: str, budget: float) -> None:
        with self.lock:
            now = self.clock()
            if self.since is not None:
                log.debug("%s: %s; still retrying", self.engine, cause)
                return
            self.since = now
            self.warned = self.last_warning is None or now - self.last_warning >= WARN_EVERY
            if not self.warned:
                log.debug("%s: %s; retrying for up to %g s", self.engine, cause, budget)
                return
            self.last_warning = now
        log.warning("%s: %s; retrying for up to %g s", self.engine, cause, budget)

    def answered(self) -> None:
        with self.lock:
            self.ever_answered = True
            if self.since is None:
                return
            away = self.clock() - self.since
            warned = self.warned
            self.since = None
        level = logging.WARNING if warned else logging.DEBUG
        log.log(level, "%s answering again after %.1f s", self.engine, away)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Runs attempts of one request until one returns, or raises EngineOutage once
    `budget` seconds have passed since the request's first failure (or since the last
    attempt that made progress); at once, without `wait_unanswered`, for no answer
    from an engine that never answered."""

    engine: str  # "elasticsearch at http://HOST:PORT", credentials masked
    budget: float
    base: float
    cap: float
    outages: OutageLog
    clock: Callable[[], float] = time.monotonic
    # None: wait on `stopping`, so that stop_waiting() ends a wait at once.
    sleep: Callable[[float], None] | None = None
    draw: Callable[[], float] = random.random
    wait_unanswered: bool = True
    # Shared with the policies made from this one (interactive()): set, every request
    # of the sink gives up at once instead of waiting out the budget.
    stopping: threading.Event = field(default_factory=threading.Event)

    def stop_waiting(self) -> None:
        """Requests waiting for the engine, and those that would, raise EngineOutage now:
        a worker asked to stop must not wait up to sink.outage_seconds for its engine."""
        self.stopping.set()

    def interactive(self, budget: float) -> RetryPolicy:
        return replace(self, budget=budget, wait_unanswered=False)

    def run(self, attempt: Callable[[], T]) -> T:
        failures = 0
        since: float | None = None
        while True:
            try:
                result = attempt()
            except EngineUnavailable as failure:
                retry = Retry(str(failure), answered=False)
            except Retry as failure:
                retry = failure
            else:
                self.outages.answered()
                return result
            state = "overloaded" if retry.answered else "unreachable"
            if not (retry.answered or self.wait_unanswered or self.outages.ever_answered):
                raise EngineOutage(f"{self.engine} {state}: {retry.cause}")
            now = self.clock()
            if since is None or retry.progress:
                since = now
            failures += 1
            self.outages.failed(retry.cause, self.budget)
            left = since + self.budget - now
            if left <= 0:
                raise EngineOutage(
                    f"{self.engine} {state}: {retry.cause}; "
                    f"gave up after {self.budget:g} s of retries"
                )
            wait = next_wait(failures, self.base, self.cap, left, self.draw())
            if self.sleep is not None:
                self.sleep(wait)
            else:
                self.stopping.wait(wait)
            if self.stopping.is_set():
                raise EngineOutage(
                    f"{self.engine} {state}: {retry.cause}; no longer waited for: "
                    "the worker is stopping"
                )
