"""The Gearman side of a worker: take push-log jobs, run them, answer each one."""

from __future__ import annotations

import logging
import threading
import traceback

import gear

from worker.builds import build_summary, completed_run, file_outcome
from worker.config import WorkerConfig
from worker.errors import JobError, LogIndexerError
from worker.job import FUNCTION_NAME, Job, JobSummary, parse_job
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

    def handle(self, gearman_job: gear.WorkerJob) -> JobSummary | None:
        """Run one job and answer it; never lets an error stop the worker."""
        try:
            job = parse_job(gearman_job.arguments)
        except JobError as exc:
            self._fail(gearman_job, f"bad job: {exc}")
            return None
        summary: JobSummary | None = None
        error: str | None = None
        try:
            summary = run_job(job, self.config, self.sink)
        except LogIndexerError as exc:
            error = str(exc)
        except Exception as exc:  # a bug must cost one job, not the worker
            log.error("job %s crashed:\n%s", gearman_job.handle, traceback.format_exc())
            error = f"internal error: {type(exc).__name__}: {exc}"
        self._track(job, summary, error)
        if error is not None or summary is None:
            self._fail(gearman_job, error or "no summary")
            return None
        log.info(
            "%s: %d lines, %d indexed, %d failed in %.2fs",
            summary.source_url,
            summary.lines,
            summary.indexed,
            summary.failed,
            summary.seconds,
        )
        gearman_job.sendWorkComplete(summary.to_json())
        return summary

    def _track(self, job: Job, summary: JobSummary | None, error: str | None) -> None:
        """Record the file's outcome; the build's last file writes the build summary."""
        if job.build is None or not job.fields.get("build_uuid"):
            return
        try:
            outcomes = self.sink.record_file(file_outcome(job, summary, error))
            run = completed_run(job, outcomes)
            if run is not None:
                self.sink.put_build(build_summary(job, run))
        except LogIndexerError as exc:
            # Losing the record only delays "fully indexed" until the build is re-run;
            # the documents themselves are already stored.
            log.warning("could not record build progress for %s: %s", job.source_url, exc)

    def _fail(self, job: gear.WorkerJob, reason: str) -> None:
        reason = " ".join(reason.split())  # one line, whatever the cause printed
        log.warning("job %s failed: %s", job.handle, reason)
        # WORK_DATA then WORK_FAIL rather than WORK_EXCEPTION: gearmand drops exception
        # data unless each client opted in, and gear's server knows no such option.
        job.sendWorkData(reason.encode())
        job.sendWorkFail()
