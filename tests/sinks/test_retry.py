"""The engine sinks' retry policy (worker/sinks/retry.py): waits, budget, log lines.

The policy runs on an injected clock first, so that a 600 s budget is checked in no
time; then against a private OpenSearch node of this module that is stopped and started
again in the middle of a write, and overloaded by several writers at once.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from tests.engines import PrivateEngine, build_index_for, index_prefix, private_engine
from worker.config import SinkConfig
from worker.documents import Document, build_documents, file_run
from worker.errors import EngineOutage
from worker.events import Event
from worker.job import Job
from worker.sinks import open_sink
from worker.sinks.base import WriteResult
from worker.sinks.engine import EngineSink
from worker.sinks.retry import (
    WARN_EVERY,
    OutageLog,
    Retry,
    RetryPolicy,
    next_wait,
    no_answer,
    wait_ceiling,
)

ENGINE = "opensearch at http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("failures", "ceiling"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (6, 16.0), (7, 30.0), (40, 30.0)],
)
def test_the_longest_wait_doubles_up_to_the_cap(failures: int, ceiling: float) -> None:
    assert wait_ceiling(failures, base=0.5, cap=30.0) == ceiling


def test_a_wait_is_the_draw_of_the_ceiling_and_never_past_the_budget() -> None:
    assert next_wait(3, base=0.5, cap=30.0, left=100.0, draw=0.25) == 0.5
    assert next_wait(3, base=0.5, cap=30.0, left=100.0, draw=0.0) == 0.0
    assert next_wait(10, base=0.5, cap=30.0, left=4.0, draw=0.99) == 4.0


class Clock:
    """Time that passes only when the policy sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def policy(clock: Clock, budget: float = 600.0) -> RetryPolicy:
    return RetryPolicy(
        ENGINE,
        budget=budget,
        base=0.5,
        cap=30.0,
        outages=OutageLog(ENGINE, clock=clock),
        clock=clock,
        sleep=clock.sleep,
        draw=lambda: 0.5,
    )


def failing(causes: list[str], *, answered: bool = False) -> Callable[[], str]:
    """An attempt that fails with each of `causes` in turn, then returns "done"."""
    left = list(causes)

    def attempt() -> str:
        if left:
            raise Retry(left.pop(0), answered=answered)
        return "done"

    return attempt


def test_an_engine_back_within_the_budget_is_waited_for(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    caplog.set_level(logging.DEBUG, logger="worker.sinks.retry")
    causes = ["connection refused"] * 12
    assert policy(clock).run(failing(causes)) == "done"
    # Half of each ceiling: 0.25, 0.5, 1, 2, 4, 8, then 15 (half the 30 s cap).
    assert clock.waits == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0, 15.0, 15.0, 15.0]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{ENGINE}: connection refused; retrying for up to 600 s",
        f"{ENGINE} answering again after 105.8 s",
    ]
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 11


def test_the_budget_running_out_raises_engine_outage_naming_engine_and_cause() -> None:
    clock = Clock()
    with pytest.raises(EngineOutage) as info:
        policy(clock, budget=5.0).run(failing(["HTTP 503: unavailable"] * 100, answered=True))
    assert str(info.value) == (
        f"{ENGINE} overloaded: HTTP 503: unavailable; gave up after 5 s of retries"
    )
    assert clock.now - 1000.0 == 5.0  # the last attempt at the budget's end, none after


def test_progress_starts_the_budget_again() -> None:
    clock = Clock()
    outcomes = iter([False, True, False, True, False, True, False])

    def attempt() -> str:
        landed = next(outcomes, None)
        if landed is None:
            return "done"
        raise Retry("rejected", answered=True, progress=landed)

    # Each wait is 4 s and the budget 5 s: only the restarts let it reach the end.
    fixed = RetryPolicy(
        ENGINE, 5.0, 4.0, 4.0, OutageLog(ENGINE, clock=clock), clock, clock.sleep, lambda: 1.0
    )
    assert fixed.run(attempt) == "done"


def test_outages_within_a_minute_of_a_warning_log_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    caplog.set_level(logging.DEBUG, logger="worker.sinks.retry")
    outages = OutageLog(ENGINE, clock=clock)
    for _ in range(5):  # an engine flapping every 2 s
        outages.failed("connection reset", 600)
        clock.now += 1
        outages.answered()
        clock.now += 1
    clock.now += WARN_EVERY
    outages.failed("HTTP 429: rejected", 600)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{ENGINE}: connection reset; retrying for up to 600 s",
        f"{ENGINE} answering again after 1.0 s",
        f"{ENGINE}: HTTP 429: rejected; retrying for up to 600 s",
    ]


def test_no_answer_names_the_cause_in_the_exception_chain() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as inner:
            raise RuntimeError("HTTPConnection(host='h', port=1): Failed") from inner
    except RuntimeError as outer:
        assert no_answer(outer) == "connection refused"
    assert no_answer(RuntimeError("Read timed out. (read timeout=120)")) == "timed out"
    assert no_answer(RuntimeError("something else")) == "something else"


def test_interactive_reads_give_up_at_once_on_an_engine_that_never_answered() -> None:
    clock = Clock()
    quick = policy(clock).interactive(10.0)
    with pytest.raises(EngineOutage) as info:
        quick.run(failing(["connection refused"]))
    assert str(info.value) == f"{ENGINE} unreachable: connection refused"
    assert clock.waits == []
    # Once it has answered, an engine that goes away is waited for, briefly.
    assert quick.run(failing([])) == "done"
    with pytest.raises(EngineOutage) as info:
        quick.run(failing(["connection reset"] * 100))
    assert str(info.value) == (
        f"{ENGINE} unreachable: connection reset; gave up after 10 s of retries"
    )
    assert sum(clock.waits) == 10.0


# -- against a real engine of our own, stopped and overloaded ----------------------------
# One private OpenSearch node for the scenarios below, with the write pool of the issue's
# overload run (1 thread, queue of 1): one bulk request at a time fits, several do not.
TIGHT_WRITE_POOL = {"thread_pool.write.size": "1", "thread_pool.write.queue_size": "1"}


@pytest.fixture(scope="module")
def node() -> Iterator[PrivateEngine]:
    with private_engine("opensearch", TIGHT_WRITE_POOL) as engine:
        yield engine


def node_sink(engine: PrivateEngine, prefix: str, **options: Any) -> EngineSink:
    config = SinkConfig(
        url=f"opensearch+{engine.url}",
        index_prefix=prefix,
        build_index=build_index_for(prefix),
        backoff=0.05,
        max_backoff=1.0,
        **options,
    )
    sink = open_sink(config.url, config)
    assert isinstance(sink, EngineSink)
    return sink


def job_of(filename: str) -> Job:
    return Job(
        source_url=f"http://logs.example.org/1/{filename}",
        fields={"build_uuid": "b0a1e2d3c4f5", "filename": filename},
        tags=("console",),
    )


def events(count: int, days: int = 1) -> Iterator[Event]:
    """`count` events, one a line, over `days` days: as many daily indices, so that one
    bulk request is as many writes on the engine's write pool."""
    for number in range(1, count + 1):
        day = 1 + number % days
        stamp = f"2026-11-{day:02d}T10:{number // 3600 % 60:02d}:{number // 60 % 60:02d}.0Z"
        yield Event(number, stamp, f"line {number} of a long job log", {"loglevel": "INFO"})


def engine_json(engine: PrivateEngine, path: str) -> Any:
    with urllib.request.urlopen(f"{engine.url}{path}", timeout=30) as answer:
        return orjson.loads(answer.read())


def engine_count(engine: PrivateEngine, prefix: str) -> int:
    engine_json(engine, f"/{prefix}*/_refresh")
    return int(engine_json(engine, f"/{prefix}*/_count")["count"])


def write_rejections(engine: PrivateEngine) -> int:
    stats = engine_json(engine, "/_nodes/stats/thread_pool")
    return sum(int(node["thread_pool"]["write"]["rejected"]) for node in stats["nodes"].values())


def test_a_write_rides_out_an_engine_stopped_and_started_again(
    node: PrivateEngine, caplog: pytest.LogCaptureFixture
) -> None:
    total, chunk, before_stop = 12_000, 500, 2_500
    prefix = index_prefix("sinktest")
    sink = node_sink(node, prefix, chunk_documents=chunk, concurrent_requests=1)
    sink.prepare()
    job = job_of("logs/long.txt")
    run = sink.begin_file(file_run(job, time.time_ns()))
    stopped = threading.Event()

    def documents() -> Iterator[Document]:
        for number, document in enumerate(
            build_documents(events(total), job, prefix, run.generation), 1
        ):
            yield document
            if number == before_stop:
                stopped.wait(300)  # the rest of the file is written while the engine is away

    outcome: list[WriteResult | BaseException] = []

    def write() -> None:
        try:
            written = sink.write(documents())
            sink.replace_file(run, written)
            outcome.append(written)
        except BaseException as exc:  # reported by the test's thread
            outcome.append(exc)

    caplog.set_level(logging.INFO)
    writer = threading.Thread(target=write)
    writer.start()
    # With one request at a time into one index, the tight write pool is never full: the
    # only trouble is the outage. The chunks built before the pause are in (the last one
    # waits for its next document).
    deadline = time.monotonic() + 120
    while engine_count(node, prefix) < before_stop - chunk and time.monotonic() < deadline:
        time.sleep(0.2)
    node.stop()
    stopped.set()

    # Meanwhile a sink allowed to wait 3 s only gives up, naming the engine and the cause.
    impatient = node_sink(node, index_prefix("sinktest"), outage_seconds=3.0)
    with pytest.raises(EngineOutage) as info:
        impatient.write(build_documents(events(10), job_of("logs/other.txt"), prefix))
    assert str(info.value).startswith(f"opensearch at {node.url} unreachable: connection refused")
    assert "gave up after 3 s of retries" in str(info.value)

    node.start()
    writer.join(300)
    assert not writer.is_alive()
    (written,) = outcome
    assert isinstance(written, WriteResult), written
    assert (written.indexed, written.failed) == (total, 0)
    assert engine_count(node, prefix) == total  # each document once: ids are its line's
    # Every WARNING of any logger (the engine clients' too), but the impatient sink's.
    ours = [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING and "retrying for up to 3 s" not in record.getMessage()
    ]
    assert len(ours) == 2, ours
    assert ours[0].startswith(f"opensearch at {node.url}: connection refused; retrying for up to")
    assert ours[1].startswith(f"opensearch at {node.url} answering again after ")


def test_overload_slows_writers_down_and_loses_nothing(node: PrivateEngine) -> None:
    writers, per_file = 4, 3_000
    prefix = index_prefix("sinktest")
    build_uuid = job_of("x").fields["build_uuid"]
    rejected_before = write_rejections(node)
    results: dict[str, WriteResult | BaseException] = {}
    outcomes: dict[str, list[dict[str, Any]]] = {}

    def index_file(number: int) -> None:
        filename = names[number]
        sink = node_sink(node, prefix, chunk_documents=200, concurrent_requests=2)
        try:
            sink.prepare()
            job = job_of(filename)
            documents = build_documents(events(per_file, days=3), job, prefix)
            results[filename] = sink.write(documents)
            outcome = {"type": "file", "build_uuid": build_uuid, "filename": filename}
            outcomes[filename] = sink.record_file(outcome)
            sink.put_build({"build_uuid": f"{build_uuid}{number}", "files": writers})
        except BaseException as exc:  # reported by the test's thread
            results[filename] = exc
        finally:
            sink.close()

    names = [f"logs/file-{number}.txt" for number in range(writers)]
    threads = [threading.Thread(target=index_file, args=(number,)) for number in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert write_rejections(node) > rejected_before  # the engine did turn requests away
    for name in names:
        result = results[name]
        assert isinstance(result, WriteResult), result
        assert (result.indexed, result.failed) == (per_file, 0)
    assert engine_count(node, prefix) == writers * per_file
    reader = node_sink(node, prefix)
    for number in range(writers):
        assert reader.get_build(f"{build_uuid}{number}") == {
            "build_uuid": f"{build_uuid}{number}",
            "files": writers,
        }
    # The last file recorded saw every outcome of the build.
    assert max(len(recorded) for recorded in outcomes.values()) == writers


@pytest.mark.timeout(60)
def test_stop_waiting_ends_a_wait_for_the_engine_at_once() -> None:
    # A 600 s budget and waits of up to 30 s: only stop_waiting() ends this in time.
    # The engine has answered before: even the interactive policy would wait.
    policy = RetryPolicy(ENGINE, 600.0, 30.0, 30.0, OutageLog(ENGINE, ever_answered=True))
    attempts: list[int] = []

    def attempt() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            # Stopped once the policy waits: from another thread, as the worker's stop is.
            threading.Timer(0.2, policy.stop_waiting).start()
        raise Retry("connection refused", answered=False)

    with pytest.raises(EngineOutage) as raised:
        policy.run(attempt)
    assert str(raised.value) == (
        f"{ENGINE} unreachable: connection refused; no longer waited for: the worker is stopping"
    )
    assert len(attempts) == 1
    # And from then on, every request of the sink gives up after its first failure.
    with pytest.raises(EngineOutage, match="no longer waited for: the worker is stopping"):
        policy.interactive(10.0).run(attempt)
    assert len(attempts) == 2
