"""Query files of failure fingerprints (log_shipper/fingerprints.py) and
`log-shipper classify --check DIR`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from log_shipper.cli import main
from log_shipper.fingerprints import (
    Fingerprint,
    build_query,
    load_fingerprints,
    quoted,
    restricted_query,
    sqlite_problems,
)
from tests.engines import index_prefix
from tests.integration.conftest import SINK_KINDS, sink_url
from tests.paths import REPO
from worker.config import SinkConfig
from worker.documents import Document
from worker.errors import ConfigError
from worker.sinks import open_sink

SHARED = REPO.parent / "shared" / "er-queries"


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def test_the_shared_query_files_load_typed() -> None:
    loaded = load_fingerprints(SHARED)
    assert loaded.problems == []
    assert loaded.files == 6
    by_bug = {f.bug: f for f in loaded.fingerprints}
    assert sorted(by_bug) == ["1410969", "1635643", "1686542", "1708704", "1775947", "1798475"]
    placeholder = by_bug["1410969"]
    assert (placeholder.suppress_graph, placeholder.suppress_notification) == (True, True)
    assert placeholder.query == (
        'message:"Requirement" AND message:"does not match openstack/requirements value"'
        ' AND tags:"console" AND build_queue:"gate"'
    )
    assert by_bug["1708704"].allow_nonvoting is True
    assert by_bug["1635643"].allow_nonvoting is False
    assert by_bug["1775947"].test_ids == (
        "tempest.api.compute.servers.test_device_tagging.TaggedAttachmentsTest"
        ".test_tagged_attachment",
    )
    assert sqlite_problems(loaded.fingerprints) == []


BAD = {
    "1.yaml": "query: message:ok\n",
    "2.yaml": "query: [unclosed\n",
    "3.yaml": "query: message:x\nsuppress-graph: yes please\ncolour: red\n",
    "4.yaml": "allow-nonvoting: true\n",
    "5.yaml": "query: message:x\ntest_ids: one.test\n",
    "6.yaml": "- query: message:x\n",
    "7.yaml": "",
    "8.yaml": "query: 12\n",
    "9.yaml": 'query: message:"unclosed\n',
    "10.yaml": "query: message:/fail<1-5>/\n",
    "notes.txt": "not a query file",
}


def test_each_problem_is_one_line_naming_the_file(tmp_path: Path) -> None:
    directory = write(tmp_path / "q", BAD)
    loaded = load_fingerprints(directory)
    assert loaded.files == 10
    known = "known: query, suppress-graph, suppress-notification, allow-nonvoting, test_ids"
    assert loaded.problems == [
        f"{directory}/2.yaml: not valid YAML: expected ',' or ']', but got '<stream end>'"
        " at line 2, column 1",
        f"{directory}/3.yaml: unknown key 'colour' ({known})",
        f"{directory}/3.yaml: suppress-graph must be true or false, not str 'yes please'",
        f"{directory}/4.yaml: no query",
        f"{directory}/5.yaml: test_ids must be a list of strings, not str 'one.test'",
        f"{directory}/6.yaml: expected a mapping with a query key, found a list",
        f"{directory}/7.yaml: expected a mapping with a query key, found an empty file",
        f"{directory}/8.yaml: query must be a non-empty string, not int 12",
    ]
    # Files in name order: 1, 10, 9 have no problem of their own.
    assert [f.bug for f in loaded.fingerprints] == ["1", "10", "9"]
    problems = sqlite_problems(loaded.fingerprints)
    assert len(problems) == 2
    assert problems[0].startswith(
        f"{directory}/10.yaml: unsupported on SQLite: regular expression operator numeric range"
    )
    assert problems[1].startswith(f"{directory}/9.yaml: query syntax error")


def test_no_directory_or_no_query_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory of query files"):
        load_fingerprints(tmp_path / "missing")
    with pytest.raises(ConfigError, match=r"no \*\.yaml query files"):
        load_fingerprints(write(tmp_path / "empty", {"notes.txt": "x"}))


def test_restriction_to_one_build_and_to_voting_builds() -> None:
    assert quoted('a"b\\c') == '"a\\"b\\\\c"'
    assert build_query("message:x OR message:y", "abc", voting_only=False) == (
        '(message:x OR message:y) AND build_uuid:"abc"'
    )
    voting = Fingerprint("1", Path("1.yaml"), "message:x")
    nonvoting = Fingerprint("2", Path("2.yaml"), "message:x", allow_nonvoting=True)
    assert restricted_query(voting, "abc") == '(message:x) AND build_uuid:"abc" AND voting:1'
    assert restricted_query(nonvoting, "abc") == '(message:x) AND build_uuid:"abc"'


def test_check_passes_the_shared_queries(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", "--check", str(SHARED)]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"{SHARED}: 6 query files ok (parsed and translated for SQLite; the engines take "
        "full query_string syntax)\n"
    )


def test_check_lists_every_problem_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = write(tmp_path / "q", BAD)
    assert main(["classify", "--check", str(directory)]) == 1
    lines = capsys.readouterr().out.splitlines()
    # Eight problems of seven files, two queries SQLite cannot run, then the summary.
    assert len(lines) == 11
    assert lines[-1].startswith(f"{directory}: 9 of 10 query files with problems")


def test_check_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", "--check", str(tmp_path / "missing")]) == 2
    assert "not a directory of query files" in capsys.readouterr().err
    assert main(["classify", "--check", str(SHARED), "--build-uuid", "x"]) == 2
    assert main(["classify", "--queries", str(SHARED)]) == 2
    err = capsys.readouterr().err
    assert "classify --check DIR takes no --queries or --build-uuid" in err
    assert "classify needs --queries DIR and --build-uuid UUID" in err


@pytest.fixture(params=SINK_KINDS)
def sink_under_test(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """--sink and --config of a sink holding one document: an engine parses a query
    only on the indices it searches."""
    url = sink_url(request, tmp_path)
    config = SinkConfig(url=url, index_prefix=index_prefix())
    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump({"sink": {"url": url, "index_prefix": config.index_prefix}}))
    sink = open_sink(url, config)
    try:
        sink.prepare()
        line = {"@timestamp": "2026-11-20T10:00:00Z", "message": "timeout", "line_number": 1}
        sink.write([Document(f"{config.index_prefix}2026.11.20", "one", line)])
        sink.refresh()
    finally:
        sink.close()
    return ["--sink", url, "--config", str(path)]


def test_every_shared_query_runs_on_each_sink(
    sink_under_test: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["classify", "--check", str(SHARED), *sink_under_test]) == 0
    assert "6 query files ok (run on " in capsys.readouterr().out


def test_what_a_sink_cannot_run_is_decided_by_that_sink(
    sink_under_test: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A numeric range in a regular expression: the engines run it, SQLite refuses it.
    A number field given a word: every sink refuses it."""
    directory = write(
        tmp_path / "q",
        {"1.yaml": "query: message:/fail<1-5>/\n", "2.yaml": "query: line_number:ten\n"},
    )
    code = main(["classify", "--check", str(directory), *sink_under_test])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    if sink_under_test[1].startswith("sqlite:"):
        assert len(lines) == 3
        assert lines[0].startswith(
            f"{directory}/1.yaml: unsupported on SQLite: regular expression operator"
        )
        assert lines[1] == f"{directory}/2.yaml: line_number: 'ten' is not a number"
        assert lines[2].startswith(f"{directory}: 2 of 2 query files with problems (run on ")
    else:
        assert len(lines) == 2
        assert lines[0].startswith(f"{directory}/2.yaml: query refused: ")
        assert lines[1].startswith(f"{directory}: 1 of 2 query files with problems (run on ")
