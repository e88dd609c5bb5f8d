"""Two real gearmands (Debian's, persistent libsqlite3 queue), the `log-shipper submit`
hook, a pool of real `log-worker` processes and the real HTTP log server, into SQLite.

- workers connected to both servers drain both;
- the hook fails over: a server that is down, or dies while the hook submits, costs one
  warning line naming it and exit 0, and its share of the jobs goes to the other;
- a gearmand SIGKILLed with jobs queued and started again loses none of them: the
  workers reconnect and every line of every file is indexed exactly once.

Expected counts come from the files themselves (tests.paths.count_lines): each line is
one oslo-format event (no timestamps, no continuation lines, no DEBUG), so one document.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.gearmand import Gearmand, queue_status, queued_jobs
from tests.httpserver import LogServer, serve_directory
from tests.paths import count_lines
from tests.test_submit_cli import interrupt, run_cli, start_cli
from tests.test_worker_cli import WorkerProcess, sqlite_count, start_worker, worker_config
from worker.job import FUNCTION_NAME

BUILD_UUID = "2f0c9d3e5b8a4c61a7e4d2b19c0f8e57"
WAIT = 120.0  # a busy machine; the figures, not this bound, say how long it took


def write_build(root: Path, files: int, lines: int) -> dict[str, int]:
    """`files` logs of `lines` distinct lines each under root/logs; path -> its line count."""
    counts = {}
    for number in range(files):
        relative = f"logs/screen-part{number:04d}.txt"
        data = "".join(f"file {number} line {n}: the quick brown fox\n" for n in range(lines))
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(data)
        counts[relative] = count_lines(data.encode())
    return counts


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Gearmand, Gearmand]]:
    """Gearmand A and B, both started; stopped afterwards."""
    first, second = Gearmand(tmp_path / "gearmand-a"), Gearmand(tmp_path / "gearmand-b")
    first.start()
    try:
        second.start()
        try:
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


@pytest.fixture
def log_server(tmp_path: Path) -> Iterator[LogServer]:
    with serve_directory(tmp_path) as running:
        yield running


def hook(server: LogServer, root: Path, *gearmands: Gearmand) -> list[str]:
    """`log-shipper submit` of the build under `root` (published at server's /build/)."""
    args = ["submit", "--log-url", server.url("build/"), "--log-dir", str(root)]
    args += ["--build-uuid", BUILD_UUID, "--job-name", "two-gearmands", "--connect-timeout", "2"]
    for gearmand in gearmands:
        args += ["--gearman", gearmand.address]
    return args


def queued(gearmand: Gearmand) -> int:
    return queue_status(gearmand.port).get(FUNCTION_NAME, (0, 0, 0))[0]


def wait_for_workers(gearmand: Gearmand, count: int) -> None:
    deadline = time.monotonic() + WAIT
    while queue_status(gearmand.port).get(FUNCTION_NAME, (0, 0, 0))[2] < count:
        assert time.monotonic() < deadline, queue_status(gearmand.port)
        time.sleep(0.05)


def wait_for_documents(database: Path, expected: int, worker: WorkerProcess) -> float:
    """Until the sink holds `expected` documents and both queues are empty; when."""
    deadline = time.monotonic() + WAIT
    while not (database.exists() and sqlite_count(database) >= expected):
        assert worker.process.poll() is None, worker.text()
        assert time.monotonic() < deadline, f"{sqlite_count(database)} of {expected} documents"
        time.sleep(0.1)
    return time.monotonic()


@contextmanager
def pool(tmp_path: Path, server: LogServer, *gearmands: Gearmand) -> Iterator[WorkerProcess]:
    """Two `log-worker` processes, each taking jobs from every one of `gearmands` (once
    each gearmand counts both: registering is asynchronous)."""
    config = worker_config(
        tmp_path,
        [gearmand.address for gearmand in gearmands],
        fetch={"allow": [server.base_url + "/"]},
        log_format="json",
    )
    with start_worker(tmp_path, config, "--processes", "2") as worker:
        for gearmand in gearmands:
            wait_for_workers(gearmand, 2)
        yield worker


def slow_build(root: Path, server: LogServer, files: int, delay: float) -> dict[str, int]:
    """write_build of `files` files of 400 lines, each answered after `delay` seconds."""
    counts = write_build(root, files=files, lines=400)
    for path in counts:
        server.behave(f"/build/{path}", delay=delay)
    return counts


@pytest.mark.timeout(300)
def test_workers_of_two_gearmands_drain_both(
    tmp_path: Path, servers: tuple[Gearmand, Gearmand], log_server: LogServer
) -> None:
    first, second = servers
    counts = write_build(tmp_path / "build", files=8, lines=300)
    expected = sum(counts.values())
    assert expected == 8 * 300

    result = run_cli(*hook(log_server, tmp_path / "build", first, second))

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # both up: nothing to warn about
    assert result.stdout == f"8 of 8 files queued for build {BUILD_UUID}\n"
    on_first, on_second = queued(first), queued(second)
    assert on_first + on_second == 8
    assert on_first > 0 and on_second > 0, "gear sends jobs to its servers in turn"

    with pool(tmp_path, log_server, first, second) as worker:
        wait_for_documents(tmp_path / "logs.db", expected, worker)
        assert worker.stop() == 0
    assert sqlite_count(tmp_path / "logs.db") == expected
    assert queued(first) == queued(second) == 0
    assert "Traceback" not in worker.text()


@pytest.mark.timeout(120)
def test_hook_fails_over_to_the_second_gearmand_when_the_first_is_down(
    tmp_path: Path, servers: tuple[Gearmand, Gearmand], log_server: LogServer
) -> None:
    first, second = servers
    first.stop()  # its address is known, nothing listens there now
    counts = write_build(tmp_path / "build", files=6, lines=10)

    result = run_cli(*hook(log_server, tmp_path / "build", first, second))

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"6 of 6 files queued for build {BUILD_UUID}\n"
    [line] = result.stderr.splitlines()
    assert line == (
        f"log-shipper submit: warning: Gearman server {first.address} is unreachable "
        "(connection refused); its jobs went to the other servers"
    ), line
    jobs = queued_jobs(second.port)
    assert sorted(job["source_url"] for job in jobs) == [
        log_server.url(f"build/{path}") for path in sorted(counts)
    ]


@pytest.mark.timeout(300)
def test_hook_fails_over_when_the_first_gearmand_dies_while_submitting(
    tmp_path: Path, servers: tuple[Gearmand, Gearmand], log_server: LogServer
) -> None:
    first, second = servers
    files = 400  # about 3 s of submitting (gearmand stores each job): killed early on
    counts = write_build(tmp_path / "build", files=files, lines=1)
    process = start_cli(*hook(log_server, tmp_path / "build", first, second))

    def submitting() -> bool:
        return queued(first) >= 5

    result = interrupt(process, submitting, first.kill, within=60.0)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{files} of {files} files queued for build {BUILD_UUID}\n"
    [line] = result.stderr.splitlines()
    assert line == (
        f"log-shipper submit: warning: Gearman server {first.address} went away; "
        "the jobs after that went to the other servers"
    ), line
    # The jobs the first server had taken are in its queue database: started again, it
    # still has them. Together the two servers hold every file.
    first.start()
    on_first = [job["source_url"] for job in queued_jobs(first.port)]
    on_second = [job["source_url"] for job in queued_jobs(second.port)]
    assert 5 <= len(on_first) < files, (len(on_first), len(on_second))
    every = {log_server.url(f"build/{path}") for path in counts}
    assert set(on_first) | set(on_second) == every
    # A job the killed server had stored but not yet acknowledged was given to the other
    # server too: at most the one in flight. A second run replaces the first's documents.
    duplicates = len(on_first) + len(on_second) - files
    assert 0 <= duplicates <= 1, duplicates
    print(
        f"\nFIGURE killed mid-submit: {len(on_first)} jobs on A (kept across SIGKILL), "
        f"{len(on_second)} on B, {files} files, {duplicates} submitted twice"
    )


@pytest.mark.timeout(300)
def test_hook_waiting_gives_the_jobs_of_a_dead_gearmand_to_the_other(
    tmp_path: Path, servers: tuple[Gearmand, Gearmand], log_server: LogServer
) -> None:
    first, second = servers
    # The first server's jobs are still running when it is killed.
    expected = sum(slow_build(tmp_path / "build", log_server, files=8, delay=2.0).values())

    with pool(tmp_path, log_server, first, second) as worker:
        args = hook(log_server, tmp_path / "build", first, second)
        process = start_cli(*args, "--wait", "--timeout", "100")

        def running_on_first() -> bool:
            return queue_status(first.port).get(FUNCTION_NAME, (0, 0, 0))[1] > 0

        result = interrupt(process, running_on_first, first.kill, within=60.0)
        assert worker.stop() == 0

    assert result.returncode == 0, result.stderr
    [line] = result.stderr.splitlines()
    assert line == (
        f"log-shipper submit: warning: Gearman server {first.address} went away; "
        "its unfinished jobs and those after went to the other servers"
    ), line
    assert f"8 files submitted, 0 failed, 0 skipped; {expected} lines read, " in result.stdout
    assert sqlite_count(tmp_path / "logs.db") == expected
    assert "Traceback" not in worker.text()


@pytest.mark.timeout(300)
def test_gearmand_killed_with_jobs_queued_loses_none(
    tmp_path: Path, servers: tuple[Gearmand, Gearmand], log_server: LogServer
) -> None:
    first, second = servers
    # Each job takes a second at least: jobs wait in the queues.
    counts = slow_build(tmp_path / "build", log_server, files=12, delay=1.0)
    expected = sum(counts.values())
    assert expected == 12 * 400

    with pool(tmp_path, log_server, first, second) as worker:
        result = run_cli(*hook(log_server, tmp_path / "build", first, second))
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        total, running, _ = queue_status(first.port)[FUNCTION_NAME]
        waiting = total - running
        assert waiting > 0, "no job waiting on the first server"

        first.kill()
        first.start()
        restarted = time.monotonic()
        wait_for_workers(first, 2)  # both workers back on it, and registered again
        reconnected = time.monotonic()
        done = wait_for_documents(tmp_path / "logs.db", expected, worker)
        worker.wait_for(
            lambda r: r["message"].startswith(f"reconnected to Gearman server {first.address}")
        )
        deadline = time.monotonic() + WAIT
        while queued(first) or queued(second):
            assert time.monotonic() < deadline, [queue_status(s.port) for s in servers]
            time.sleep(0.1)
        assert worker.stop() == 0

    indexed = sqlite_count(tmp_path / "logs.db")
    assert indexed == expected
    for number, path in enumerate(sorted(counts)):
        assert sqlite_count(tmp_path / "logs.db", f'"file {number} line"') == counts[path], path
    assert "Traceback" not in worker.text()
    print(
        f"\nFIGURE gearmand SIGKILL with {waiting} jobs waiting and {running} running "
        f"on it: {indexed} of {expected} lines indexed, 0 duplicates; both workers back "
        f"{reconnected - restarted:.1f} s after the restart; all indexed "
        f"{done - restarted:.1f} s after the restart"
    )
