"""push-log jobs to Gearman: the one submitting path shared by index, submit and backfill."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gear

from log_shipper.plan import Submission
from worker.config import GearmanTLSConfig
from worker.errors import LogIndexerError
from worker.gearman_worker import split_address
from worker.job import FUNCTION_NAME, JobSummary


class SubmitError(LogIndexerError):
    """No Gearman server took the jobs."""


@dataclass(slots=True)
class Outcome:
    path: str
    summary: JobSummary | None = None
    error: str | None = None  # why the file was not indexed

    @property
    def ok(self) -> bool:
        return self.error is None and self.summary is not None and self.summary.failed == 0


class _Client(gear.Client):
    """gear's client, remembering the jobs whose server connection was lost."""

    def __init__(self, client_id: str) -> None:
        super().__init__(client_id)
        self.orphans: set[bytes] = set()

    def handleDisconnect(self, job: gear.Job) -> gear.Job:
        if job.handle:
            self.orphans.add(job.handle)
        return job


class Submitter:
    """A Gearman client connected to the first reachable of several servers."""

    def __init__(
        self,
        servers: Sequence[str],
        *,
        connect_timeout: float = 10.0,
        tls: GearmanTLSConfig | None = None,
    ) -> None:
        self.client = _Client("log-shipper")
        tls = tls or GearmanTLSConfig()
        for address in servers:
            host, port = split_address(address)
            self.client.addServer(host, port, ssl_key=tls.key, ssl_cert=tls.cert, ssl_ca=tls.ca)
        try:
            self.client.waitForServer(timeout=connect_timeout)
        except gear.TimeoutError:
            self.client.shutdown()
            raise SubmitError(
                f"no Gearman server reachable at {', '.join(servers)} within {connect_timeout:g}s"
            ) from None

    def __enter__(self) -> Submitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.shutdown()

    def start(
        self, submission: Submission, *, wait: bool = True, low_priority: bool = False
    ) -> Pending:
        """Queue one file's job; `poll` the result to learn its outcome."""
        precedence = gear.PRECEDENCE_LOW if low_priority else gear.PRECEDENCE_NORMAL
        pending = Pending(Outcome(submission.path))
        payload = dataclasses.replace(submission.job, submitted_at=time.time()).to_payload()
        job = gear.Job(FUNCTION_NAME, payload, unique=uuid.uuid4().hex.encode())
        try:
            self.client.submitJob(job, background=not wait, precedence=precedence)
        except gear.GearmanError as exc:
            pending.outcome.error = f"not submitted: {exc}"
            pending.finished = True
            return pending
        pending.job = job
        pending.finished = not wait
        return pending

    def poll(self, pending: Pending, timeout: float | None = None) -> bool:
        """True once the job has an outcome (answer, lost server, or `timeout` seconds)."""
        if pending.finished:
            return True
        job = pending.job
        if job.complete:
            read_answer(pending.outcome, job)
        elif job.handle in self.client.orphans:
            pending.outcome.error = "the Gearman server went away before the job finished"
        elif timeout is not None and time.monotonic() - pending.started > timeout:
            pending.outcome.error = f"no answer within {timeout:g}s"
        else:
            return False
        pending.finished = True
        return True

    def submit(
        self,
        submissions: Iterable[Submission],
        *,
        wait: bool,
        low_priority: bool = False,
        timeout: float | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Queue one job per file; with `wait`, collect every answer (or a timeout).
        `on_outcome` is called with each file's outcome as soon as it is known."""
        pending = [self.start(s, wait=wait, low_priority=low_priority) for s in submissions]
        reported: set[int] = set()
        while True:
            finished = [self.poll(item, timeout) for item in pending]
            for number, done in enumerate(finished):
                if done and number not in reported and on_outcome is not None:
                    reported.add(number)
                    on_outcome(pending[number].outcome)
            if all(finished):
                return [item.outcome for item in pending]
            time.sleep(0.05)


@dataclass(slots=True)
class Pending:
    """A submitted job, until its outcome is known."""

    outcome: Outcome
    job: Any = None  # gear.Job; None when submission failed
    finished: bool = False
    started: float = field(default_factory=time.monotonic)


def read_answer(outcome: Outcome, job: gear.Job) -> None:
    if job.failure:
        # Our workers send the reason as WORK_DATA before WORK_FAIL.
        reason = job.exception or b"".join(job.data)
        outcome.error = reason.decode(errors="replace") if reason else "job failed"
        return
    try:
        outcome.summary = JobSummary.from_json(b"".join(job.data))
    except (ValueError, TypeError) as exc:
        outcome.error = f"unreadable answer from worker: {exc}"
