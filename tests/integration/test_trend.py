"""`log-shipper report` over real corpus logs indexed as several builds on several days,
with FAILURE and SUCCESS builds, on SQLite, Elasticsearch and OpenSearch; the page it
writes opened in a real headless Chromium (on SQLite: the page does not depend on the
sink, the numbers are checked on every sink).

Every expected number below is counted by hand from the BUILDS table and the files'
lines (named next to QUERIES), not computed by the code under test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from log_shipper.cli import main
from tests.chromium import Dom, dump_dom
from tests.engines import build_index_for, index_prefix
from tests.integration.conftest import SINK_KINDS, sink_url
from tests.integration.trees import make_tree

FILES = {
    "job-output": ("job-output.txt", "zuul-jobs-fixture/job-output.txt"),
    "c-vol": (
        "logs/devstack@c-vol.service.log.txt",
        "os-loganalyze/devstack@c-vol.service.log.txt",
    ),
    "c-api": (
        "logs/devstack@c-api.service.log.txt",
        "os-loganalyze/devstack@c-api.service.log.txt",
    ),
}
# An oslo.log ERROR line carrying markup, added to b6: a log line is hostile text.
HOSTILE = '<script>document.title="pwned"</script> could not attach volume'
HOSTILE_LINE = f"2026-11-23 09:00:00.000 4242 ERROR nova.compute.manager [-] {HOSTILE}\n"
BUILDS = """
uuid job          status    voting pipeline build_end_time       project           files
b1   tempest-full FAILURE   1      gate     2026-11-20T10:00:00Z openstack/nova    job-output,c-vol
b2   tempest-full SUCCESS   1      gate     2026-11-20T14:00:00Z openstack/nova    job-output,c-vol
b3   tempest-full TIMED_OUT 1      gate     2026-11-21T10:00:00Z openstack/nova    c-vol
b4   grenade      FAILURE   1      gate     2026-11-22T10:00:00Z openstack/neutron job-output
b5   grenade      SUCCESS   1      check    2026-11-22T11:00:00Z openstack/neutron c-api
b6   tempest-slow FAILURE   1      gate     2026-11-23T10:00:00Z openstack/nova    c-api
b7   experimental FAILURE   0      gate     2026-11-23T12:00:00Z openstack/nova    job-output,c-vol
b8   tempest-full FAILURE   1      gate     2026-11-24T00:00:00Z openstack/nova    job-output,c-vol
"""
METADATA = {
    "build-uuid": "uuid",
    "job-name": "job",
    "status": "status",
    "voting": "voting",
    "pipeline": "pipeline",
    "build-end-time": "build_end_time",
    "project": "project",
}
WINDOW = ["--since", "2026-11-20", "--until", "2026-11-24", "--pipeline", "gate"]
QUERIES = {
    # job-output.txt line 41: "Generating public/private rsa key pair."
    "1001": {
        "query": 'message:"Generating public/private rsa key pair" AND tags:"console"',
        "allow-nonvoting": True,
    },
    # devstack@c-vol line 9 (in the traceback event from line 2): a journald line
    "1002": {"query": 'message:"cannot switch to a different thread"'},
    "1003": {"query": 'message:"no corpus file has this line"'},
}
# In the window (gate, [11-20, 11-24)): b1 b2 b3 b4 b6 b7 (b5 is check, b8 ends at until).
# 1001: b1 F, b2 S, b4 F, b7 F (non-voting, allowed); jobs' builds tempest-full b1 b2 b3,
#       grenade b4, experimental b7 = 5; 3 failures / 5 = 60 %
# 1002: b1 F, b2 S, b3 TIMED_OUT (b7 non-voting, not allowed); tempest-full's 3; 2 / 3
EXPECTED_BUGS = [
    {
        "bug": "1001",
        "failures": 3,
        "builds": 4,
        "job_builds": 5,
        "race_percentage": 60.0,
        "jobs": {"tempest-full": 2, "experimental": 1, "grenade": 1},
        "projects": {"openstack/nova": 3, "openstack/neutron": 1},
        "first_seen": "2026-11-20T10:00:00.000000Z",
        "last_seen": "2026-11-23T12:00:00.000000Z",
        "days": {
            "2026-11-20": {"FAILURE": 1, "SUCCESS": 1},
            "2026-11-21": {},
            "2026-11-22": {"FAILURE": 1},
            "2026-11-23": {"FAILURE": 1},
        },
    },
    {
        "bug": "1002",
        "failures": 2,
        "builds": 3,
        "job_builds": 3,
        "race_percentage": 66.67,
        "jobs": {"tempest-full": 3},
        "projects": {"openstack/nova": 3},
        "first_seen": "2026-11-20T10:00:00.000000Z",
        "last_seen": "2026-11-21T10:00:00.000000Z",
        "days": {
            "2026-11-20": {"FAILURE": 1, "SUCCESS": 1},
            "2026-11-21": {"TIMED_OUT": 1},
            "2026-11-22": {},
            "2026-11-23": {},
        },
    },
]
CHART_POINTS = {"1001": 4, "1002": 3}  # day-and-status segments of EXPECTED_BUGS


@pytest.fixture(scope="module", params=SINK_KINDS)
def indexed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, Path]]:
    """(kind, worker.yaml, queries directory) once the builds are indexed."""
    root = tmp_path_factory.mktemp(f"trend-{request.param}")
    prefix = index_prefix()
    config = root / "worker.yaml"
    url = sink_url(request, root)
    sink = {"url": url, "index_prefix": prefix, "build_index": build_index_for(prefix)}
    config.write_text(yaml.safe_dump({"sink": sink}))
    header, *rows = (line.split() for line in BUILDS.strip().splitlines())
    for row in rows:
        build = dict(zip(header, row, strict=True))
        tree = make_tree(
            root / build["uuid"], dict(FILES[key] for key in build["files"].split(","))
        )
        if build["uuid"] == "b6":
            (tree / "logs" / "screen-n-cpu.txt").write_text(HOSTILE_LINE)
        metadata = [f"--{flag}={build[key]}" for flag, key in METADATA.items()]
        code = main(["index", str(tree), "--sink", url, "--config", str(config), *metadata])
        assert code == 0, build
    queries = root / "queries"
    queries.mkdir()
    for bug, content in QUERIES.items():
        (queries / f"{bug}.yaml").write_text(yaml.safe_dump(content))
    yield request.param, config, queries


def report(
    indexed: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str], *more: str
) -> tuple[int, str]:
    _, config, queries = indexed
    code = main(["report", "--queries", str(queries), "--config", str(config), *WINDOW, *more])
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def test_the_reports_numbers_are_the_hand_counted_ones(
    indexed: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = report(indexed, capsys, "--json")
    assert code == 0
    data: dict[str, Any] = orjson.loads(out)
    for bug in data["bugs"]:
        del bug["query"]
    assert data["bugs"] == EXPECTED_BUGS
    # failed voting builds in the window: b1 b3 b4 b6; no query matched b6
    assert (data["builds"], data["failures"], data["classified"]) == (6, 4, 3)
    assert data["classified_percentage"] == 75.0
    [uncategorized] = data["uncategorized"]["tempest-slow"]
    assert uncategorized["build_uuid"] == "b6"
    [error] = uncategorized["errors"]
    assert (error["filename"], error["line_number"], error["message"]) == (
        "logs/screen-n-cpu.txt",
        1,
        HOSTILE,
    )
    assert error["url"].endswith("screen-n-cpu.txt#L1")
    assert list(data["uncategorized"]) == ["tempest-slow"]


def test_the_terminal_table_and_the_page(
    indexed: tuple[str, Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    kind = indexed[0]
    page = tmp_path / "report.html"
    code, out = report(indexed, capsys, "--html", str(page))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].endswith("gate: 6 builds, 4 failed (voting), 3 of them classified (75%)")
    assert [line.split()[:4] for line in lines[3:5]] == [
        ["1001", "3", "4", "60.0"],
        ["1002", "2", "3", "66.7"],
    ]
    assert "    2026-11-23 10:00 b6" in lines
    if kind != "sqlite":
        return  # the page is drawn from the report, whatever the sink
    dom = Dom()
    dom.feed(dump_dom(page, tmp_path / "profile"))
    assert dict(dom.points) == CHART_POINTS
    assert dom.elements["script"] == 0 and "pwned" not in dom.title
