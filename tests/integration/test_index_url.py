"""`log-shipper index URL`: a build tree served by a real HTTP log server, into each sink."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from log_shipper.cli import main
from tests.httpserver import LogServer, serve_directory
from tests.integration.conftest import SinkUnderTest
from tests.integration.trees import make_tree
from tests.paths import CORPUS, count_lines

BUILD = ["--build-uuid", "0c6d2a3e5b1f4e7d9a8b7c6d5e4f3a2b", "--job-name", "tempest-full"]
BUILD += ["--pipeline", "check", "--build-end-time", "2014-06-10T00:00:00Z"]

TREE = {
    "job-output.txt": "zuul-jobs-fixture/job-output.txt",
    "logs/screen-q-svc.txt.gz": "os-loganalyze/screen-q-svc.txt.gz",
    "logs/devstack@c-vol.service.log.txt": "os-loganalyze/devstack@c-vol.service.log.txt",
}
# Small files only, for the failure case: it runs once per sink.
SMALL_TREE = {
    "job-output.txt": "zuul-jobs-fixture/job-output.txt",
    "logs/devstack@c-api.service.log.txt": "os-loganalyze/devstack@c-api.service.log.txt",
    "logs/devstack@c-vol.service.log.txt": "os-loganalyze/devstack@c-vol.service.log.txt",
}


def text_of(source: str) -> bytes:
    data = (CORPUS / source).read_bytes()
    return gzip.decompress(data) if source.endswith(".gz") else data


def logical(path: str) -> str:
    """The documents' `filename`: the listed path without ".gz"."""
    return path.removesuffix(".gz")


def write_manifest(root: Path, layout: dict[str, str]) -> None:
    """A zuul-manifest.json listing the tree, as Zuul uploads next to a build's logs."""
    tree: list[dict[str, Any]] = []
    for relative in sorted(layout):
        *directories, name = relative.split("/")
        nodes = tree
        for directory in directories:
            node = next((n for n in nodes if n["name"] == directory), None)
            if node is None:
                node = {"name": directory, "mimetype": "application/directory", "children": []}
                nodes.append(node)
            nodes = node["children"]
        size = (root / relative).stat().st_size
        nodes.append({"name": name, "mimetype": "text/plain", "size": size})
    (root / "zuul-manifest.json").write_bytes(orjson.dumps({"tree": tree}))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LogServer, Path]]:
    root = tmp_path / "srv"
    with serve_directory(root) as server:
        yield server, root


def build_tree(root: Path, layout: dict[str, str]) -> str:
    make_tree(root / "build", layout)
    write_manifest(root / "build", layout)
    return "build/"


def count(sink: SinkUnderTest, query: str, capsys: pytest.CaptureFixture[str]) -> int:
    assert main(["search", query, "--config", str(sink.config), "--count"]) == 0
    return int(capsys.readouterr().out.strip())


def report_rows(report: str) -> dict[str, str]:
    """The per-file rows of the report, by the path they start with."""
    rows: dict[str, str] = {}
    for line in report.splitlines():
        first = line.split("  ", 1)[0]
        if first and first != "file":
            rows[first] = line
    return rows


def lines_column(row: str) -> int:
    """file, format, lines, indexed, failed, seconds, status: the third column."""
    return int(row.split()[2])


def test_index_url_indexes_every_listed_file(
    sink: SinkUnderTest,
    served: tuple[LogServer, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, root = served
    url = server.url(build_tree(root, TREE))

    code = main(["index", url, "--config", str(sink.config), *BUILD])
    report = capsys.readouterr().out
    assert code == 0, report
    assert f"{len(TREE)} files submitted, 0 failed" in report

    rows = report_rows(report)
    for path, source in TREE.items():
        row = rows[path]
        assert row.rstrip().endswith("ok"), row
        assert lines_column(row) == count_lines(text_of(source)), row
        assert server.hits[f"/build/{path}"] == 1
        assert count(sink, f'filename:"{logical(path)}"', capsys) > 0, path
    assert count(sink, 'build_queue:"check" AND build_name:"tempest-full"', capsys) == count(
        sink, "*", capsys
    )


def test_index_url_with_a_missing_file_reports_it_and_indexes_the_rest(
    sink: SinkUnderTest,
    served: tuple[LogServer, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, root = served
    url = server.url(build_tree(root, SMALL_TREE))
    gone = "logs/devstack@c-vol.service.log.txt"
    server.behave(f"/build/{gone}", status=404)  # listed in the manifest, then missing

    code = main(["index", url, "--config", str(sink.config), *BUILD])
    report = capsys.readouterr().out
    assert code == 1, report
    assert f"{len(SMALL_TREE)} files submitted, 1 failed" in report

    rows = report_rows(report)
    assert "FAILED" in rows[gone] and "404" in rows[gone], rows[gone]
    assert count(sink, f'filename:"{gone}"', capsys) == 0
    for path in SMALL_TREE.keys() - {gone}:
        assert rows[path].rstrip().endswith("ok"), rows[path]
        assert count(sink, f'filename:"{path}"', capsys) > 0, path


def test_index_of_a_missing_directory_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["index", "/no/such/dir", "--sink", f"sqlite:{tmp_path / 'logs.db'}"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "/no/such/dir" in captured.err and "not a directory" in captured.err
    assert not (tmp_path / "logs.db").exists()


def test_unsupported_search_on_sqlite_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    query = "message:/a&b/"
    code = main(["search", query, "--sink", f"sqlite:{tmp_path / 'logs.db'}"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "regular expression operator intersection" in captured.err and "/a&b/" in captured.err


# --- a log server that drips, or hangs up where nothing tells the body was cut -------------


def index_small_tree(
    tmp_path: Path,
    url: str,
    capsys: pytest.CaptureFixture[str],
    odd: str,
    *more: str,
    ok: bool = False,
) -> dict[str, str]:
    """The report's rows of `index URL` into SQLite, having checked that every file but
    `odd` is ok, and the exit status (0 only if `ok`)."""
    code = main(["index", url, "--sink", f"sqlite:{tmp_path / 'logs.db'}", *more, *BUILD])
    report = capsys.readouterr().out
    assert code == (0 if ok else 1), report
    rows = report_rows(report)
    for path in SMALL_TREE.keys() - {odd}:
        assert rows[path].rstrip().endswith("ok"), rows[path]
    return rows


def test_index_timeout_returns_while_the_log_server_drips(
    tmp_path: Path, served: tuple[LogServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # 4 bytes a second: no read times out and the file's own deadline is an hour away, so
    # only --timeout ends the run, and the in-process workers must let go of the fetch.
    server, root = served
    url = server.url(build_tree(root, SMALL_TREE))
    dripping = "logs/devstack@c-api.service.log.txt"
    server.behave(f"/build/{dripping}", drip_after=1000, drip=4)
    rows = index_small_tree(tmp_path, url, capsys, dripping, "--timeout", "3")
    assert "FAILED" in rows[dripping], rows[dripping]
    # Stopped, not left behind still reading when the command returned.
    workers = [t.name for t in threading.enumerate() if t.name.startswith("local-worker")]
    assert workers == []


def test_index_url_fails_a_body_cut_short_without_content_length(
    tmp_path: Path, served: tuple[LogServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # The server hangs up a third of the way in, sending neither Content-Length nor
    # chunks: the body ends as a whole one would. The manifest's size tells them apart.
    server, root = served
    url = server.url(build_tree(root, SMALL_TREE))
    cut = "logs/devstack@c-api.service.log.txt"
    size = (root / "build" / cut).stat().st_size
    server.behave(f"/build/{cut}", no_length=True, drop_after=size // 3)

    rows = index_small_tree(tmp_path, url, capsys, cut)
    assert "FAILED" in rows[cut], rows[cut]
    assert f"the body ended after {size // 3} bytes received" in rows[cut]
    assert f"the listing gives {size} bytes" in rows[cut]


def test_index_url_marks_a_body_without_length_or_listed_size_unverified(
    tmp_path: Path, served: tuple[LogServer, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    server, root = served
    url = server.url(build_tree(root, SMALL_TREE))
    manifest = orjson.loads((root / "build" / MANIFEST).read_bytes())
    for node in walk(manifest["tree"]):
        node.pop("size", None)  # a manifest of an older Zuul: no sizes
    (root / "build" / MANIFEST).write_bytes(orjson.dumps(manifest))
    unknown = "job-output.txt"
    server.behave(f"/build/{unknown}", no_length=True)

    rows = index_small_tree(tmp_path, url, capsys, unknown, ok=True)
    assert rows[unknown].rstrip().endswith("ok (length unverified)"), rows[unknown]
    assert lines_column(rows[unknown]) == count_lines(text_of(SMALL_TREE[unknown]))


MANIFEST = "zuul-manifest.json"


def walk(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from walk(node.get("children", []))
