"""The supervisor of `log-worker --processes N`: keeps N worker processes running.

Each worker is a child process running `log-worker --processes 1` (the command given),
so a pool member is exactly the single-process worker, with its own Gearman connections
and sink. The supervisor only starts children, restarts those that die (with backoff),
and on SIGTERM/SIGINT asks every child to stop and waits for them.

A child killed in the middle of a job loses nothing: gearmand hands the job to another
worker, and documents have deterministic ids, so storing them again replaces them.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 60.0


@dataclass(slots=True)
class _Slot:
    """One place in the pool, filled by one child process at a time."""

    number: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = INITIAL_BACKOFF
    restart_at: float | None = 0.0  # None: not to be (re)started


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class Supervisor:
    """Runs `processes` copies of `command` until `request_stop()`."""

    def __init__(
        self,
        command: Sequence[str],
        processes: int,
        *,
        env: Mapping[str, str] | None = None,
        initial_backoff: float = INITIAL_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
        stable_after: float = MAX_BACKOFF,
        on_exit: Callable[[int], object] | None = None,
    ) -> None:
        self.command = list(command)
        self.on_exit = on_exit  # called with the pid of each child that has exited
        self.env = dict(env) if env is not None else None
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        # A child that ran this long before dying had a fresh failure, not the same one
        # again: its next restart is quick.
        self.stable_after = stable_after
        self.slots = [_Slot(number, backoff=initial_backoff) for number in range(1, processes + 1)]
        self._stop_signal: int | None = None

    def request_stop(self, signum: int, frame: FrameType | None = None) -> None:
        """Usable as a signal handler: it only sets a flag. Anything that takes a lock
        (threading.Event.set, logging) could deadlock on a lock the interrupted main
        thread holds."""
        self._stop_signal = signum

    def run(self) -> int:
        """Supervise until asked to stop or until every child has stopped on its own;
        returns the exit status for the supervisor."""
        while self._stop_signal is None:
            now = time.monotonic()
            for slot in self.slots:
                self._check(slot, now)
            if all(slot.process is None and slot.restart_at is None for slot in self.slots):
                log.info("no worker process left; exiting")
                return 0
            time.sleep(POLL_SECONDS)
        self._stop_all(self._stop_signal)
        return 0

    def _check(self, slot: _Slot, now: float) -> None:
        if slot.process is not None:
            code = slot.process.poll()
            if code is None:
                return
            self._exited(slot, code, now)
        if slot.restart_at is not None and slot.restart_at <= now:
            self._start(slot, now)

    def _start(self, slot: _Slot, now: float) -> None:
        try:
            slot.process = subprocess.Popen(self.command, env=self.env, stdin=subprocess.DEVNULL)
        except OSError as exc:  # out of processes or memory: try again later
            delay = self._next_delay(slot)
            log.error(
                "worker %d could not be started: %s; retrying in %g s",
                slot.number,
                exc,
                delay,
                extra={"worker": slot.number, "error": str(exc), "restart_in": delay},
            )
            slot.restart_at = now + delay
            return
        slot.started = now
        slot.restart_at = None
        log.info(
            "worker %d started (pid %d)",
            slot.number,
            slot.process.pid,
            extra={"worker": slot.number, "child_pid": slot.process.pid},
        )

    def _exited(self, slot: _Slot, code: int, now: float) -> None:
        assert slot.process is not None
        pid = slot.process.pid
        slot.process = None
        if self.on_exit is not None:
            self.on_exit(pid)
        fields = {"worker": slot.number, "child_pid": pid, "exit_status": code}
        if code == 0:
            # Only a stop request (SIGTERM sent to that child alone, say) ends a worker
            # cleanly: respect it rather than undo it.
            log.info("worker %d (pid %d) stopped; not restarted", slot.number, pid, extra=fields)
            return
        if now - slot.started >= self.stable_after:
            slot.backoff = self.initial_backoff
        delay = self._next_delay(slot)
        slot.restart_at = now + delay
        log.warning(
            "worker %d (pid %d) %s; restarting it in %g s",
            slot.number,
            pid,
            describe_exit(code),
            delay,
            extra={**fields, "restart_in": delay},
        )

    def _next_delay(self, slot: _Slot) -> float:
        delay = slot.backoff
        slot.backoff = min(slot.backoff * 2, self.max_backoff)
        return delay

    def _stop_all(self, signum: int) -> None:
        running = [slot for slot in self.slots if slot.process is not None]
        log.info(
            "%s: stopping %d worker process(es)",
            signal.Signals(signum).name,
            len(running),
            extra={"signal": signal.Signals(signum).name},
        )
        # Always SIGTERM, whatever arrived: a child still starting up dies quietly of it,
        # where SIGINT would print a KeyboardInterrupt traceback.
        for slot in running:
            assert slot.process is not None
            if slot.process.poll() is None:
                slot.process.send_signal(signal.SIGTERM)
        for slot in running:
            assert slot.process is not None
            # Unbounded: a child still fetching hands its job back at once, one past its
            # fetch finishes the job, and a service manager that cannot wait that long
            # ends everything with SIGKILL anyway.
            code = slot.process.wait()
            pid = slot.process.pid
            slot.process = None
            fields = {"worker": slot.number, "child_pid": pid, "exit_status": code}
            if code == 0 or code == -signal.SIGTERM:
                log.info("worker %d (pid %d) stopped", slot.number, pid, extra=fields)
            else:
                log.warning(
                    "worker %d (pid %d) %s while stopping",
                    slot.number,
                    pid,
                    describe_exit(code),
                    extra=fields,
                )
