"""The `log-worker` command as a real subprocess: config checks, one job, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import gear
import pytest
import yaml

from log_shipper.submit import Submission, Submitter
from tests.httpserver import LogServer, free_port, serve_directory
from tests.paths import CORPUS, REPO
from worker.job import Job
from worker.sinks import open_sink

CONSOLE = "zuul-jobs-fixture/job-output.txt"


def worker_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "worker.cli", *args]


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def run_worker(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        worker_command(*args),
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )


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


@pytest.fixture
def server() -> Iterator[LogServer]:
    with serve_directory(CORPUS) as running:
        yield running


@pytest.fixture
def gearman() -> Iterator[gear.Server]:
    running = gear.Server(port=0, host="127.0.0.1")
    try:
        yield running
    finally:
        running.shutdown()


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

    process = subprocess.Popen(
        worker_command("--config", str(config), "--allow", server.base_url + "/"),
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
    process = subprocess.Popen(
        worker_command("--config", str(config)),
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Let it get past start-up and into waiting for a server, then ask it to stop.
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1.5)
        assert process.poll() is None, process.communicate()[1]
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
