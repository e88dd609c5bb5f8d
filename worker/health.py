"""What the metrics server's /healthz answers: can this worker (or pool) index now?

Healthy (200) means both:

- Gearman: at least one connection to a Gearman server is up. Each worker process
  counts its own in the `log_indexer_gearman_connections` gauge (LogWorker keeps it up
  to date); a pool's supervisor reads the sum over its live children from their
  multiprocess metric files, so the pool is healthy while any child can take jobs.
- the sink: it answered the last check, and that answer is at most SINK_FRESH_SECONDS
  old. The check is a read of one build-summary document, every SINK_PROBE_SECONDS,
  from the process serving /healthz (a pool's supervisor uses the configuration its
  children use); a check that hangs makes the answer grow old, hence unhealthy.

Anything else is 503. Either way the body is one line saying why.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from worker.errors import LogIndexerError, one_line
from worker.redact import mask_url
from worker.sinks.base import BuildRecorder

SINK_PROBE_SECONDS = 10.0
SINK_FRESH_SECONDS = 30.0
# A build uuid no build has: reading it asks the sink a question with a tiny answer.
PROBE_BUILD_UUID = "log-indexer-health-check"


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    reason: str  # one line


@dataclass(frozen=True, slots=True)
class SinkState:
    answered_at: float | None = None  # time.monotonic() of the last good answer
    error: str | None = None  # why the last check failed; None if it succeeded


def assess(connections: int, expected: int, sink: SinkState, now: float) -> Health:
    """The health of a worker with `connections` of `expected` Gearman connections up."""
    problems: list[str] = []
    if connections < 1:
        problems.append(f"no Gearman connection up (0 of {expected})")
    age = None if sink.answered_at is None else now - sink.answered_at
    if sink.error is not None:
        problems.append(f"the sink failed its last check: {sink.error}")
    elif age is None:
        problems.append("the sink has not answered yet")
    elif age > SINK_FRESH_SECONDS:
        problems.append(f"the sink has not answered for {age:.0f} s")
    if problems:
        return Health(False, "unhealthy: " + "; ".join(problems))
    return Health(
        True,
        f"ok: {connections} of {expected} Gearman connections up; sink answered {age:.0f} s ago",
    )


class SinkProbe:
    """Checks the sink every `interval` seconds in a thread of its own (sinks are safe
    for several threads), so that /healthz answers at once from the last result."""

    def __init__(self, sink: BuildRecorder, interval: float = SINK_PROBE_SECONDS) -> None:
        self.sink = sink
        self.interval = interval
        self.state = SinkState()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sink-probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sink.get_build(PROBE_BUILD_UUID)
            except LogIndexerError as exc:
                reason = one_line(mask_url(str(exc)))
                self.state = SinkState(self.state.answered_at, reason)
            else:
                self.state = SinkState(time.monotonic())
            self._stop.wait(self.interval)

    def close(self) -> None:
        """Stop checking. A check still waiting for the sink is left to finish alone:
        the thread is a daemon, and nothing reads its result any more."""
        self._stop.set()
        self._thread.join(timeout=1.0)
