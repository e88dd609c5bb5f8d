"""`log-worker --processes 2` as a real process tree against a real gearmand: jobs shared
by the children, SIGTERM, a killed child restarted, a job whose worker dies mid-job
finished by the other child without duplicates (worker/pool.py)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.gearmand import Gearmand
from tests.httpserver import LogServer
from tests.paths import CORPUS
from tests.test_gearmand import connect_client, submit, wait_complete
from tests.test_worker_cli import (
    WAIT,
    alive,
    job_for,
    sqlite_count,
    start_worker,
    submit_jobs,
    summary_of,
    wait_for_workers,
    worker_config,
)
from worker.config import FetchConfig, SinkConfig, WorkerConfig
from worker.job import Job, JobSummary
from worker.pipeline import run_job
from worker.pool import Supervisor
from worker.sinks import open_sink

FILES = (
    "zuul-jobs-fixture/job-output.txt",
    "os-loganalyze/devstack@c-api.service.log.txt",
    "os-loganalyze/devstack@c-vol.service.log.txt",
    "zuul-jobs-fixture/job-output.txt.gz",
)
BIG = "bugswarm/2360239904-orig.log"  # 386 kB, 4922 lines, multi-line events


def test_children_share_the_jobs_and_stop_on_sigterm(
    tmp_path: Path, gearmand: Gearmand, server: LogServer
) -> None:
    for path in FILES:
        # Slow answers: a child busy with one job leaves the next to the other child.
        server.behave(path, delay=0.3)
    database = tmp_path / "logs.db"
    config = worker_config(tmp_path, [gearmand.address], database)
    args = ("--processes", "2", "--log-format", "json", "--allow", server.url(""))
    with start_worker(tmp_path, config, *args) as pool:
        children = pool.started_children(2)
        wait_for_workers(gearmand, 2)
        jobs = [job_for(server.url(path), path.replace("/", "-")) for path in FILES]
        summaries = [summary_of(outcome) for outcome in submit_jobs(gearmand.address, jobs)]
        done = [r for r in pool.records() if "indexed" in r]
        assert len(done) == len(FILES)
        assert {r["pid"] for r in done} == set(children), "one child took every job"
        assert sqlite_count(database) == sum(s.indexed for s in summaries) > 0

        started = time.monotonic()
        assert pool.stop() == 0, pool.text()
        assert time.monotonic() - started < 5
    assert not any(alive(pid) for pid in children), "a child outlived the supervisor"
    stopped = {r["child_pid"] for r in pool.records() if r["message"].endswith("stopped")}
    assert stopped == set(children)
    assert "Traceback" not in pool.text()


def test_a_killed_child_is_restarted_and_the_pool_goes_on(
    tmp_path: Path, gearmand: Gearmand, server: LogServer
) -> None:
    config = worker_config(tmp_path, [gearmand.address])
    args = ("--processes", "2", "--log-format", "json", "--allow", server.url(""))
    with start_worker(tmp_path, config, *args) as pool:
        first, second = pool.started_children(2)
        wait_for_workers(gearmand, 2)
        os.kill(first, signal.SIGKILL)
        restart = pool.wait_for(lambda r: r.get("child_pid") == first and "restart_in" in r)
        assert restart["level"] == "WARNING"
        assert restart["restart_in"] == 1
        assert "killed by SIGKILL" in restart["message"]
        replacement = pool.started_children(3)[2]
        assert replacement not in (first, second)
        assert alive(replacement) and alive(second)

        wait_for_workers(gearmand, 2)
        jobs = [job_for(server.url(FILES[0]), "job-output.txt")]
        [outcome] = submit_jobs(gearmand.address, jobs)
        assert summary_of(outcome).lines == 54
        pool.process.send_signal(signal.SIGINT)  # Ctrl-C stops the pool as SIGTERM does
        assert pool.process.wait(timeout=WAIT) == 0, pool.text()
    assert not alive(replacement) and not alive(second)
    assert "Traceback" not in pool.text()


def clean_run(tmp_path: Path, job: Job, allow: str) -> tuple[int, int]:
    """(documents stored, summary.indexed) of `job` run once, undisturbed, in-process
    into a database of its own."""
    database = tmp_path / "clean.db"
    config = WorkerConfig(
        sink=SinkConfig(url=f"sqlite:{database}"), fetch=FetchConfig(allow=(allow,))
    )
    sink = open_sink(config.sink.url, config.sink)
    try:
        sink.prepare()
        summary = run_job(job, config, sink)
    finally:
        sink.close()
    return sqlite_count(database), summary.indexed


@pytest.mark.parametrize(
    ("signum", "slowly"),
    [
        # Killed while the server stalls: gearmand sees the connection drop.
        (signal.SIGKILL, {"stall": 20.0}),
        # Stopped while it drips 4 bytes a second (no read times out, the deadline is an
        # hour away): the child ends its fetch and exits, leaving the job unanswered.
        (signal.SIGTERM, {"drip": 4}),
    ],
    ids=["sigkill-stall", "sigterm-drip"],
)
def test_the_job_of_a_child_ended_mid_job_is_finished_by_the_other(
    tmp_path: Path,
    gearmand: Gearmand,
    server: LogServer,
    signum: signal.Signals,
    slowly: dict[str, float],
) -> None:
    url = server.url(BIG)
    job = job_for(url, "orig.log")
    expected, indexed = clean_run(tmp_path, job, server.url(""))
    assert expected == indexed > 4000

    database = tmp_path / "logs.db"
    # Small reads and commits, so the ended child has stored part of the file: the
    # re-run must replace those documents, not add to them.
    config = worker_config(
        tmp_path,
        [gearmand.address],
        database,
        sink={"chunk_documents": 200},
        fetch={"chunk_bytes": 16384},
    )
    half = (CORPUS / BIG).stat().st_size // 2
    after = "stall_after" if "stall" in slowly else "drip_after"
    server.behave(BIG, **{after: half}, **slowly)
    args = ("--processes", "2", "--log-format", "json", "--allow", server.url(""))
    with start_worker(tmp_path, config, *args) as pool:
        pool.started_children(2)
        wait_for_workers(gearmand, 2)
        client = connect_client(gearmand.port)
        try:
            gearman_job = submit(client, {"source_url": url, "event": {"fields": job.fields}})
            taken = pool.wait_for(lambda r: r.get("source_url") == url)
            victim = taken["pid"]
            deadline = time.monotonic() + WAIT
            while sqlite_count(database) == 0:
                assert time.monotonic() < deadline, "nothing was stored before the stall"
                time.sleep(0.05)
            assert sqlite_count(database) < expected  # stalled: only part of the file
            server.behave(BIG)  # the next attempt gets the whole file at once
            os.kill(victim, signum)
            wait_complete(gearman_job, timeout=WAIT)
        finally:
            client.shutdown()
        assert not gearman_job.failure, b"".join(gearman_job.data)
        summary = JobSummary.from_json(b"".join(gearman_job.data))
        assert summary.indexed == indexed
        assert sqlite_count(database) == expected, "documents were lost or duplicated"
        finished = pool.wait_for(lambda r: r.get("source_url") == url and "indexed" in r)
        assert finished["pid"] != victim
        assert server.hits["/" + BIG] == 3  # the clean run, the ended child, the other
        if signum == signal.SIGTERM:
            handed = pool.wait_for(lambda r: "handed back" in r["message"])
            assert handed["pid"] == victim
            # Exit status 0 for the supervisor: a stop request, not a crash to restart.
            pool.wait_for(
                lambda r: r.get("child_pid") == victim and "not restarted" in r["message"]
            )
        assert pool.stop() == 0, pool.text()
    assert "Traceback" not in pool.text()


def test_children_stop_by_themselves_when_the_supervisor_is_killed(
    tmp_path: Path, gearmand: Gearmand
) -> None:
    config = worker_config(tmp_path, [gearmand.address])
    with start_worker(tmp_path, config, "--processes", "2", "--log-format", "json") as pool:
        children = pool.started_children(2)
        wait_for_workers(gearmand, 2)
        pool.process.kill()
        pool.process.wait(timeout=WAIT)
        deadline = time.monotonic() + WAIT
        while any(alive(pid) for pid in children):
            assert time.monotonic() < deadline, "orphaned children kept running"
            time.sleep(0.05)
        wait_for_workers(gearmand, 0)


# --- the supervisor on its own, with stand-in children ----------------------------------


def supervise(
    code: str,
    caplog: pytest.LogCaptureFixture,
    until: int,
    processes: int = 1,
    stable_after: float = 60.0,
) -> list[logging.LogRecord]:
    """Run a Supervisor of `python -c CODE` children (backoff 0.05 s doubling to 0.2 s)
    until `until` restarts are logged or it returns; its log records."""
    supervisor = Supervisor(
        [sys.executable, "-c", code],
        processes,
        initial_backoff=0.05,
        max_backoff=0.2,
        stable_after=stable_after,
    )
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(supervisor.run()))
    with caplog.at_level(logging.INFO, logger="worker.pool"):
        thread.start()
        deadline = time.monotonic() + WAIT
        while thread.is_alive():
            if sum(hasattr(r, "restart_in") for r in caplog.records) >= until:
                supervisor.request_stop(signal.SIGTERM)
            assert time.monotonic() < deadline, caplog.text
            thread.join(0.05)
    assert status == [0]
    return list(caplog.records)


def test_a_failing_child_is_restarted_with_doubling_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = supervise("import sys; sys.exit(3)", caplog, until=5)
    restarts = [r for r in records if hasattr(r, "restart_in")]
    assert [r.restart_in for r in restarts[:5]] == [0.05, 0.1, 0.2, 0.2, 0.2]
    assert all("exited with status 3" in r.getMessage() for r in restarts)
    assert all(r.levelno == logging.WARNING for r in restarts)


def test_backoff_starts_again_after_a_child_ran_for_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    code = "import sys, time; time.sleep(0.5); sys.exit(1)"
    records = supervise(code, caplog, until=3, stable_after=0.3)
    assert [r.restart_in for r in records if hasattr(r, "restart_in")][:3] == [0.05] * 3


def test_children_that_stop_cleanly_are_not_restarted(caplog: pytest.LogCaptureFixture) -> None:
    records = supervise("pass", caplog, until=1, processes=2)
    assert not any(hasattr(r, "restart_in") for r in records)
    assert sum("not restarted" in r.getMessage() for r in records) == 2
    assert records[-1].getMessage() == "no worker process left; exiting"
