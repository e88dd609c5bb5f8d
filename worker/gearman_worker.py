"""The Gearman side of a worker: take push-log jobs, run them, answer each one."""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import gear

from worker.builds import build_summary, completed_run, file_outcome
from worker.config import WorkerConfig, split_address
from worker.errors import EngineOutage, Interrupted, JobError, LogIndexerError, one_line
from worker.fetch import Interrupt
from worker.health import PROBE_BUILD_UUID
from worker.job import FUNCTION_NAME, Job, JobSummary, parse_job
from worker.metrics import InstrumentedSink, JobMetrics, default_metrics
from worker.pipeline import run_job
from worker.redact import mask_url
from worker.sinks.base import Sink
from worker.sinks.retry import wait_ceiling

log = logging.getLogger(__name__)


class _GearWorker(gear.Worker):
    """gear's worker, logging its connections coming and going, and passing each
    change in how many are up to `on_change` (+1, -1: the LogWorkers of a process
    share one gauge, which is then their sum).

    It hooks gear's `_onActiveConnection` (a connection made and put in use) and
    `_lostConnection` (a connection found broken; gear then retries it every 2 s): gear
    has no public hook for either.
    """

    def __init__(self, name: str, on_change: Callable[[float], None]) -> None:
        self.on_change = on_change
        self.closing = False
        # Functions gear announced when each connection was made (see _onActiveConnection).
        self._announced: dict[gear.Connection, frozenset[bytes]] = {}
        self._reported = 0
        self._lost: dict[str, float] = {}  # address -> time.monotonic() it was lost
        self._report_lock = threading.Lock()
        super().__init__(name)

    def _onConnect(self, conn: gear.Connection) -> None:
        with self.broadcast_lock:  # an RLock, which gear's _onConnect takes too
            # gear announces at least these on the new connection.
            announced = frozenset(self.functions)
            super()._onConnect(conn)
        self._announced[conn] = announced

    def _onActiveConnection(self, conn: gear.Connection) -> None:
        # gear sends CAN_DO in _onConnect, before the connection joins
        # active_connections, and registerFunction broadcasts only to that list: a
        # function registered in between is never announced on this connection (with
        # two servers, one of them then gives this worker no job). Announced here, once
        # the connection is in the list; only those: gearmand counts a function
        # announced twice as two workers.
        announced = self._announced.pop(conn, frozenset())
        try:
            with self.broadcast_lock:
                for name, function in list(self.functions.items()):
                    if name not in announced:
                        conn.sendPacket(
                            gear.Packet(gear.constants.REQ, gear.constants.CAN_DO, function.name)
                        )
        except OSError:
            # The server went away since gear connected: lost like any other
            # connection (one warning, retried every 2 s), not a traceback from gear.
            self._lostConnection(conn)
            return
        super()._onActiveConnection(conn)
        address = f"{conn.host}:{conn.port}"
        lost = self._lost.pop(address, None)
        if lost is None:
            log.info("connected to Gearman server %s", address, extra={"gearman": address})
        else:
            down = time.monotonic() - lost
            log.warning(
                "reconnected to Gearman server %s after %.1f s",
                address,
                down,
                extra={"gearman": address, "down_seconds": round(down, 3)},
            )
        self.report()

    def _lostConnection(self, conn: gear.Connection) -> None:
        was_up = conn in self.active_connections
        super()._lostConnection(conn)
        address = f"{conn.host}:{conn.port}"
        if was_up and not self.closing:
            self._lost.setdefault(address, time.monotonic())
            log.warning(
                "lost the connection to Gearman server %s; retrying every 2 s",
                address,
                extra={"gearman": address},
            )
        self.report()

    def report(self) -> None:
        # Counted under the lock, so that the last report made has the latest count.
        with self._report_lock:
            up = len(self.active_connections)
            self.on_change(up - self._reported)
            self._reported = up


# Between checks that the sink answers again, after an engine outage: doubled from the
# first to the last, each shortened by up to a half at random so that the workers of a
# pool do not all ask at once.
SINK_CHECK_FIRST = 1.0
SINK_CHECK_MAX = 30.0


class LogWorker:
    """Pulls push-log jobs from Gearman servers until `stop()` is called.

    When the sink's engine stays away longer than the sink waits for it (EngineOutage),
    the worker keeps the job, unanswered, until the sink answers again, then runs it
    again; a worker asked to stop meanwhile hands it back. Held rather than handed back
    at once: gearmand counts every hand-back against its --job-retries and drops the job
    after that many, and a handed-back job would only go to the next worker to wait out
    the same outage. `hold=False` is for the all-in-one mode (`log-shipper index`),
    whose caller waits for the answer: there the job is answered WORK_FAIL, naming the
    engine.
    """

    def __init__(
        self,
        config: WorkerConfig,
        sink: Sink,
        name: str = "log-worker",
        metrics: JobMetrics | None = None,
        *,
        hold: bool = True,
    ) -> None:
        self.config = config
        self.hold = hold
        self.metrics = metrics or default_metrics()
        self.sink: Sink = InstrumentedSink(sink, self.metrics)
        self.gearman = _GearWorker(name, self.metrics.gearman_connections.inc)
        self._stopping = threading.Event()
        # Ends the fetch in hand when the worker is asked to stop (fetches only: a job
        # busy writing to the sink finishes).
        self._interrupt = Interrupt()
        tls = config.gearman_tls
        # gear reconnects to each server on its own (every 2 s) after losing it.
        for address in config.gearman:
            host, port = split_address(address)
            self.gearman.addServer(host, port, ssl_key=tls.key, ssl_cert=tls.cert, ssl_ca=tls.ca)

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
        """No new job; the fetch in hand ends now, and its job is handed back."""
        self._stopping.set()
        self._interrupt.interrupt("the worker is stopping; the job goes back to Gearman")
        # A job waiting for its engine gives up too (EngineOutage): handed back, below.
        self.sink.stop_waiting()
        self.gearman.stopWaitingForJobs()

    def close(self) -> None:
        self.gearman.closing = True  # connections closed now are no news
        self.gearman.shutdown()
        self.gearman.report()  # shutdown() has emptied its list of connections

    def handle(self, gearman_job: gear.WorkerJob) -> JobSummary | None:
        """Run one job and answer it; never lets an error stop the worker."""
        started = time.monotonic()
        handle = gearman_job.handle.decode(errors="replace")
        try:
            job = parse_job(gearman_job.arguments)
        except JobError as exc:
            self.metrics.job_finished(None, None, exc, time.monotonic() - started)
            self._fail(gearman_job, f"bad job: {exc}")
            return None
        self.metrics.job_started(job)
        url = mask_url(job.source_url)  # what logs and answers name the file by
        # Logged at the start too: a job that kills its worker (out of memory, say) is
        # then named in the log, next to a start line with no end.
        log.info(
            "job %s started: %s",
            handle,
            url,
            extra={"handle": handle, "source_url": url},
        )
        while True:
            try:
                summary, error, failure = self._run(job, handle)
                self._track(job, summary, error)
                break
            except Interrupted as exc:
                self._hand_back(gearman_job, job, exc)
                return None
            except EngineOutage as exc:
                # The file has not failed: its engine is away. No outcome is recorded
                # (the engine could not store it, and "ok" would be wrong for a file
                # whose documents are not all there); the job's next run records it.
                if not self.hold:
                    summary, error, failure = None, f"the engine is unavailable: {exc}", exc
                    break
                if not self._wait_for_sink(handle, str(exc)):
                    self._hand_back(gearman_job, job, exc)  # the worker is stopping
                    return None
        # Recorded before answering, so that whoever waits for the answer finds it counted.
        self.metrics.job_finished(job, summary, failure, time.monotonic() - started)
        if error is not None or summary is None:
            self._fail(gearman_job, error or "no summary", url)
            return None
        log.info(
            "%s: %d lines, %d indexed, %d failed in %.2fs",
            summary.source_url,
            summary.lines,
            summary.indexed,
            summary.failed,
            summary.seconds,
            extra={
                "handle": handle,
                "source_url": summary.source_url,
                "lines": summary.lines,
                "indexed": summary.indexed,
                "failed": summary.failed,
                "seconds": summary.seconds,
            },
        )
        if summary.truncated:
            # A cap cut the file short while the job still succeeded: say so where
            # operators look, not only in the answer.
            log.warning(
                "%s: not read to its end: %s",
                summary.source_url,
                summary.truncated,
                extra={"handle": handle, "source_url": summary.source_url},
            )
        with self._answering(gearman_job):
            gearman_job.sendWorkComplete(summary.to_json())
        return summary

    def _run(self, job: Job, handle: str) -> tuple[JobSummary | None, str | None, Exception | None]:
        """Run the job: its summary, or why it failed. Raises what hands it back:
        Interrupted (the worker stops), EngineOutage (the sink's engine is away)."""
        try:
            return run_job(job, self.config, self.sink, self._interrupt), None, None
        except (Interrupted, EngineOutage):
            raise
        except LogIndexerError as exc:
            return None, str(exc), exc
        except Exception as exc:  # a bug must cost one job, not the worker
            log.error("job %s crashed:\n%s", handle, mask_url(traceback.format_exc()))
            return None, f"internal error: {type(exc).__name__}: {exc}", exc

    def _wait_for_sink(self, handle: str, reason: str) -> bool:
        """Hold job `handle` until the sink answers again: True then, False if the
        worker is asked to stop first."""
        away = time.monotonic()
        checks = 0
        log.warning(
            "job %s held until the sink answers again: %s",
            handle,
            mask_url(reason),
            extra={"handle": handle, "error": mask_url(reason)},
        )
        while not self._stopping.is_set():
            if self._sink_answers():
                down = time.monotonic() - away
                log.warning(
                    "the sink answers again after %.1f s; job %s runs again",
                    down,
                    handle,
                    extra={"handle": handle, "down_seconds": round(down, 3)},
                )
                return True
            checks += 1
            ceiling = wait_ceiling(checks, SINK_CHECK_FIRST, SINK_CHECK_MAX)
            self._stopping.wait(ceiling * random.uniform(0.5, 1.0))
        return False

    def _sink_answers(self) -> bool:
        """Whether the sink answers a cheap read (health's probe). Asked from a thread
        of its own, so that a sink slow to answer cannot hold up the worker's stop."""
        answered = threading.Event()

        def probe() -> None:
            try:
                self.sink.get_build(PROBE_BUILD_UUID)
            except LogIndexerError:
                return
            answered.set()

        checker = threading.Thread(target=probe, name="sink-check", daemon=True)
        checker.start()
        while checker.is_alive() and not self._stopping.is_set():
            checker.join(timeout=0.5)
        return answered.is_set()

    def _hand_back(self, gearman_job: gear.WorkerJob, job: Job, exc: LogIndexerError) -> None:
        """Leave the job unanswered: when this worker disconnects, gearmand queues it
        again for another worker (or this one), whose documents replace these (ids are
        deterministic). WORK_FAIL instead would end the job for good. Neither a file
        outcome nor a job metric is recorded: the file has not failed, and its re-run
        is counted."""
        handle = gearman_job.handle.decode(errors="replace")
        url = mask_url(job.source_url)
        log.warning(
            "job %s handed back unanswered: %s",
            handle,
            mask_url(str(exc)),
            extra={"handle": handle, "source_url": url},
        )

    def _track(self, job: Job, summary: JobSummary | None, error: str | None) -> None:
        """Record the file's outcome; the build's last file writes the build summary."""
        if job.build is None or not job.fields.get("build_uuid"):
            return
        if summary is not None and summary.replaced_by_newer_run:
            # Its counts are of documents the newer run has replaced; that run's outcome,
            # recorded or to come, is the file's.
            log.info(
                "%s: a newer run of the file owns it; its outcome is that run's",
                summary.source_url,
                extra={"source_url": summary.source_url},
            )
            return
        try:
            outcomes = self.sink.record_file(file_outcome(job, summary, error))
            run = completed_run(job, outcomes)
            if run is not None:
                self.sink.put_build(build_summary(job, run))
        except EngineOutage:
            raise  # the job goes back and its next run records it
        except LogIndexerError as exc:
            # Losing the record only delays "fully indexed" until the build is re-run;
            # the documents themselves are already stored.
            log.warning(
                "could not record build progress for %s: %s",
                mask_url(job.source_url),
                mask_url(str(exc)),
            )

    def _fail(self, job: gear.WorkerJob, reason: str, source_url: str | None = None) -> None:
        # One bounded line, whatever the cause printed, and no credentials of the job's URL.
        reason = one_line(mask_url(reason))
        handle = job.handle.decode(errors="replace")
        log.warning(
            "job %s failed: %s",
            handle,
            reason,
            extra={"handle": handle, "source_url": source_url, "error": reason},
        )
        # WORK_DATA then WORK_FAIL rather than WORK_EXCEPTION: gearmand drops exception
        # data unless each client opted in, and gear's server knows no such option.
        with self._answering(job):
            job.sendWorkData(reason.encode())
            job.sendWorkFail()

    @contextmanager
    def _answering(self, job: gear.WorkerJob) -> Iterator[None]:
        """Sending the answer fails when the job's server went away meanwhile (gear then
        has no socket: AttributeError); that must cost the answer, not the worker."""
        try:
            yield
        except (OSError, AttributeError) as exc:
            handle = job.handle.decode(errors="replace")
            log.warning(
                "job %s: answer not sent, its Gearman server went away (%s)",
                handle,
                exc,
                extra={"handle": handle, "error": str(exc)},
            )
