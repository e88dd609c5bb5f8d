"""The `log-worker` command as a real subprocess: config checks, one job, SIGTERM, several
Gearman servers and reconnects, TLS to Gearman. `WorkerProcess` and `start_worker` serve
the pool, metrics and log tests too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gear
import orjson
import pytest
import yaml

from log_shipper.submit import Outcome, Submission, Submitter
from tests.gearmand import Gearmand, queue_status
from tests.httpserver import LogServer, free_port, make_certificate
from tests.paths import CORPUS, REPO
from tests.test_gearmand import connect_client, submit, wait_complete
from worker.job import FUNCTION_NAME, Job, JobSummary
from worker.sinks import open_sink

CONSOLE = "zuul-jobs-fixture/job-output.txt"
CONSOLE_LINES = 54
BIG = "os-loganalyze/syslog.txt"  # over 400 KB: more than one chunk
WAIT = 15.0


def worker_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "worker.cli", *args]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def spawn_worker(cwd: Path, *args: str) -> subprocess.Popen[str]:
    """`log-worker ARGS...` running in `cwd`, its output in pipes for communicate()."""
    return subprocess.Popen(
        worker_command(*args),
        cwd=cwd,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_worker(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        worker_command(*args),
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def worker_config(
    tmp_path: Path, gearman: list[str], database: Path | None = None, **more: Any
) -> dict[str, Any]:
    """A configuration for test workers: quick to give up on fetches, SQLite in tmp_path."""
    config: dict[str, Any] = {
        "gearman": gearman,
        "sink": {"url": f"sqlite:{database or tmp_path / 'logs.db'}"},
        "fetch": {"connect_timeout": 2.0, "read_timeout": 5.0, "retries": 0, "backoff": 0.01},
    }
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


@dataclass
class WorkerProcess:
    """A running `log-worker`; its stdout and stderr go to `log_file`, read as it runs."""

    process: subprocess.Popen[bytes]
    log_file: Path
    child_pids: set[int] = field(default_factory=set)  # every pool child seen started

    def text(self) -> str:
        return self.log_file.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        """The complete JSON log lines so far (a line still being written is left out)."""
        lines = self.text().split("\n")[:-1]
        records = [orjson.loads(line) for line in lines if line.startswith("{")]
        self.child_pids.update(r["child_pid"] for r in records if "child_pid" in r)
        return records

    def wait_for(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = WAIT
    ) -> dict[str, Any]:
        """The first JSON log line `match` accepts, waiting for it to be written."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self.records():
                if match(record):
                    return record
            assert self.process.poll() is None, f"log-worker exited:\n{self.text()}"
            assert time.monotonic() < deadline, f"no such log line:\n{self.text()}"
            time.sleep(0.05)

    def started_children(self, count: int) -> list[int]:
        """Pids of the first `count` children the supervisor started, in order."""
        deadline = time.monotonic() + WAIT
        while True:
            started = [
                r["child_pid"]
                for r in self.records()
                if "child_pid" in r and "started" in r["message"]
            ]
            if len(started) >= count:
                return started[:count]
            assert self.process.poll() is None, f"log-worker exited:\n{self.text()}"
            assert time.monotonic() < deadline, f"not {count} children:\n{self.text()}"
            time.sleep(0.05)

    def stop(self, timeout: float = WAIT) -> int:
        """SIGTERM, and the exit status within `timeout`."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def kill_all(self) -> None:
        self.records()
        for pid in [self.process.pid, *self.child_pids]:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=WAIT)


@contextmanager
def start_worker(
    tmp_path: Path, config: dict[str, Any], *args: str, env: dict[str, str] | None = None
) -> Iterator[WorkerProcess]:
    """`log-worker --config CONFIG ARGS...` in tmp_path; killed, with its children, if
    the test leaves it running."""
    number = len(list(tmp_path.glob("worker-*.yaml")))
    config_file = tmp_path / f"worker-{number}.yaml"
    config_file.write_text(yaml.safe_dump(config))
    log_file = tmp_path / f"worker-{number}.log"
    with open(log_file, "wb") as output:
        process = subprocess.Popen(
            worker_command("--config", str(config_file), *args),
            cwd=tmp_path,
            env={**environment(), **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    running = WorkerProcess(process, log_file)
    try:
        yield running
    finally:
        running.kill_all()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_for_workers(gearmand: Gearmand, count: int) -> None:
    """Until gearmand counts `count` workers for push-log: registering is asynchronous."""
    deadline = time.monotonic() + WAIT
    while queue_status(gearmand.port).get(FUNCTION_NAME, (0, 0, 0))[2] != count:
        assert time.monotonic() < deadline, queue_status(gearmand.port)
        time.sleep(0.05)


def job_for(url: str, filename: str) -> Job:
    return Job(
        source_url=url, fields={"build_uuid": uuid.uuid4().hex, "filename": filename}, tags=()
    )


def submit_jobs(address: str, jobs: list[Job], timeout: float = 30.0) -> list[Outcome]:
    with Submitter([address], connect_timeout=5.0) as submitter:
        return submitter.submit(
            [Submission(job.fields["filename"], job) for job in jobs], wait=True, timeout=timeout
        )


def summary_of(outcome: Outcome) -> JobSummary:
    assert outcome.ok, outcome.error
    assert outcome.summary is not None
    return outcome.summary


def sqlite_count(database: Path, query: str = "*") -> int:
    reader = open_sink(f"sqlite:{database}")
    try:
        return reader.count(query)
    finally:
        reader.close()


def test_check_config_accepts_the_sample(tmp_path: Path) -> None:
    sample = REPO / "config" / "worker.yaml"
    result = run_worker("--config", str(sample), "--check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{sample}: ok"
    assert list(tmp_path.iterdir()) == []  # checking opened no database


def test_check_config_names_a_wrong_key(tmp_path: Path) -> None:
    config = tmp_path / "worker.yaml"
    config.write_text(yaml.safe_dump({"fetch": {"read_timout": 5}}))
    result = run_worker("--config", str(config), "--check-config", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "fetch.read_timout: unknown key" in lines[0]
    assert str(config) in lines[0]


def test_running_worker_takes_a_job_and_stops_on_sigterm(
    tmp_path: Path, server: LogServer, gearman: gear.Server
) -> None:
    address = f"127.0.0.1:{gearman.port}"
    database = tmp_path / "logs.db"
    config = tmp_path / "worker.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gearman": [address],
                "sink": {"url": f"sqlite:{database}"},
                "fetch": {"connect_timeout": 2.0, "read_timeout": 5.0, "backoff": 0.01},
            }
        )
    )
    raw = (CORPUS / CONSOLE).read_bytes()
    expected_lines = raw.count(b"\n")  # the fixture has no \r and ends with \n
    assert expected_lines == 54 and b"\r" not in raw and raw.endswith(b"\n")

    process = spawn_worker(tmp_path, "--config", str(config), "--allow", server.base_url + "/")
    try:
        job = Job(
            source_url=server.url(CONSOLE),
            fields={"build_uuid": uuid.uuid4().hex, "filename": "job-output.txt"},
            tags=(),
        )
        with Submitter([address], connect_timeout=5.0) as submitter:
            [outcome] = submitter.submit([Submission("job-output.txt", job)], wait=True, timeout=30)
        assert process.poll() is None, process.communicate()[1]
        assert outcome.ok, outcome.error
        assert outcome.summary is not None
        assert outcome.summary.lines == expected_lines
        assert outcome.summary.indexed == outcome.summary.documents > 0
        assert server.hits["/" + CONSOLE] == 1

        reader = open_sink(f"sqlite:{database}")
        try:
            assert reader.count('filename:"job-output.txt"') == outcome.summary.indexed
        finally:
            reader.close()

        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_sigterm_stops_a_worker_whose_gearman_server_is_not_up(tmp_path: Path) -> None:
    config = tmp_path / "worker.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gearman": [f"127.0.0.1:{free_port()}"],  # nothing listens there
                "sink": {"url": f"sqlite:{tmp_path / 'logs.db'}"},
            }
        )
    )
    # Let it get past start-up and into waiting for a server, then ask it to stop.
    returncode, stderr = still_running_then_sigterm(
        spawn_worker(tmp_path, "--config", str(config)), after=1.5
    )
    assert returncode == 0, stderr


def still_running_then_sigterm(process: subprocess.Popen[str], after: float) -> tuple[int, str]:
    """Assert `process` still runs `after` seconds on, then SIGTERM it: its exit status
    and stderr."""
    try:
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=after)
        assert process.poll() is None, process.communicate()[1]
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return process.returncode, stderr


def test_a_pool_child_starts_while_its_engine_is_away_and_a_lone_worker_says_so(
    tmp_path: Path,
) -> None:
    """A chaos run found pool children restarted during an engine outage exiting 2 at
    start-up, so the pool ran short for the supervisor's restart backoff (up to 60 s).
    A child (--parent-pid) relies on the sink its supervisor prepared and starts; a
    worker on its own still refuses at once an engine it cannot reach."""
    config = tmp_path / "worker.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "gearman": [f"127.0.0.1:{free_port()}"],
                "sink": {"url": f"elasticsearch+http://127.0.0.1:{free_port()}"},  # nothing there
            }
        )
    )
    alone = run_worker("--config", str(config), cwd=tmp_path)
    assert alone.returncode == 2
    [line] = alone.stderr.splitlines()
    assert line.startswith("log-worker: error: ") and "connection refused" in line, line
    child = spawn_worker(tmp_path, "--config", str(config), "--parent-pid", str(os.getpid()))
    returncode, stderr = still_running_then_sigterm(child, after=3)
    assert returncode == 0, stderr


# --- --check-config: TLS files and the sink URL -------------------------------------------


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (
            {"gearman_tls": {"key": "k.pem", "cert": "c.pem", "ca": "missing.pem"}},
            "gearman_tls.ca: ",
        ),
        ({"gearman_tls": {"key": "k.pem"}}, "gearman_tls.cert is missing"),
        ({"gearman_tls": {"key": "k.pem", "cert": "c.pem", "ca": "."}}, "gearman_tls.ca: "),
        ({"sink": {"url": "elasticsearch+http://"}}, "no host"),
        ({"sink": {"url": "opensearch+https://search:x"}}, "port 'x' is not a number"),
        ({"sink": {"url": "elasticsearch+http://search"}}, "no port"),
        ({"sink": {"url": "sqlite:"}}, "no path"),
        ({"log_format": "xml"}, "log_format must be one of text, json"),
        ({"metrics_port": 70000}, "metrics_port must be a port number"),
    ],
)
def test_check_config_names_tls_files_and_sink_url_mistakes(
    tmp_path: Path, settings: dict[str, Any], problem: str
) -> None:
    (tmp_path / "k.pem").write_text("key")
    (tmp_path / "c.pem").write_text("cert")
    config = tmp_path / "worker.yaml"
    config.write_text(yaml.safe_dump(settings))
    result = run_worker("--config", str(config), "--check-config", cwd=tmp_path)
    assert result.returncode == 2, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # one line, no traceback
    assert problem in lines[0]


def test_check_config_checks_the_sink_given_on_the_command_line(tmp_path: Path) -> None:
    config = tmp_path / "worker.yaml"
    config.write_text("{}\n")
    result = run_worker(
        "--config", str(config), "--sink", "opensearch+http://:9200", "--check-config", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "no host" in result.stderr
    assert run_worker("--config", str(config), "--check-config", cwd=tmp_path).returncode == 0
    assert list(tmp_path.iterdir()) == [config]  # still no database opened


def test_check_config_accepts_existing_tls_files(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    config = tmp_path / "worker.yaml"
    config.write_text(
        yaml.safe_dump({"gearman_tls": {"key": str(key), "cert": str(cert), "ca": str(cert)}})
    )
    result = run_worker("--config", str(config), "--check-config", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{config}: ok"


# --- several Gearman servers, reconnecting -------------------------------------------------


def test_worker_serves_two_gearmands_and_reconnects_after_a_restart(
    tmp_path: Path, server: LogServer, gearmand: Gearmand
) -> None:
    other = Gearmand(tmp_path / "gearmand-b")
    other.start()
    try:
        config = worker_config(tmp_path, [gearmand.address, other.address])
        with start_worker(
            tmp_path, config, "--processes", "1", "--allow", server.url("")
        ) as worker:
            url = server.url(CONSOLE)
            for address in (gearmand.address, other.address):
                [outcome] = submit_jobs(address, [job_for(url, "job-output.txt")])
                assert summary_of(outcome).lines == CONSOLE_LINES

            gearmand.stop()
            [outcome] = submit_jobs(other.address, [job_for(url, "job-output.txt")])
            assert summary_of(outcome).lines == CONSOLE_LINES, "one server down stopped all"

            gearmand.start()  # same port; gear retries a lost server every 2 s
            [outcome] = submit_jobs(gearmand.address, [job_for(url, "job-output.txt")])
            assert summary_of(outcome).lines == CONSOLE_LINES
            assert worker.process.poll() is None
            assert worker.stop() == 0
    finally:
        other.stop()
    assert "Traceback" not in worker.text()


def test_worker_survives_its_gearmand_going_away_mid_job(
    tmp_path: Path, server: LogServer, gearmand: Gearmand
) -> None:
    slow = "zuul-jobs-fixture/job-output.txt.gz"
    server.behave(slow, delay=1.0)
    config = worker_config(tmp_path, [gearmand.address])
    args = ("--processes", "1", "--log-format", "json", "--allow", server.url(""))
    with start_worker(tmp_path, config, *args) as worker:
        wait_for_workers(gearmand, 1)
        client = connect_client(gearmand.port)
        try:
            submit(client, orjson.loads(job_for(server.url(slow), "slow.txt").to_payload()))
            worker.wait_for(lambda r: r.get("source_url") == server.url(slow))
        finally:
            client.shutdown()
        gearmand.stop()  # the worker still holds the job; its answer has nowhere to go
        worker.wait_for(lambda r: "answer not sent" in r["message"])
        gearmand.start()
        [outcome] = submit_jobs(gearmand.address, [job_for(server.url(CONSOLE), "x.txt")])
        assert summary_of(outcome).lines == CONSOLE_LINES
        assert worker.stop() == 0
    assert "Traceback" not in worker.text()


# --- TLS to Gearman --------------------------------------------------------------------------


@pytest.mark.filterwarnings(r"ignore:ssl\.:DeprecationWarning:gear")
def test_worker_takes_jobs_from_a_tls_gear_server(tmp_path: Path, server: LogServer) -> None:
    # Debian's gearmand has no TLS (tests/test_gearmand.py); gear's own server does, and
    # checks the worker's client certificate against its CA. One self-signed certificate
    # plays the CA, the server and the client.
    cert, key = make_certificate(tmp_path)
    tls = {"ssl_key": str(key), "ssl_cert": str(cert), "ssl_ca": str(cert)}
    gearman = gear.Server(port=0, host="127.0.0.1", **tls)
    client = None
    try:
        config = worker_config(
            tmp_path,
            [f"127.0.0.1:{gearman.port}"],
            gearman_tls={"key": str(key), "cert": str(cert), "ca": str(cert)},
        )
        with start_worker(
            tmp_path, config, "--processes", "1", "--allow", server.url("")
        ) as worker:
            client = connect_client(gearman.port, **tls)
            job = submit(client, orjson.loads(job_for(server.url(CONSOLE), "x.txt").to_payload()))
            wait_complete(job, timeout=WAIT)
            assert not job.failure, b"".join(job.data)
            assert JobSummary.from_json(b"".join(job.data)).lines == CONSOLE_LINES
            assert {c.ssl_subject for c in gearman.active_connections} == {"127.0.0.1"}
            assert worker.stop() == 0
    finally:
        if client is not None:
            client.shutdown()
        gearman.shutdown()


# --- a stalled log server ----------------------------------------------------------------------


def test_sigterm_during_a_dripping_fetch_hands_the_job_back_to_gearmand(
    tmp_path: Path, server: LogServer, gearmand: Gearmand
) -> None:
    # 4 bytes a second after the first 200,000: no read ever times out, and the default
    # deadline is an hour away. SIGTERM must still end the worker within seconds, and the
    # job must not be answered, so that gearmand gives it to the next worker.
    server.behave(f"/{BIG}", drip_after=200_000, drip=4)
    database = tmp_path / "logs.db"
    config = worker_config(tmp_path, [gearmand.address], database)
    args = ("--processes", "1", "--log-format", "json", "--allow", server.url(""))
    client = connect_client(gearmand.port)
    try:
        with start_worker(tmp_path, config, *args) as first:
            wait_for_workers(gearmand, 1)
            job = submit(client, orjson.loads(job_for(server.url(BIG), "big.txt").to_payload()))
            first.wait_for(lambda r: r.get("source_url") == server.url(BIG))
            assert first.stop(timeout=30) == 0  # a bound for the test, not a timing claim
            [handed_back] = [r for r in first.records() if "handed back" in r["message"]]
            assert "the worker is stopping" in handed_back["message"]
        assert not job.complete
        assert queue_status(gearmand.port)[FUNCTION_NAME] == (1, 0, 0)  # queued again

        server.behave(f"/{BIG}")  # the log server recovers
        with start_worker(tmp_path, config, *args) as second:
            wait_complete(job, timeout=60)
            assert second.stop() == 0
        assert not job.failure, job.data
        summary = JobSummary.from_json(job.data[-1])
        expected = (CORPUS / BIG).read_bytes().count(b"\n")
        assert summary.lines == expected
        assert server.hits[f"/{BIG}"] == 2
        # The first worker's documents were replaced, not added to.
        assert sqlite_count(database) == summary.indexed
    finally:
        client.shutdown()
    assert "Traceback" not in first.text() + second.text()


def test_a_dripping_log_server_fails_the_file_naming_the_limit(
    tmp_path: Path, server: LogServer, gearmand: Gearmand
) -> None:
    server.behave(f"/{BIG}", drip_after=200_000, drip=4)
    config = worker_config(
        tmp_path,
        [gearmand.address],
        fetch={"max_seconds": 3.0, "min_bytes_per_second": 0},
    )
    args = ("--processes", "1", "--log-format", "json", "--allow", server.url(""))
    with start_worker(tmp_path, config, *args) as worker:
        wait_for_workers(gearmand, 1)
        [outcome] = submit_jobs(gearmand.address, [job_for(server.url(BIG), "big.txt")])
        assert not outcome.ok
        assert outcome.error is not None
        assert outcome.error.startswith(f"{server.url(BIG)}: the log server did not")
        assert "fetch.max_seconds (3 s)" in outcome.error
        assert worker.stop() == 0
