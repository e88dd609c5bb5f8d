"""The Gearman side of a worker: take push-log jobs, run them, answer each one."""

from __future__ import annotations

import logging
import threading
import traceback

import gear

from worker.config import WorkerConfig
from worker.errors import JobError, LogIndexerError
from worker.job import FUNCTION_NAME, JobSummary, parse_job
from worker.pipeline import run_job
from worker.sinks.base import Sink

log = logging.getLogger(__name__)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class LogWorker:
    """Pulls push-log jobs from Gearman servers until `stop()` is called."""

    def __init__(self, config: WorkerConfig, sink: Sink, name: str = "log-worker") -> None:
        self.config = config
        self.sink = sink
        self.gearman = gear.Worker(name)
        self._stopping = threading.Event()
        for address in config.gearman:
            host, port = split_address(address)
            self.gearman.addServer(host, port)

    def run(self) -> None:
        # Wait in short steps: a worker whose Gearman server is not up yet must still stop.
        while not self._stopping.is_set():
            try:
                self.gearman.waitForServer(timeout=1)
                break
            except gear.TimeoutError:
                continue
        if self._stopping.is_set():
            return
        self.gearman.registerFunction(FUNCTION_NAME)
        while not self._stopping.is_set():
            try:
                job = self.gearman.getJob()
            except gear.InterruptedError:
                continue
            self.handle(job)

    def stop(self) -> None:
        self._stopping.set()
        self.gearman.stopWaitingForJobs()

    def close(self) -> None:
        self.gearman.shutdown()

    def handle(self, job: gear.WorkerJob) -> JobSummary | None:
        """Run one job and answer it; never lets an error stop the worker."""
        try:
            summary = run_job(parse_job(job.arguments), self.config, self.sink)
        except JobError as exc:
            self._fail(job, f"bad job: {exc}")
            return None
        except LogIndexerError as exc:
            self._fail(job, str(exc))
            return None
        except Exception as exc:  # a bug must cost one job, not the worker
            log.error("job %s crashed:\n%s", job.handle, traceback.format_exc())
            self._fail(job, f"internal error: {type(exc).__name__}: {exc}")
            return None
        log.info(
            "%s: %d lines, %d indexed, %d failed in %.2fs",
            summary.source_url,
            summary.lines,
            summary.indexed,
            summary.failed,
            summary.seconds,
        )
        job.sendWorkComplete(summary.to_json())
        return summary

    def _fail(self, job: gear.WorkerJob, reason: str) -> None:
        reason = " ".join(reason.split())  # one line, whatever the cause printed
        log.warning("job %s failed: %s", job.handle, reason)
        # WORK_DATA then WORK_FAIL rather than WORK_EXCEPTION: gearmand drops exception
        # data unless each client opted in, and gear's server knows no such option.
        job.sendWorkData(reason.encode())
        job.sendWorkFail()
