"""The build-summary document `log-shipper submit --sink` leaves in each sink: SQLite,
Elasticsearch and OpenSearch, all real."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from log_shipper.cli import main
from tests.httpserver import LogServer, serve_directory
from tests.integration.conftest import SinkUnderTest
from tests.integration.trees import make_tree
from tests.paths import corpus_lines
from worker.config import load_config
from worker.sinks import open_sink

TREE = {
    "job-output.txt": "zuul-jobs-fixture/job-output.txt",
    "logs/devstack@c-api.service.log.txt": "os-loganalyze/devstack@c-api.service.log.txt",
    "logs/devstack@c-vol.service.log.txt": "os-loganalyze/devstack@c-vol.service.log.txt",
    "logs/testrepository.subunit": "ci-log-processing/testrepository.subunit",  # skipped
}
SELECTED = {path: source for path, source in TREE.items() if not path.endswith(".subunit")}


def build_args(sink: SinkUnderTest) -> tuple[str, list[str]]:
    """A fresh build uuid: the engines' build index is shared by every test."""
    build_uuid = uuid.uuid4().hex
    args = ["--sink", sink.url, "--config", str(sink.config), "--build-uuid", build_uuid]
    return build_uuid, [*args, "--job-name", "tempest-full", "--pipeline", "check"]


def get_build(sink: SinkUnderTest, build_uuid: str) -> dict[str, Any]:
    store = open_sink(sink.url, load_config(sink.config).sink)
    try:
        build = store.get_build(build_uuid)
    finally:
        store.close()
    assert build is not None, f"no build summary for {build_uuid}"
    return build


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LogServer, Path]]:
    root = tmp_path / "srv"
    make_tree(root / "build", TREE)
    with serve_directory(root) as server:
        yield server, root / "build"


def test_submit_writes_the_build_summary(
    sink: SinkUnderTest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_tree(tmp_path / "logs", TREE)
    build_uuid, args = build_args(sink)

    code = main(["submit", "--log-dir", str(root), *args])
    out, err = capsys.readouterr()

    assert code == 0, err
    assert f"{len(SELECTED)} files submitted, 0 failed, 1 skipped" in out, out
    build = get_build(sink, build_uuid)
    assert build["type"] == "build"
    assert build["build_uuid"] == build_uuid
    assert build["build_name"] == "tempest-full" and build["build_queue"] == "check"
    assert build["file_count"] == len(SELECTED)
    assert build["files_failed"] == 0 and build["errors"] == []
    assert build["lines"] == sum(corpus_lines(source) for source in SELECTED.values())
    assert sorted(f["filename"] for f in build["files"]) == sorted(SELECTED)
    assert all(f["status"] == "ok" for f in build["files"])


def test_a_failed_file_is_counted_in_the_build_summary(
    sink: SinkUnderTest, served: tuple[LogServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server, root = served
    gone = "logs/devstack@c-vol.service.log.txt"
    server.behave(f"/build/{gone}", status=404)  # listed on the executor, not on the server
    build_uuid, args = build_args(sink)

    code = main(["submit", "--log-url", server.url("build/"), "--log-dir", str(root), *args])
    out, err = capsys.readouterr()

    assert code == 0, err  # without --strict a failed file does not fail the build
    assert f"{len(SELECTED)} files submitted, 1 failed" in out, out
    build = get_build(sink, build_uuid)
    assert build["type"] == "build"
    assert build["file_count"] == len(SELECTED)
    assert build["files_failed"] == 1
    ok = {path: source for path, source in SELECTED.items() if path != gone}
    assert build["lines"] == sum(corpus_lines(source) for source in ok.values())
    [error] = build["errors"]
    assert error.startswith(f"{gone}: ") and "404" in error, error
    status = {f["filename"]: f["status"] for f in build["files"]}
    assert status == {**dict.fromkeys(ok, "ok"), gone: "failed"}
