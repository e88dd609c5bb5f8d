"""log_shipper/trend.py: the report as a function of builds and matches (no sink here;
tests/integration/test_trend.py runs it on every sink)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from log_shipper.classify import Line
from log_shipper.cli import main
from log_shipper.fingerprints import Fingerprint
from log_shipper.trend import (
    Build,
    Gathered,
    Window,
    as_json,
    build_report,
    parse_window,
    render_text,
)
from worker.errors import ConfigError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WINDOW = Window(datetime(2026, 11, 28, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def build(
    uuid: str, day: int, status: str, job: str = "tempest-full", voting: bool = True
) -> Build:
    return Build(
        uuid, f"2026-11-{day}T10:00:00.000000Z", job, "openstack/nova", status, voting, "gate"
    )


BUILDS = [
    build("a1", 28, "FAILURE"),
    build("a2", 28, "SUCCESS"),
    build("a3", 29, "FAILURE"),
    build("a4", 30, "TIMED_OUT"),
    build("a5", 30, "SUCCESS"),
    build("b1", 29, "FAILURE", job="grenade"),
    build("b2", 30, "SUCCESS", job="grenade"),
    build("n1", 30, "FAILURE", job="experimental", voting=False),
]
QUERIES = [
    Fingerprint("100", Path("100.yaml"), 'message:"mirror"', allow_nonvoting=True),
    Fingerprint("200", Path("200.yaml"), 'message:"timeout"'),
    Fingerprint("300", Path("300.yaml"), 'message:"never"'),
]
MATCHES = {"100": {"a1", "a2", "b1", "n1"}, "200": {"a4", "n1"}, "300": set()}
HIT = {"filename": "job-output.txt", "line_number": 7, "log_url": "https://logs/a3/job-output.txt"}
ERRORS = {"a3": [Line.of({**HIT, "message": "boom\nsecond line"})]}


def test_per_bug_numbers_hand_counted() -> None:
    result = build_report(QUERIES, Gathered(WINDOW, "gate", BUILDS, MATCHES, ERRORS))
    # bug: failures (failed matching builds), builds, jobs, builds of those jobs, race %
    expected = {
        # a1 F, a2 S, b1 F, n1 F (non-voting, allowed): 3 failures of 4; jobs tempest-full
        # (5 builds), grenade (2), experimental (1) = 8 builds
        "100": (3, 4, {"tempest-full": 2, "grenade": 1, "experimental": 1}, 8, 37.5),
        # a4 TIMED_OUT; n1 is non-voting and not allowed: 1 of tempest-full's 5
        "200": (1, 1, {"tempest-full": 1}, 5, 20.0),
    }
    got = {
        bug.bug: (bug.failures, bug.builds, bug.jobs, bug.job_builds, bug.race_percentage)
        for bug in result.bugs
    }
    assert got == expected
    assert [bug.bug for bug in result.bugs] == ["100", "200"]  # most failures first
    first = result.bugs[0]
    assert first.days == {
        "2026-11-28": {"FAILURE": 1, "SUCCESS": 1},
        "2026-11-29": {"FAILURE": 1},
        "2026-11-30": {"FAILURE": 1},
    }
    assert first.first_seen.startswith("2026-11-28") and first.last_seen.startswith("2026-11-30")
    assert result.bugs[1].days["2026-11-28"] == {}  # every day of the window is there


def test_uncategorized_failures_are_failed_voting_builds_no_query_matched() -> None:
    result = build_report(QUERIES, Gathered(WINDOW, "gate", BUILDS, MATCHES, ERRORS))
    # failed voting: a1, a3, a4, b1 (n1 is non-voting); classified a1, b1 (100), a4 (200)
    assert (result.failures, result.classified) == (4, 3)
    assert result.classified_share == 75.0
    assert list(result.uncategorized) == ["tempest-full"]
    [item] = result.uncategorized["tempest-full"]
    assert item.build.uuid == "a3" and item.errors[0].url == "https://logs/a3/job-output.txt#L7"


def test_json_and_table_carry_the_same_numbers() -> None:
    result = build_report(QUERIES, Gathered(WINDOW, "gate", BUILDS, MATCHES, ERRORS))
    data = as_json(result)
    assert [(bug["bug"], bug["failures"], bug["race_percentage"]) for bug in data["bugs"]] == [
        ("100", 3, 37.5),
        ("200", 1, 20.0),
    ]
    assert data["classified_percentage"] == 75.0
    assert data["uncategorized"]["tempest-full"][0]["errors"][0]["message"] == "boom"
    out = io.StringIO()
    render_text(result, out)
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("8 builds, 4 failed (voting), 3 of them classified (75%)")
    assert lines[2].split()[:4] == ["bug", "failures", "builds", "race"]
    assert lines[3].split()[:4] == ["100", "3", "4", "37.5"]
    assert "  100: 11-28 1 FAILURE+1 SUCCESS; 11-29 1 FAILURE; 11-30 1 FAILURE" in lines[7]
    assert "      job-output.txt:7 boom" in lines


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [
        ("10d", None, ("2026-11-21T12:00:00", "2026-12-01T12:00:00")),
        ("12h", "2h", ("2026-12-01T00:00:00", "2026-12-01T10:00:00")),
        ("2026-11-20", "2026-11-22T06:00:00+02:00", ("2026-11-20T00:00:00", "2026-11-22T04:00:00")),
    ],
)
def test_windows_from_durations_and_iso_dates(
    since: str, until: str | None, expected: tuple[str, str]
) -> None:
    window = parse_window(since, until, NOW)
    got = (window.since.astimezone(UTC), window.until.astimezone(UTC))
    assert tuple(moment.strftime("%Y-%m-%dT%H:%M:%S") for moment in got) == expected


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("10x", None, "--since: not a duration (10d, 12h, 30m, 2w) or ISO date: '10x'"),
        ("last week", None, "--since: not an ISO-8601 date or time: 'last week'"),
        ("1d", "2d", "--since (2026-11-30T12:00:00Z) is not before --until (2026-11-29T12:00:00Z)"),
    ],
)
def test_a_bad_window_is_one_line_naming_it(since: str, until: str | None, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_window(since, until, NOW)
    assert str(caught.value) == message


def test_the_window_days_are_every_utc_day_it_touches() -> None:
    days = Window(datetime(2026, 11, 28, 22, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)).days
    assert [day.isoformat() for day in days] == ["2026-11-28", "2026-11-29"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "10x"], "--since: not a duration (10d, 12h, 30m, 2w) or ISO date: '10x'"),
        (["--since", "1d", "--until", "2026-13-01"], "--until: not an ISO-8601 date or time"),
        (["--since", "1d", "--queries", "/nonexistent"], "/nonexistent: not a directory of query"),
        (["--since", "1d", "--html", "/nonexistent/report.html"], "--html /nonexistent/report"),
    ],
)
def test_bad_input_to_the_command_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    queries = tmp_path / "queries"
    queries.mkdir()
    (queries / "100.yaml").write_text('query: message:"mirror"\n')
    sink = ["--sink", f"sqlite:{tmp_path / 'logs.db'}"]
    code = main(["report", "--queries", str(queries), *sink, *args])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    [line] = err.splitlines()
    assert line.startswith(f"log-shipper: error: {message}"), line
