"""`log-shipper index` of a build tree made from the real corpus, into each sink."""

from __future__ import annotations

import gzip
import re
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from dateutil.parser import isoparse

from log_shipper.cli import main
from tests.integration.conftest import SinkUnderTest
from tests.integration.trees import CORPUS_TREE, make_tree
from tests.paths import CORPUS

OSLO_ERROR = re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+) (\d+) ERROR (\S+) ")
BUILD = ["--build-uuid", "4f440b7e8c4b493c81ddf709d8a54076", "--job-name", "tempest-full"]
BUILD += ["--pipeline", "gate", "--project", "openstack/nova", "--branch", "master"]
BUILD += ["--voting", "1", "--build-end-time", "2014-06-10T00:00:00Z"]

TREE = {
    "job-output.txt": "zuul-jobs-fixture/job-output.txt",
    "logs/screen-q-svc.txt.gz": "os-loganalyze/screen-q-svc.txt.gz",
    "logs/syslog.txt": "os-loganalyze/syslog.txt",
    "logs/devstack@c-vol.service.log.txt": "os-loganalyze/devstack@c-vol.service.log.txt",
    "logs/testrepository.subunit": "ci-log-processing/testrepository.subunit",
}


def search(sink: SinkUnderTest, query: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert main(["search", query, "--config", str(sink.config), "--json", "--size", "500"]) == 0
    return [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]


def count(sink: SinkUnderTest, query: str, capsys: pytest.CaptureFixture[str]) -> int:
    assert main(["search", query, "--config", str(sink.config), "--count"]) == 0
    return int(capsys.readouterr().out.strip())


def index(sink: SinkUnderTest, root: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["index", str(root), "--config", str(sink.config), *BUILD])
    out = capsys.readouterr().out
    assert code == 0, out
    return out


def same_instant(a: str, b: str) -> bool:
    return isoparse(a) == isoparse(b)


def test_index_corpus_tree(
    sink: SinkUnderTest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_tree(tmp_path / "build", CORPUS_TREE)
    report = index(sink, root, capsys)
    assert "logs/testrepository.subunit" in report and "skipped" in report

    # Every file of the corpus but the binary subunit stream is there, with the
    # build's fields and the file's tags.
    indexed = [path.removesuffix(".gz") for path in CORPUS_TREE if not path.endswith(".subunit")]
    for path in indexed:
        hits = search(sink, f'filename:"{path}"', capsys)
        assert hits, path
        hit = hits[0]
        assert hit["build_short_uuid"] == "4f440b7"
        assert hit["build_queue"] == "gate" and hit["build_name"] == "tempest-full"
        assert hit["project"] == "openstack/nova" and hit["voting"] == "1"
        assert path.rsplit("/", 1)[-1] in hit["tags"]

    # The oslo ERROR lines of screen-q-svc, with their own time, level and module.
    with gzip.open(CORPUS / "os-loganalyze/screen-q-svc.txt.gz", "rt", errors="replace") as f:
        errors = [m.groups() for m in map(OSLO_ERROR.match, f) if m]
    assert len(errors) == 72  # as SOURCES.txt counts them
    query = 'loglevel:ERROR AND filename:"logs/screen-q-svc.txt"'
    assert count(sink, query, capsys) == len(errors)
    hits = search(sink, query, capsys)
    found = sorted((isoparse(h["@timestamp"]), h["module"], str(h["pid"])) for h in hits)
    expected = sorted((isoparse(f"{d}T{t}Z"), module, pid) for d, t, pid, module in errors)
    assert found == expected
    assert all(h["_index"].endswith("2013.09.27") for h in hits)

    # A phrase query on the console log finds exactly the lines that contain it.
    console_lines = (CORPUS / "zuul-jobs-fixture/job-output.txt").read_text().splitlines()
    phrase = "Job console starting"
    expected_lines = [i + 1 for i, line in enumerate(console_lines) if phrase in line]
    hits = search(sink, f'message:"{phrase}" AND tags:"console" AND build_queue:"gate"', capsys)
    assert sorted(h["line_number"] for h in hits) == expected_lines

    # syslog has no year: it comes from the build's time, not from today.
    first = (CORPUS / "os-loganalyze/syslog.txt").read_text(errors="replace").split("\n", 1)[0]
    hits = search(sink, 'filename:"logs/syslog.txt" AND line_number:1', capsys)
    assert len(hits) == 1
    stamp = datetime.strptime(f"2014 {first[:15]}", "%Y %b %d %H:%M:%S")
    assert isoparse(hits[0]["@timestamp"]).replace(tzinfo=None) == stamp


def test_index_twice_changes_no_count(
    sink: SinkUnderTest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_tree(tmp_path / "build", TREE)
    index(sink, root, capsys)
    before = {
        p: count(sink, f'filename:"{p}"', capsys)
        for p in ("job-output.txt", "logs/screen-q-svc.txt")
    }
    total = count(sink, "*", capsys)
    assert total > 0
    index(sink, root, capsys)
    assert count(sink, "*", capsys) == total
    after = {p: count(sink, f'filename:"{p}"', capsys) for p in before}
    assert after == before
