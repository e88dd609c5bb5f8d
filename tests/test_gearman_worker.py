"""worker/gearman_worker.py: a LogWorker in a thread, a real gear.Server, a real HTTP log
server over the shared corpus, and a real SQLite sink."""

from __future__ import annotations

import gzip
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gear
import orjson
import pytest

from log_shipper.submit import Outcome, Submission, Submitter
from tests.gearmand import Gearmand, queue_status
from tests.httpserver import LogServer, serve_directory
from tests.paths import CORPUS, count_lines
from tests.test_gearmand import connect_client, next_job, wait_complete
from tests.test_gearmand import submit as submit_job
from worker.config import FetchConfig, SinkConfig, WorkerConfig, split_address
from worker.gearman_worker import LogWorker, _GearWorker
from worker.job import FUNCTION_NAME, Job
from worker.sinks import open_sink
from worker.sinks.base import Sink

CONSOLE = "zuul-jobs-fixture/job-output.txt"
CONSOLE_GZ = "zuul-jobs-fixture/job-output.txt.gz"
ANSWER_TIMEOUT = 20.0


@dataclass
class Running:
    worker: LogWorker
    sink_url: str
    address: str
    thread: threading.Thread

    def count(self, query: str = "*") -> int:
        """Counted through a connection of its own, not the worker's."""
        reader: Sink = open_sink(self.sink_url)
        try:
            return reader.count(query)
        finally:
            reader.close()


@pytest.fixture
def worker_config(server: LogServer, gearman: gear.Server, tmp_path: Path) -> WorkerConfig:
    """The configuration of `worker`; a test module may override this fixture."""
    return make_worker_config(server, gearman, tmp_path)


def make_worker_config(server: LogServer, gearman: gear.Server, tmp_path: Path) -> WorkerConfig:
    return WorkerConfig(
        gearman=(f"127.0.0.1:{gearman.port}",),
        sink=SinkConfig(url=f"sqlite:{tmp_path / 'logs.db'}"),
        fetch=FetchConfig(
            allow=(server.base_url + "/",),
            connect_timeout=2.0,
            read_timeout=5.0,
            retries=2,
            backoff=0.01,
        ),
    )


@pytest.fixture
def worker(worker_config: WorkerConfig) -> Iterator[Running]:
    config = worker_config
    address, sink_url = config.gearman[0], config.sink.url
    sink = open_sink(sink_url, config.sink)
    sink.prepare()
    log_worker = LogWorker(config, sink, name="test-worker")
    thread = threading.Thread(target=log_worker.run, name="test-worker", daemon=True)
    thread.start()
    try:
        yield Running(log_worker, sink_url, address, thread)
    finally:
        log_worker.stop()
        thread.join(timeout=10)
        log_worker.close()
        sink.close()
    assert not thread.is_alive(), "the worker did not stop"


def job_for(url: str, filename: str, build_uuid: str | None = None) -> Job:
    return Job(
        source_url=url,
        fields={"build_uuid": build_uuid or uuid.uuid4().hex, "filename": filename},
        tags=(),
    )


def submit(running: Running, job: Job, path: str = "file") -> Outcome:
    with Submitter([running.address], connect_timeout=5.0) as submitter:
        [outcome] = submitter.submit([Submission(path, job)], wait=True, timeout=ANSWER_TIMEOUT)
    assert running.thread.is_alive(), "the worker thread died"
    return outcome


def submit_raw(running: Running, arguments: bytes) -> gear.Job:
    """A job with arbitrary argument bytes, as any Gearman client could send."""
    client = gear.Client("raw-client")
    client.addServer(*split_address(running.address))
    try:
        client.waitForServer(timeout=5)
        job = gear.Job(FUNCTION_NAME, arguments, unique=uuid.uuid4().hex.encode())
        client.submitJob(job)
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while not job.complete:
            assert time.monotonic() < deadline, "no answer from the worker"
            time.sleep(0.02)
    finally:
        client.shutdown()
    return job


def answer(job: gear.Job) -> str:
    """The reason our workers send as WORK_DATA before WORK_FAIL."""
    return str(b"".join(job.data).decode())


# --- (a) valid jobs ------------------------------------------------------------------------


def test_valid_job_completes_with_counts_from_the_file(worker: Running, server: LogServer) -> None:
    raw = (CORPUS / CONSOLE).read_bytes()
    expected_lines = count_lines(raw)
    assert expected_lines == 54  # as the fixture is: 54 newline-ended lines

    outcome = submit(worker, job_for(server.url(CONSOLE), "job-output.txt"))

    assert outcome.error is None and outcome.ok
    summary = outcome.summary
    assert summary is not None
    assert summary.source_url == server.url(CONSOLE)
    assert summary.lines == expected_lines
    assert summary.decompressed_bytes == len(raw)
    assert summary.compressed_bytes == len(raw)  # served as is
    assert summary.failed == 0 and summary.errors == []
    assert 0 < summary.documents <= expected_lines
    assert summary.indexed == summary.documents
    assert worker.count() == summary.documents
    assert worker.count('filename:"job-output.txt"') == summary.documents


def test_gzip_file_gives_the_same_lines_as_its_plain_twin(
    worker: Running, server: LogServer
) -> None:
    plain = (CORPUS / CONSOLE).read_bytes()
    packed = (CORPUS / CONSOLE_GZ).read_bytes()
    assert gzip.decompress(packed) == plain  # the twin really is the same text

    outcome_plain = submit(worker, job_for(server.url(CONSOLE), "plain/job-output.txt"))
    outcome_gz = submit(worker, job_for(server.url(CONSOLE_GZ), "gz/job-output.txt"))

    assert outcome_plain.ok and outcome_gz.ok, (outcome_plain.error, outcome_gz.error)
    assert outcome_plain.summary is not None and outcome_gz.summary is not None
    assert outcome_gz.summary.lines == outcome_plain.summary.lines == count_lines(plain)
    assert outcome_gz.summary.decompressed_bytes == len(plain)
    assert outcome_gz.summary.compressed_bytes == len(packed)
    assert outcome_gz.summary.documents == outcome_plain.summary.documents
    assert worker.count('filename:"gz/job-output.txt"') == outcome_gz.summary.indexed
    assert worker.count('filename:"plain/job-output.txt"') == outcome_plain.summary.indexed


# --- (b) malformed jobs --------------------------------------------------------------------


def test_malformed_jobs_fail_with_a_reason_and_the_worker_keeps_running(
    worker: Running, server: LogServer
) -> None:
    not_json = submit_raw(worker, b"not json")
    assert not_json.failure
    reason = answer(not_json)
    assert "not valid JSON" in reason and "\n" not in reason

    no_url = submit_raw(worker, orjson.dumps({"event": {"fields": {}, "tags": []}}))
    assert no_url.failure
    assert "source_url" in answer(no_url)

    assert worker.thread.is_alive()
    outcome = submit(worker, job_for(server.url(CONSOLE), "job-output.txt"))
    assert outcome.ok, outcome.error
    assert outcome.summary is not None
    assert outcome.summary.lines == count_lines((CORPUS / CONSOLE).read_bytes())
    assert worker.count() == outcome.summary.indexed


def good_payload(url: str, **fields: object) -> dict[str, object]:
    return {
        "source_url": url,
        "event": {"fields": {"build_uuid": "4f440b7e8c4b", "filename": "x.txt", **fields}},
    }


def misspelt_event(url: str) -> dict[str, object]:
    return {"source_url": url, "evnet": good_payload(url)["event"]}


# Jobs that would index the file (their URL is served) were they not refused, each with
# the reason its WORK_DATA gives ({size}: the length of the arguments sent).
BAD_JOBS = [
    (
        "misspelt event",
        misspelt_event,
        'bad job: job has unknown key(s) "evnet" (known: build, event, options, retry, '
        "size, source_url, submitted_at)",
    ),
    (
        "10 MB field value",
        lambda url: good_payload(url, build_name="x" * 10_000_000),
        "bad job: job arguments are {size:,} bytes, more than 1,048,576",
    ),
    (
        "5 KB field value",
        lambda url: good_payload(url, build_name="x" * 5000),
        "bad job: job event.fields.build_name is 5,000 bytes, more than 4,096",
    ),
    (
        "object as build_uuid",
        lambda url: good_payload(url, build_uuid={"a": ["b"]}),
        "bad job: job event.fields.build_uuid must be a string, number, true/false or null, "
        "not an object",
    ),
    (
        "text as error_pr",
        lambda url: good_payload(url, error_pr="high"),
        "bad job: job event.fields.error_pr must be a number, not a string",
    ),
    (
        "list as project",
        lambda url: good_payload(url, project=["openstack/nova"]),
        "bad job: job event.fields.project must be a string, number, true/false or null, "
        "not a list",
    ),
]


def test_each_bad_job_fails_with_its_reason_and_a_good_job_then_works(
    worker: Running, server: LogServer
) -> None:
    url = server.url(CONSOLE)
    for name, payload, expected in BAD_JOBS:
        arguments = orjson.dumps(payload(url))
        job = submit_raw(worker, arguments)
        assert job.failure, name
        assert answer(job) == expected.format(size=len(arguments)), name
    assert server.hits["/" + CONSOLE] == 0  # refused before any fetch
    assert worker.count() == 0

    assert worker.thread.is_alive()
    good = submit_raw(worker, orjson.dumps(good_payload(url)))
    assert not good.failure, answer(good)
    summary = orjson.loads(b"".join(good.data))
    assert summary["lines"] == count_lines((CORPUS / CONSOLE).read_bytes())
    assert worker.count('build_uuid:"4f440b7e8c4b"') == summary["indexed"] > 0


def test_a_failure_naming_a_4_kb_url_is_answered_in_one_bounded_line(worker: Running) -> None:
    url = "https://elsewhere.example.org/" + "a" * 4000  # within the bound on a value
    job = submit_raw(worker, orjson.dumps(good_payload(url)))
    assert job.failure
    reason = answer(job)
    assert len(reason) <= 500 and "\n" not in reason
    assert reason.startswith("https://elsewhere.example.org/aaa")
    assert "characters cut" in reason
    assert "not under an allowed prefix" in reason  # the end, kept


# --- (c) 404 -------------------------------------------------------------------------------


def test_missing_file_fails_naming_404_and_indexes_nothing(
    worker: Running, server: LogServer
) -> None:
    missing = "zuul-jobs-fixture/no-such-file.txt"
    assert not (CORPUS / missing).exists()

    outcome = submit(worker, job_for(server.url(missing), "no-such-file.txt"))

    assert outcome.summary is None
    assert outcome.error is not None and "404" in outcome.error
    assert server.hits["/" + missing] == 1  # not retried: a 404 will not change
    assert worker.count('filename:"no-such-file.txt"') == 0
    assert worker.count() == 0


# --- (d) allowlist -------------------------------------------------------------------------


def test_url_outside_the_allowlist_fails_and_is_never_fetched(worker: Running) -> None:
    with serve_directory(CORPUS) as other:  # same files, another origin: not allowed
        outcome = submit(worker, job_for(other.url(CONSOLE), "job-output.txt"))
        assert outcome.summary is None
        assert outcome.error is not None and "not under an allowed prefix" in outcome.error
        assert other.url(CONSOLE) in outcome.error
        assert sum(other.hits.values()) == 0
        assert other.connections == 0
    assert worker.count() == 0


# --- (e) retries ---------------------------------------------------------------------------


def test_server_errors_are_retried_until_the_file_arrives(
    worker: Running, server: LogServer
) -> None:
    server.behave("/" + CONSOLE, fail_times=2)  # two 500s, then the file

    outcome = submit(worker, job_for(server.url(CONSOLE), "job-output.txt"))

    assert outcome.ok, outcome.error
    assert outcome.summary is not None
    assert outcome.summary.lines == count_lines((CORPUS / CONSOLE).read_bytes())
    assert server.hits["/" + CONSOLE] == 3
    assert worker.count() == outcome.summary.indexed > 0


# --- (f) idempotence -----------------------------------------------------------------------


def test_resubmitting_a_job_changes_no_count(worker: Running, server: LogServer) -> None:
    job = job_for(server.url(CONSOLE), "job-output.txt", build_uuid=uuid.uuid4().hex)

    first = submit(worker, job)
    assert first.ok and first.summary is not None, first.error
    total = worker.count()
    assert total == first.summary.indexed > 0

    second = submit(worker, job)
    assert second.ok and second.summary is not None, second.error
    assert second.summary.indexed == first.summary.indexed
    assert worker.count() == total


def test_a_job_hung_up_on_goes_back_to_gearmand_and_the_worker_counts_once(
    gearmand: Gearmand,
) -> None:
    # How a worker hands a job back when its engine is away (issue 11): it closes the
    # job's connection; Debian gearmand queues the job again, and the worker, connected
    # again at once, is one worker for the function, not two.
    worker = _GearWorker("test-hang-up", lambda change: None)
    client = connect_client(gearmand.port)
    try:
        worker.addServer("127.0.0.1", gearmand.port)
        worker.waitForServer(timeout=ANSWER_TIMEOUT)
        worker.registerFunction(FUNCTION_NAME)
        submitted = submit_job(client, {"source_url": "http://logs.example.org/a.txt"})
        taken = next_job(worker)
        assert taken is not None
        assert queue_status(gearmand.port)[FUNCTION_NAME] == (1, 1, 1)
        worker.hang_up(taken.connection)
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while queue_status(gearmand.port)[FUNCTION_NAME] != (1, 0, 1):
            assert time.monotonic() < deadline, queue_status(gearmand.port)
            time.sleep(0.05)
        again = next_job(worker)
        assert again is not None and again.arguments == taken.arguments
        again.sendWorkComplete(b"{}")
        wait_complete(submitted)
    finally:
        worker.shutdown()
        client.shutdown()


def test_a_server_gone_while_its_connection_is_announced_is_one_warning(
    gearman: gear.Server, caplog: pytest.LogCaptureFixture
) -> None:
    """gear activates a connection, then we announce our functions on it; a gearmand
    killed in between made the announcement raise inside gear's connect thread, which
    logged a traceback (seen in a CI run). Now the connection is lost like any other."""
    worker = _GearWorker("announce-test", lambda change: None)
    worker.functions[FUNCTION_NAME.encode()] = gear.FunctionRecord(FUNCTION_NAME.encode())
    conn = gear.Connection("127.0.0.1", gearman.port)
    conn.connect()
    worker.active_connections.append(conn)
    conn.conn.close()  # the server's end is gone: sending fails with OSError
    try:
        with caplog.at_level(logging.WARNING, logger="worker.gearman_worker"):
            worker._onActiveConnection(conn)
        # (gear may have connected it again meanwhile: the server is up.)
        assert caplog.records[0].getMessage() == (
            f"lost the connection to Gearman server 127.0.0.1:{gearman.port}; retrying every 2 s"
        )
        assert not any(record.exc_info for record in caplog.records)
    finally:
        worker.shutdown()
