"""Prometheus metrics of the push-log jobs a worker runs (`log_indexer_*`).

LogWorker reports each job through `JobMetrics.job_started` / `job_finished`, and its sink
is wrapped in `InstrumentedSink` for the time spent storing documents. The pipeline
itself knows nothing of metrics.

A `--processes N` pool exposes the sum over its children: each child records into files
under PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode, chosen by that
variable when prometheus_client is first imported), and the supervisor serves them with
a MultiProcessCollector (`MetricsServer(..., multiprocess_dir=...)`).

The server answers /metrics (the exposition, as prometheus-client serves it), /healthz
(200 or 503 with one line saying why, see worker/health.py) and 404 for anything else.
"""

from __future__ import annotations

import functools
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app
from prometheus_client.multiprocess import MultiProcessCollector

from worker.documents import Document, FileRun
from worker.errors import FetchError, JobError, SinkError
from worker.health import Health, SinkProbe, assess
from worker.job import Job, JobSummary
from worker.sinks.base import COUNTS_SIZE, Replaced, SearchResult, Sink, WriteResult

PREFIX = "log_indexer_"
GEARMAN_CONNECTIONS = PREFIX + "gearman_connections"
OUTCOMES = ("ok", "failed", "bad_job")
ERROR_KINDS = ("fetch", "sink", "job", "internal")

# From a 50-line console log to a multi-GiB one that streams for half an hour.
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# Jobs wait seconds when workers keep up and hours during a backlog.
_LAG_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)


def error_kind(error: BaseException | None) -> str:
    if isinstance(error, FetchError):
        return "fetch"
    if isinstance(error, SinkError):
        return "sink"
    if isinstance(error, JobError):
        return "job"
    return "internal"


class JobMetrics:
    """The job metrics, registered in `registry`."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(PREFIX + name, doc, buckets=buckets, registry=registry)

        self.jobs = counter("jobs", "push-log jobs answered, by outcome", ("outcome",))
        self.lines = counter("lines", "lines read from decompressed log files")
        self.documents = counter("documents", "documents the sink accepted")
        self.documents_failed = counter("documents_failed", "documents the sink refused")
        self.bytes = counter("bytes", "log bytes after decompression")
        self.fetched_bytes = counter("fetched_bytes", "log bytes received (compressed or not)")
        self.errors = counter("errors", "failed jobs, by the kind of error", ("kind",))
        self.job_seconds = histogram(
            "job_seconds", "time from taking a job to answering it", _DURATION_BUCKETS
        )
        self.bulk_seconds = histogram(
            "bulk_seconds",
            "time per job spent in the sink storing documents, not producing them",
            _DURATION_BUCKETS,
        )
        self.queue_lag_seconds = histogram(
            "queue_lag_seconds", "time from submitting a job to a worker taking it", _LAG_BUCKETS
        )
        # A pool's supervisor sums its live children's (those it saw exit are removed
        # with prometheus_client.multiprocess.mark_process_dead).
        self.gearman_connections = Gauge(
            GEARMAN_CONNECTIONS,
            "connections to Gearman servers that are up",
            registry=registry,
            multiprocess_mode="livesum",
        )
        # Every series exists from the start, at 0: rate() and alerts on a series that
        # appears only with its first failure miss that failure.
        for outcome in OUTCOMES:
            self.jobs.labels(outcome=outcome)
        for kind in ERROR_KINDS:
            self.errors.labels(kind=kind)

    def job_started(self, job: Job) -> None:
        if job.submitted_at is not None:
            # The submitting host's clock may run ahead of ours.
            self.queue_lag_seconds.observe(max(0.0, time.time() - job.submitted_at))

    def job_finished(
        self,
        job: Job | None,
        summary: JobSummary | None,
        error: BaseException | None,
        seconds: float,
    ) -> None:
        """Record a job's outcome: `job` is None when its arguments were unusable, and
        `summary` is None when it failed with `error`."""
        if job is None:
            self.jobs.labels(outcome="bad_job").inc()
            self.errors.labels(kind="job").inc()
            return
        self.job_seconds.observe(seconds)
        if summary is None:
            self.jobs.labels(outcome="failed").inc()
            self.errors.labels(kind=error_kind(error)).inc()
            return
        self.jobs.labels(outcome="ok").inc()
        self.lines.inc(summary.lines)
        self.documents.inc(summary.indexed)
        self.documents_failed.inc(summary.failed)
        self.bytes.inc(summary.decompressed_bytes)
        self.fetched_bytes.inc(summary.compressed_bytes)


@functools.cache
def default_metrics() -> JobMetrics:
    """The process's metrics in the default registry, created on first use: every
    LogWorker of a process shares them (a metric name registers only once)."""
    return JobMetrics(REGISTRY)


class InstrumentedSink:
    """A sink that times its `write()`, minus the time spent producing the documents.

    `write()` pulls documents from the pipeline, so its wall time includes fetching and
    parsing; timing the pulls and subtracting them leaves what the sink itself spent
    (serializing, bulk requests, retries, commits).
    """

    def __init__(self, sink: Sink, metrics: JobMetrics) -> None:
        self.sink = sink
        self.metrics = metrics

    def write(self, documents: Iterable[Document]) -> WriteResult:
        producing = [0.0]

        def timed() -> Iterator[Document]:
            iterator = iter(documents)
            while True:
                started = time.perf_counter()
                try:
                    document = next(iterator)
                except StopIteration:
                    producing[0] += time.perf_counter() - started
                    return
                producing[0] += time.perf_counter() - started
                yield document

        started = time.perf_counter()
        try:
            return self.sink.write(timed())
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.bulk_seconds.observe(max(0.0, elapsed - producing[0]))

    def prepare(self) -> None:
        self.sink.prepare()

    def refresh(self) -> None:
        self.sink.refresh()

    def stop_waiting(self) -> None:
        self.sink.stop_waiting()

    def search(self, query: str, size: int = 10, *, oldest_first: bool = False) -> SearchResult:
        return self.sink.search(query, size, oldest_first=oldest_first)

    def count(self, query: str = "*") -> int:
        return self.sink.count(query)

    def counts(self, query: str, field: str, size: int = COUNTS_SIZE) -> dict[str, int]:
        return self.sink.counts(query, field, size)

    def builds(self, since: str, until: str) -> list[dict[str, Any]]:
        return self.sink.builds(since, until)

    def delete_file(self, build_uuid: str, filename: str) -> int:
        return self.sink.delete_file(build_uuid, filename)

    def begin_file(self, run: FileRun) -> FileRun:
        return self.sink.begin_file(run)

    def replace_file(self, run: FileRun, written: WriteResult) -> Replaced:
        return self.sink.replace_file(run, written)

    def discard_file(self, run: FileRun) -> int:
        return self.sink.discard_file(run)

    def record_file(self, outcome: dict[str, Any]) -> list[dict[str, Any]]:
        return self.sink.record_file(outcome)

    def put_build(self, summary: dict[str, Any]) -> None:
        self.sink.put_build(summary)

    def get_build(self, build_uuid: str) -> dict[str, Any] | None:
        return self.sink.get_build(build_uuid)

    def file_outcomes(self, build_uuid: str) -> list[dict[str, Any]]:
        return self.sink.file_outcomes(build_uuid)

    def close(self) -> None:
        self.sink.close()


class HealthCheck:
    """/healthz of a worker or pool: its Gearman connections, read from the metrics it
    serves, out of `expected`; and the sink, as `probe` last found it."""

    def __init__(self, probe: SinkProbe, expected: int) -> None:
        self.probe = probe
        self.expected = expected

    def __call__(self, registry: CollectorRegistry) -> Health:
        connections = registry.get_sample_value(GEARMAN_CONNECTIONS) or 0
        return assess(int(connections), self.expected, self.probe.state, time.monotonic())


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would drown the worker's own log lines."""


class MetricsServer:
    """The HTTP endpoint Prometheus scrapes and health checks ask."""

    def __init__(
        self,
        port: int,
        address: str,
        *,
        health: Callable[[CollectorRegistry], Health],
        multiprocess_dir: str | None = None,
    ) -> None:
        self.registry: CollectorRegistry = REGISTRY
        if multiprocess_dir is not None:
            # The supervisor's own metrics would only be noise: serve the children's sum.
            self.registry = CollectorRegistry()
            MultiProcessCollector(self.registry, path=multiprocess_dir)
        self.health = health
        self._metrics_app = make_wsgi_app(self.registry)

        class Server(ThreadingWSGIServer):
            # An IPv6 address needs an IPv6 socket; the class attribute decides it.
            address_family = _address_family(address, port)

        self._server = make_server(address, port, self._app, Server, handler_class=_QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-server", daemon=True
        )
        self._thread.start()
        self.port: int = self._server.server_port

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            answer: Iterable[bytes] = self._metrics_app(environ, start_response)
            return answer
        if path == "/healthz":
            health = self.health(self.registry)
            status = "200 OK" if health.ok else "503 Service Unavailable"
            return _text(start_response, status, health.reason)
        return _text(start_response, "404 Not Found", "not found: try /metrics or /healthz")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _text(start_response: Callable[..., Any], status: str, line: str) -> list[bytes]:
    body = (line + "\n").encode()
    start_response(
        status,
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


def _address_family(address: str, port: int) -> socket.AddressFamily:
    infos = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return infos[0][0]
