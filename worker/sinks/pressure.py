"""Back-pressure: how many bulk requests one sink keeps in flight, adjusted to what the
engine takes.

Additive increase, multiplicative decrease (as TCP does with its window): the limit
starts at `sink.concurrent_requests`, halves when the engine rejects a request or some
of its items for load (429), grows by one after INCREASE_AFTER successes in a row, and
stays between 1 and where it started. An overloaded engine then gets fewer requests
from every worker instead of the same number retried.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# Successes in a row before one more request may be in flight.
INCREASE_AFTER = 8


@dataclass(frozen=True, slots=True)
class Window:
    """The limit's state: pure, each event gives the next state."""

    limit: int
    ceiling: int
    successes: int = 0
    # Bumped at each decrease: rejections of requests sent before it are the same
    # congestion, already answered, and do not halve the limit again.
    epoch: int = 0

    def overloaded(self, sent_in: int) -> Window:
        if sent_in != self.epoch:
            return self
        return Window(max(1, self.limit // 2), self.ceiling, 0, self.epoch + 1)

    def succeeded(self) -> Window:
        if self.successes + 1 < INCREASE_AFTER:
            return Window(self.limit, self.ceiling, self.successes + 1, self.epoch)
        return Window(min(self.ceiling, self.limit + 1), self.ceiling, 0, self.epoch)


class InFlight:
    """The gate the bulk senders of one sink pass through, one request each."""

    def __init__(self, ceiling: int) -> None:
        self.window = Window(ceiling, ceiling)
        self._busy = 0
        self._changed = threading.Condition()

    @property
    def limit(self) -> int:
        return self.window.limit

    @contextmanager
    def slot(self) -> Iterator[int]:
        """Held while one request is out; yields the epoch it was sent in, for
        `overloaded`."""
        with self._changed:
            while self._busy >= self.window.limit:
                self._changed.wait()
            self._busy += 1
            epoch = self.window.epoch
        try:
            yield epoch
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()

    def overloaded(self, sent_in: int) -> None:
        with self._changed:
            self.window = self.window.overloaded(sent_in)

    def succeeded(self) -> None:
        with self._changed:
            self.window = self.window.succeeded()
            self._changed.notify_all()
