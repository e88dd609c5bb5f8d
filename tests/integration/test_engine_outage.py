"""An engine outage in the middle of a load, through Debian gearmand and a real
`log-worker`, against a private Elasticsearch node of this module (the shared ones on
9250/9260 are never stopped): the job is neither lost nor reported indexed while its
documents are not all there, and once the engine is back the file ends indexed exactly
once, with its outcome and the build summary (issue 11).

Expected counts come from the generated input (tests/httpserver.py generated_body),
counted here: every line has its own timestamp, so one document per line.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from log_shipper.submit import Outcome, Submission, Submitter
from tests.engines import PrivateEngine, build_index_for, index_prefix, private_engine
from tests.gearmand import Gearmand, queue_status
from tests.httpserver import LogServer, generated_body, serve_directory
from tests.paths import count_lines
from tests.test_worker_cli import WorkerProcess, start_worker, wait_for_workers
from worker.config import SinkConfig
from worker.job import FUNCTION_NAME, BuildTracking, Job
from worker.sinks import open_sink

SIZE = 1_000_000  # bytes of generated lines
LINES = count_lines(b"".join(generated_body(SIZE)))
# Sent at 64 KiB/s after the first 300,000 bytes (tests/httpserver.py drips at most one
# 64 KiB piece a second): about 11 s of loading on any machine, so that an engine
# stopped once the first documents are searchable is stopped mid-load.
PACE = {"drip_after": 300_000, "drip": 64 * 1024}
WAIT = 300.0  # an engine restart takes 20-40 s on a busy 2-core machine


@pytest.fixture(scope="module")
def engine() -> Iterator[PrivateEngine]:
    with private_engine("elasticsearch") as node:
        yield node


@pytest.fixture
def logs() -> Iterator[LogServer]:
    with serve_directory(None) as server:
        yield server


@dataclass
class Build:
    uuid: str
    prefix: str
    sink: dict[str, Any]


@pytest.fixture
def build() -> Build:
    prefix = index_prefix("e2e")
    return Build(
        uuid.uuid4().hex,
        prefix,
        {"index_prefix": prefix, "build_index": build_index_for(prefix)},
    )


def config_for(
    engine: PrivateEngine, gearmand: Gearmand, logs: LogServer, build: Build, **sink: Any
) -> dict[str, Any]:
    return {
        "gearman": [gearmand.address],
        "sink": {"url": f"elasticsearch+{engine.url}", **build.sink, **sink},
        "fetch": {"allow": [logs.base_url + "/"], "connect_timeout": 2.0, "backoff": 0.1},
        "log_format": "json",
    }


def big_file(logs: LogServer, name: str, size: int = SIZE, *, paced: bool = True) -> Job:
    logs.behave(f"/{name}", body_size=size, **(PACE if paced else {}))
    return Job(source_url=logs.url(name), fields={"filename": name}, tags=())


def of_build(build: Build, jobs: list[Job]) -> list[Job]:
    tracking = BuildTracking(files=len(jobs), run_id=uuid.uuid4().hex)
    return [
        Job(job.source_url, {**job.fields, "build_uuid": build.uuid}, job.tags, build=tracking)
        for job in jobs
    ]


def submit_in_background(gearmand: Gearmand, jobs: list[Job]) -> tuple[threading.Thread, list]:
    """Submit `jobs` and wait for their answers in a thread; the answers land in the list."""
    answers: list[list[Outcome]] = []

    def wait() -> None:
        with Submitter([gearmand.address], connect_timeout=5.0) as submitter:
            submissions = [Submission(job.fields["filename"], job) for job in jobs]
            answers.append(submitter.submit(submissions, wait=True, timeout=WAIT))

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread, answers


def request(engine: PrivateEngine, path: str, body: dict[str, Any] | None = None) -> Any:
    """POST `body` (or nothing) to the engine; its JSON answer. An engine just started
    answers 503 until its indices' shards are back: asked again then."""
    call = urllib.request.Request(
        f"{engine.url}{path}",
        data=json.dumps(body).encode() if body is not None else b"",
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    deadline = time.monotonic() + WAIT
    while True:
        try:
            with urllib.request.urlopen(call, timeout=60) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            if error.code != 503 or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def stored(engine: PrivateEngine, build: Build, filename: str) -> tuple[int, int]:
    """Documents of `filename` in the engine now, and how many runs (generations) wrote them."""
    pattern = f"{build.prefix}*"
    request(engine, f"/{pattern}/_refresh?allow_no_indices=true")
    query = {"bool": {"filter": [{"term": {"filename.raw": filename}}]}}
    answer = request(
        engine,
        f"/{pattern}/_search?allow_no_indices=true",
        {
            "query": query,
            "size": 0,
            "track_total_hits": True,
            "aggs": {"runs": {"cardinality": {"field": "generation"}}},
        },
    )
    runs = answer.get("aggregations", {}).get("runs", {}).get("value", 0)  # none: no index
    return int(answer["hits"]["total"]["value"]), int(runs)


def wait_for_documents(engine: PrivateEngine, build: Build, filename: str) -> None:
    """Until the load of `filename` has begun: some of its documents are searchable."""
    deadline = time.monotonic() + WAIT
    while stored(engine, build, filename)[0] == 0:
        assert time.monotonic() < deadline, "the load never began"
        time.sleep(0.2)


def outcomes(engine: PrivateEngine, build: Build) -> list[dict[str, Any]]:
    query = {"bool": {"filter": [{"term": {"type": "file"}}, {"term": {"build_uuid": build.uuid}}]}}
    answer = request(engine, f"/{build.sink['build_index']}/_search", {"query": query, "size": 100})
    return [hit["_source"] for hit in answer["hits"]["hits"]]


def build_summary(engine: PrivateEngine, build: Build) -> dict[str, Any] | None:
    store = open_sink(f"elasticsearch+{engine.url}", SinkConfig(**build.sink))
    try:
        return store.get_build(build.uuid)
    finally:
        store.close()


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM), for the figures; never asserted."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def assert_indexed_once(
    engine: PrivateEngine, build: Build, answers: list[list[Outcome]], expected: dict[str, int]
) -> None:
    """Every file answered ok with its exact count, stored once by one run, its outcome
    ok, and the build summary right."""
    [results] = answers
    assert sorted(outcome.path for outcome in results) == sorted(expected)
    for outcome in results:
        assert outcome.ok, f"{outcome.path}: {outcome.error}"
        assert outcome.summary is not None
        lines = expected[outcome.path]
        assert outcome.summary.lines == outcome.summary.indexed == lines, outcome.summary
        assert outcome.summary.failed == 0
        assert stored(engine, build, outcome.path) == (lines, 1)
    recorded = {o["filename"]: o for o in outcomes(engine, build)}
    assert sorted(recorded) == sorted(expected)
    for name, lines in expected.items():
        assert recorded[name]["status"] == "ok", recorded[name]
        assert recorded[name]["lines"] == recorded[name]["indexed"] == lines
    summary = build_summary(engine, build)
    assert summary is not None, "no build summary"
    assert summary["file_count"] == len(expected)
    assert summary["files_failed"] == 0 and summary["errors"] == []
    assert summary["lines"] == summary["indexed"] == sum(expected.values())


def messages(worker: WorkerProcess) -> list[str]:
    return [record["message"] for record in worker.records()]


@dataclass
class Load:
    worker: WorkerProcess
    thread: threading.Thread
    answers: list[list[Outcome]]
    stopped: float  # time.monotonic() when the engine was stopped

    def answered(self) -> float:
        """Wait for the answers; when they came (time.monotonic())."""
        self.thread.join(timeout=WAIT)
        assert not self.thread.is_alive(), f"no answer:\n{self.worker.text()}"
        return time.monotonic()


@contextmanager
def stopped_mid_load(
    tmp_path: Path,
    gearmand: Gearmand,
    logs: LogServer,
    engine: PrivateEngine,
    build: Build,
    **sink: Any,
) -> Iterator[Load]:
    """One `log-worker` process loading big.log of `build`, the engine stopped once
    the load has begun."""
    config = config_for(engine, gearmand, logs, build, **sink)
    jobs = of_build(build, [big_file(logs, "big.log")])
    with start_worker(
        tmp_path, config, "--processes", "1", "--allow", logs.base_url + "/"
    ) as worker:
        wait_for_workers(gearmand, 1)
        thread, answers = submit_in_background(gearmand, jobs)
        wait_for_documents(engine, build, "big.log")
        stopped = time.monotonic()
        engine.stop()
        yield Load(worker, thread, answers, stopped)


def test_engine_stopped_mid_load_and_back_within_the_budget(
    tmp_path: Path, gearmand: Gearmand, logs: LogServer, engine: PrivateEngine, build: Build
) -> None:
    with stopped_mid_load(tmp_path, gearmand, logs, engine, build) as load:
        time.sleep(10)
        engine.start()
        back = time.monotonic()
        done = load.answered()
        rss = peak_rss_kib(load.worker.process.pid)
        assert_indexed_once(engine, build, load.answers, {"big.log": LINES})
        print(
            f"engine down {back - load.stopped:.1f} s, job done {done - back:.1f} s after; "
            f"worker VmHWM {rss} KiB; log: {[m for m in messages(load.worker) if 'again' in m]}"
        )


def test_engine_down_past_the_budget_holds_the_job_until_it_returns(
    tmp_path: Path, gearmand: Gearmand, logs: LogServer, engine: PrivateEngine, build: Build
) -> None:
    budget = {"outage_seconds": 3}  # the sink gives the engine up within seconds
    with stopped_mid_load(tmp_path, gearmand, logs, engine, build, **budget) as load:
        held = load.worker.wait_for(
            lambda r: "held until the sink answers again" in r["message"], timeout=WAIT
        )
        assert "gave up after" in held["error"], held
        # Held, unanswered: still the worker's job for gearmand (1 job, 1 running, 1
        # worker), not a hand-back that gearmand would count against --job-retries.
        time.sleep(3)
        assert queue_status(gearmand.port)[FUNCTION_NAME] == (1, 1, 1)
        assert load.thread.is_alive() and load.answers == []
        engine.start()
        back = time.monotonic()
        done = load.answered()
        rss = peak_rss_kib(load.worker.process.pid)
        assert_indexed_once(engine, build, load.answers, {"big.log": LINES})
        said = messages(load.worker)
        # One job, taken once, run again by the same worker once the sink answered.
        assert len([m for m in said if m.startswith("job ") and "started" in m]) == 1, said
        assert len([m for m in said if "runs again" in m]) == 1, said
        assert not [m for m in said if "handed back" in m], said
        print(
            f"engine down {back - load.stopped:.1f} s, job done {done - back:.1f} s after it "
            f"was back; worker VmHWM {rss} KiB"
        )


def test_worker_stopped_while_waiting_for_the_engine_hands_the_job_back(
    tmp_path: Path, gearmand: Gearmand, logs: LogServer, engine: PrivateEngine, build: Build
) -> None:
    # The default budget: without the stop ending the wait, SIGTERM would take up to
    # sink.outage_seconds (600 s), far longer than the stop is given below.
    with stopped_mid_load(tmp_path, gearmand, logs, engine, build) as load:
        load.worker.wait_for(lambda r: "retrying for up to 600 s" in r["message"], timeout=WAIT)
        assert load.worker.stop(timeout=60) == 0, load.worker.text()
        said = messages(load.worker)
        assert len([m for m in said if "handed back" in m]) == 1, said
        assert "Traceback" not in load.worker.text()
        # Back in the queue, unanswered, for the next worker.
        assert queue_status(gearmand.port)[FUNCTION_NAME] == (1, 0, 0)
        assert load.answers == []
        engine.start()
        config = config_for(engine, gearmand, logs, build)
        with start_worker(
            tmp_path, config, "--processes", "1", "--allow", logs.base_url + "/"
        ) as successor:
            load.answered()
            assert successor.stop() == 0
        assert_indexed_once(engine, build, load.answers, {"big.log": LINES})
