"""The whole deployment on one machine: gearmand, a pool of two `log-worker` processes,
a log server, `log-shipper submit --wait` with Zuul inventory metadata, Elasticsearch.

Includes a worker killed with SIGKILL in the middle of a large file: gearmand hands the
job to the other worker, and deterministic ids leave every line indexed exactly once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.engines import index_prefix
from tests.gearmand import Gearmand
from tests.httpserver import LogServer, serve_directory
from tests.integration.trees import make_tree
from tests.paths import DATA, REPO
from tests.test_worker_cli import WorkerProcess, start_worker
from worker.config import FetchConfig, SinkConfig, WorkerConfig
from worker.job import Job
from worker.pipeline import run_job
from worker.sinks import open_sink
from worker.sinks.base import Sink

INVENTORY = DATA / "zuul" / "inventory.yaml"
TREE = {
    "job-output.txt": "zuul-jobs-fixture/job-output.txt",
    "logs/screen-q-svc.txt.gz": "os-loganalyze/screen-q-svc.txt.gz",
    "logs/devstack@c-vol.service.log.txt": "os-loganalyze/devstack@c-vol.service.log.txt",
    "logs/nova-api.log.gz": "os-log-merger/nova-api.log-20151113.gz",
}
LARGE = "logs/nova-api.log"


@pytest.fixture
def setup(
    tmp_path: Path, gearmand: Gearmand, elasticsearch_url: str
) -> Iterator[tuple[Path, LogServer, dict[str, Any], Sink]]:
    root = make_tree(tmp_path / "build", TREE)
    prefix = index_prefix("e2e")
    sink_config: dict[str, Any] = {
        "url": f"elasticsearch+{elasticsearch_url}",
        "index_prefix": prefix,
        "build_index": f"builds-{prefix.rstrip('-')}",
    }
    with serve_directory(root) as server:
        config = {
            "gearman": [gearmand.address],
            "sink": sink_config,
            "fetch": {"allow": [server.base_url]},
            "log_format": "json",
        }
        sink = open_sink(sink_config["url"], SinkConfig(**sink_config))
        try:
            yield root, server, config, sink
        finally:
            sink.close()


def submit(config_file: Path, server: LogServer, root: Path, *extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "log_shipper.cli", "submit", "--log-url", server.base_url]
    command += ["--log-dir", str(root), "--zuul-inventory", str(INVENTORY)]
    command += ["--config", str(config_file), "--wait", "--strict", *extra]
    return subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str], timeout: float = 240) -> str:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, f"submit exited {process.returncode}:\n{out}\n{err}"
    return out


def reference_count(root: Path, filename: str) -> int:
    """Documents of one file from a clean, uninterrupted in-process run into SQLite."""
    database = root.parent / f"reference-{uuid.uuid4().hex[:6]}.db"
    config = WorkerConfig(
        fetch=FetchConfig(allow=(str(root),), allow_local=True),
        sink=SinkConfig(url=f"sqlite:{database}"),
    )
    sink = open_sink(config.sink.url, config.sink)
    try:
        job = Job(
            str(root / f"{filename}.gz"),
            {"build_uuid": "reference", "filename": filename},
            ("oslofmt",),
        )
        run_job(job, config, sink)
        return sink.count("*")
    finally:
        sink.close()


def inventory_fields() -> dict[str, Any]:
    zuul = yaml.safe_load(INVENTORY.read_text())["all"]["vars"]["zuul"]
    return {
        "build_uuid": zuul["build"],
        "build_name": zuul["job"],
        "build_queue": zuul["pipeline"],
        "project": zuul["project"]["name"],
        "build_change": str(zuul["change"]),
    }


def kill_the_worker_of(worker: WorkerProcess, source_url: str) -> int:
    """SIGKILL the pool child that started `source_url`'s job; its pid."""
    record = worker.wait_for(
        lambda r: r.get("source_url") == source_url and "started" in r["message"], timeout=120
    )
    pid = int(record["pid"])
    os.kill(pid, signal.SIGKILL)
    return pid


def test_submit_to_a_pool_with_a_worker_killed_mid_file(
    tmp_path: Path, setup: tuple[Path, LogServer, dict[str, Any], Sink]
) -> None:
    root, server, config, sink = setup
    expected = inventory_fields()
    # The large file pauses a third of the way in, so the kill lands mid-file, after
    # the first documents are already in the index.
    server.behave(f"{LARGE}.gz", stall_after=1_000_000, stall=4.0)
    with contextlib.ExitStack() as stack:
        worker = stack.enter_context(start_worker(tmp_path, config, "--processes", "2"))
        config_file = tmp_path / "worker-0.yaml"
        process = submit(config_file, server, root)
        killed = kill_the_worker_of(worker, server.url(f"{LARGE}.gz"))
        report = finish(process)
        assert f"{len(TREE)} files submitted, 0 failed" in report
        # The supervisor replaced the killed child.
        worker.wait_for(
            lambda r: r.get("child_pid", killed) != killed and "started" in r["message"]
        )

        sink.refresh()
        large = f'filename:"{LARGE}" AND build_uuid:"{expected["build_uuid"]}"'
        assert sink.count(large) == reference_count(root, LARGE)
        for path in TREE:
            hits = sink.search(f'filename:"{path.removesuffix(".gz")}"', size=1).hits
            assert hits, path
            for field, value in expected.items():
                assert hits[0][field] == value, (path, field)

        summary = sink.get_build(expected["build_uuid"])
        assert summary is not None and summary["type"] == "build"
        assert summary["file_count"] == len(TREE) and summary["files_failed"] == 0
        assert summary["build_name"] == expected["build_name"]

        # Submitting the same build again changes no count.
        server.behave(f"{LARGE}.gz")  # no stall this time
        total = sink.count("*")
        first_run = summary["run_id"]
        finish(submit(config_file, server, root))
        sink.refresh()
        assert sink.count("*") == total
        again = sink.get_build(expected["build_uuid"])
        assert again is not None and again["run_id"] != first_run
        assert worker.stop() == 0
