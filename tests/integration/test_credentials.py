"""Credentials in sink URLs and log URLs, against the real services: Elasticsearch (its
test engine has security off, so it accepts any credentials), the HTTP log server of
tests/httpserver.py, gearmand and `log-worker`. Each password must be found nowhere
afterwards: not in a document, a build record, a log line or a printed message."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import urllib3

from tests.engines import build_index_for, index_prefix
from tests.gearmand import Gearmand
from tests.httpserver import LogServer, free_port, serve_directory
from tests.integration.trees import make_tree
from tests.test_submit_cli import run_cli
from tests.test_worker_cli import run_worker, start_worker, wait_for_workers

SINK_PASSWORD = "Sink-Pa55word"
LOG_PASSWORD = "Log-Pa55word"
TREE = {
    "job-output.txt": "zuul-jobs-fixture/job-output.txt",
    "logs/devstack@c-api.service.log.txt": "os-loganalyze/devstack@c-api.service.log.txt",
    "logs/devstack@c-vol.service.log.txt": "os-loganalyze/devstack@c-vol.service.log.txt",
}
GONE = "logs/devstack@c-vol.service.log.txt"  # listed on the executor, 404 on the server


def with_userinfo(url: str, user: str, password: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{user}:{password}@{rest}"


def masked(url: str) -> str:
    """`url` (given without credentials) as it must appear: userinfo shown as ***."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest}"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LogServer, Path]]:
    root = tmp_path / "srv"
    make_tree(root / "build", TREE)
    with serve_directory(root) as server:
        server.behave(f"/build/{GONE}", status=404)
        yield server, root / "build"


def test_the_test_engine_accepts_any_credentials(elasticsearch_url: str) -> None:
    # What the tests below rely on: with security off, any basic auth is let through.
    token = base64.b64encode(f"nobody:{SINK_PASSWORD}".encode()).decode()
    answer = urllib3.request(
        "GET", f"{elasticsearch_url}/_cluster/health", headers={"Authorization": f"Basic {token}"}
    )
    assert answer.status == 200, answer.data


def engine_documents(elasticsearch_url: str, index: str) -> list[dict[str, Any]]:
    """Every document of `index` (a pattern), read straight from the engine's REST API."""
    options = "ignore_unavailable=true&allow_no_indices=true"
    refreshed = urllib3.request("POST", f"{elasticsearch_url}/{index}/_refresh?{options}")
    assert refreshed.status == 200, refreshed.data
    answer = urllib3.request(
        "POST",
        f"{elasticsearch_url}/{index}/_search?{options}",
        body=orjson.dumps({"query": {"match_all": {}}, "size": 10000}),
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 200, answer.data
    return [hit["_source"] for hit in orjson.loads(answer.data)["hits"]["hits"]]


def test_no_password_of_a_sink_or_log_url_is_stored_logged_or_printed(
    gearmand: Gearmand, elasticsearch_url: str, served: tuple[LogServer, Path], tmp_path: Path
) -> None:
    server, root = served
    prefix = index_prefix()
    build_index = build_index_for(prefix)
    sink_url = f"elasticsearch+{with_userinfo(elasticsearch_url, 'indexer', SINK_PASSWORD)}"
    log_url = with_userinfo(server.url("build/"), "reader", LOG_PASSWORD)
    build_uuid = uuid.uuid4().hex
    config = {
        "gearman": [gearmand.address],
        "sink": {"url": sink_url, "index_prefix": prefix, "build_index": build_index},
        "fetch": {"allow": [server.base_url + "/"], "retries": 0, "connect_timeout": 2.0},
    }
    with start_worker(tmp_path, config, "--processes", "1", "--log-format", "json") as worker:
        wait_for_workers(gearmand, 1)
        result = run_cli(
            *("submit", "--log-url", log_url, "--log-dir", str(root)),
            *("--gearman", gearmand.address, "--wait", "--timeout", "60"),
            *("--build-uuid", build_uuid, "--job-name", "credentials"),
        )
        # Every answer came after its file's record; the last file's after the summary.
        assert worker.stop() == 0
    log = worker.text()

    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed
    assert "1 failed" in printed, printed
    # The URLs were logged, and masked: the check below is not passed by silence.
    assert masked(f"{server.base_url}/build/{GONE}") in log, log
    for password in (SINK_PASSWORD, LOG_PASSWORD):
        assert password not in printed, printed
        assert password not in log, log

    documents = engine_documents(elasticsearch_url, f"{prefix}*")
    ok = {path: source for path, source in TREE.items() if path != GONE}
    assert {document["filename"] for document in documents} == set(ok)
    assert {document["log_url"] for document in documents} == {
        masked(f"{server.base_url}/build/{path}") for path in ok
    }
    records = engine_documents(elasticsearch_url, build_index)
    [summary] = [record for record in records if record["type"] == "build"]
    assert summary["build_uuid"] == build_uuid and summary["files_failed"] == 1
    [error] = summary["errors"]
    assert error.startswith(f"{GONE}: ") and "404" in error, error
    assert masked(f"{server.base_url}/build/{GONE}") in error, error
    outcomes = [record for record in records if record["type"] == "file"]
    assert {outcome["log_url"] for outcome in outcomes} == {
        masked(f"{server.base_url}/build/{path}") for path in TREE
    }
    stored = orjson.dumps([documents, records]).decode()
    for password in (SINK_PASSWORD, LOG_PASSWORD):
        assert password not in stored


def test_index_prints_the_sink_url_masked(
    elasticsearch_url: str, tmp_path: Path, served: tuple[LogServer, Path]
) -> None:
    _, root = served
    prefix = index_prefix()
    config = tmp_path / "worker.yaml"
    config.write_text(orjson.dumps({"sink": {"index_prefix": prefix}}).decode())
    sink_url = f"elasticsearch+{with_userinfo(elasticsearch_url, 'indexer', SINK_PASSWORD)}"
    result = run_cli(
        "index", str(root), "--sink", sink_url, "--config", str(config), "--job-name", "j"
    )
    assert result.returncode == 0, result.stderr
    assert f"sink: {masked('elasticsearch+' + elasticsearch_url)}  build_uuid: " in result.stdout
    assert SINK_PASSWORD not in result.stdout + result.stderr
    # The credentials were used, not dropped: the documents of every indexed file are there.
    documents = engine_documents(elasticsearch_url, f"{prefix}*")
    assert {document["filename"] for document in documents} == set(TREE)


@pytest.mark.parametrize("kind", ["elasticsearch", "opensearch"])
def test_an_unreachable_sink_is_named_without_its_password(
    tmp_path: Path, served: tuple[LogServer, Path], kind: str
) -> None:
    _, root = served
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    sink_url = f"{kind}+http://indexer:{SINK_PASSWORD}@{address}"
    config = tmp_path / "worker.yaml"
    config.write_text(orjson.dumps({"sink": {"url": sink_url}}).decode())
    runs = {
        "index": run_cli("index", str(root), "--sink", sink_url, "--job-name", "j"),
        "search": run_cli("search", "*", "--sink", sink_url),
        "search --config": run_cli("search", "*", "--config", str(config)),
        "log-worker": run_worker("--config", str(config), "--processes", "1", cwd=tmp_path),
    }
    for name, result in runs.items():
        lines = result.stderr.splitlines()
        assert result.returncode == 2, (name, result.stderr)
        assert len(lines) == 1, (name, result.stderr)
        assert f"at http://{address} unreachable" in lines[0], (name, lines)
        assert SINK_PASSWORD not in result.stdout + result.stderr, (name, result.stderr)
