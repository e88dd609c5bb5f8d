"""`log-shipper report`: which known bugs (fingerprint queries) cost the most failed
builds over a window of time, and which failures no query explains.

The report is a pure function (`build_report`) of what is fetched at the edge
(`gather`): the build summaries of the window, the window's builds each query matches,
and the first ERROR lines of the failed builds nothing matched. `render_text` and
`as_json` show it; log_shipper.trend_page draws it as a page.

A build belongs to the window by its summary's @timestamp (the build's end, see
worker.builds), and to a day by that time's UTC date. A query counts only builds of
the window: it is run restricted to the window's build uuids rather than to the
documents' own times, since a build's lines carry the log's dates (an old log indexed
today, a line written before midnight of a build that ended after it).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TextIO

from log_shipper.build_sources import parse_time
from log_shipper.classify import ERROR_LINES, Line
from log_shipper.fingerprints import Fingerprint, build_query, quoted
from worker.errors import ConfigError
from worker.sinks.base import Searcher

# Statuses of builds that did not fail: the rest (FAILURE, TIMED_OUT, POST_FAILURE,
# NODE_FAILURE, ...) count as failures. A build that never ran to an end (skipped,
# aborted, cancelled) failed nothing.
NOT_FAILED = frozenset({"SUCCESS", "SKIPPED", "ABORTED", "CANCELED"})
# Uuids per query: a query restricted to this many builds stays well inside the
# engines' clause limits and SQLite's expression depth (1,000; an OR chain is as deep
# as it is long).
UUIDS_PER_QUERY = 250
ERRORS_SHOWN = 3  # first error lines shown per uncategorised build
_DURATION = re.compile(r"(\d+)([wdhm])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}


@dataclass(frozen=True, slots=True)
class Window:
    since: datetime
    until: datetime

    @property
    def days(self) -> list[date]:
        """Every UTC day the window touches, oldest first."""
        first = self.since.astimezone(UTC).date()
        last = (self.until.astimezone(UTC) - timedelta(microseconds=1)).date()
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def parse_moment(value: str, option: str, now: datetime) -> datetime:
    """`10d`, `12h`, `30m`, `2w` before `now`, or an ISO-8601 date or time (UTC
    unless it says otherwise)."""
    duration = _DURATION.fullmatch(value.strip())
    if duration:
        amount, unit = duration.groups()
        return now - timedelta(**{_UNITS[unit]: int(amount)})
    if value.strip()[:1].isdigit() and "-" not in value:
        raise ConfigError(f"{option}: not a duration (10d, 12h, 30m, 2w) or ISO date: {value!r}")
    return parse_time(value, option)


def parse_window(since: str, until: str | None, now: datetime) -> Window:
    start = parse_moment(since, "--since", now)
    end = parse_moment(until, "--until", now) if until else now
    if start >= end:
        raise ConfigError(f"--since ({iso(start)}) is not before --until ({iso(end)})")
    return Window(start, end)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def minute(time: str) -> str:
    """An ISO time as shown to people: `2026-11-20 10:00`."""
    return time[:16].replace("T", " ")


@dataclass(frozen=True, slots=True)
class Build:
    """The parts of a build summary the report uses."""

    uuid: str
    time: str  # the summary's @timestamp, ISO 8601 UTC
    job: str
    project: str
    status: str
    voting: bool
    pipeline: str

    @property
    def failed(self) -> bool:
        return bool(self.status) and self.status not in NOT_FAILED

    @property
    def day(self) -> str:
        return self.time[:10]

    @classmethod
    def of(cls, summary: Mapping[str, Any]) -> Build:
        return cls(
            uuid=str(summary.get("build_uuid", "")),
            time=str(summary.get("@timestamp", "")),
            job=str(summary.get("build_name") or "(no job name)"),
            project=str(summary.get("project") or ""),
            status=str(summary.get("build_status") or "").upper(),
            voting=str(summary.get("voting", "1")) != "0",
            pipeline=str(summary.get("build_queue") or ""),
        )


@dataclass(frozen=True, slots=True)
class BugTrend:
    bug: str
    query: str
    suppress_graph: bool
    # day (YYYY-MM-DD, every day of the window) -> build status -> matching builds
    days: dict[str, dict[str, int]]
    failures: int  # matching failed builds
    builds: int  # matching builds, whatever their status
    jobs: dict[str, int]  # job -> matching builds, most first
    projects: dict[str, int]
    first_seen: str
    last_seen: str
    job_builds: int  # every build of the affected jobs in the window
    race_percentage: float  # failures / job_builds * 100


@dataclass(frozen=True, slots=True)
class Uncategorized:
    build: Build
    errors: list[Line]


@dataclass(frozen=True, slots=True)
class Report:
    since: str
    until: str
    pipeline: str | None
    builds: int
    failures: int  # failed voting builds
    classified: int  # of those, matched by at least one query
    bugs: list[BugTrend]
    uncategorized: dict[str, list[Uncategorized]]  # job -> its failed builds nothing matched

    @property
    def classified_share(self) -> float:
        return 100.0 * self.classified / self.failures if self.failures else 0.0


@dataclass(slots=True)
class Gathered:
    """What `gather` fetched: the input of `build_report`."""

    window: Window
    pipeline: str | None
    builds: list[Build]
    matches: dict[str, set[str]]  # bug -> uuids of the window's builds its query matches
    errors: dict[str, list[Line]] = field(default_factory=dict)  # uuid -> first ERRORs


def eligible(fingerprint: Fingerprint, build: Build) -> bool:
    """Non-voting builds count only for queries that allow them (elastic-recheck's rule)."""
    return build.voting or fingerprint.allow_nonvoting


def build_report(fingerprints: Sequence[Fingerprint], data: Gathered) -> Report:
    days = [day.isoformat() for day in data.window.days]
    by_uuid = {build.uuid: build for build in data.builds}
    bugs = []
    classified: set[str] = set()
    for fingerprint in fingerprints:
        hit = sorted(
            (
                by_uuid[uuid]
                for uuid in data.matches.get(fingerprint.bug, ())
                if uuid in by_uuid and eligible(fingerprint, by_uuid[uuid])
            ),
            key=lambda build: (build.time, build.uuid),
        )
        classified.update(build.uuid for build in hit if build.failed and build.voting)
        if hit:
            bugs.append(_trend(fingerprint, hit, data.builds, days))
    bugs.sort(key=lambda trend: (-trend.failures, -trend.builds, trend.bug))
    failed = [build for build in data.builds if build.failed and build.voting]
    uncategorized: dict[str, list[Uncategorized]] = defaultdict(list)
    for build in sorted(failed, key=lambda build: (build.job, build.time, build.uuid)):
        if build.uuid not in classified:
            uncategorized[build.job].append(Uncategorized(build, data.errors.get(build.uuid, [])))
    return Report(
        since=iso(data.window.since),
        until=iso(data.window.until),
        pipeline=data.pipeline,
        builds=len(data.builds),
        failures=len(failed),
        classified=len(classified),
        bugs=bugs,
        uncategorized=dict(uncategorized),
    )


def _trend(
    fingerprint: Fingerprint, hit: list[Build], window: Sequence[Build], days: Sequence[str]
) -> BugTrend:
    per_day: dict[str, dict[str, int]] = {day: {} for day in days}
    for build in hit:
        statuses = per_day.setdefault(build.day, {})
        statuses[build.status] = statuses.get(build.status, 0) + 1
    jobs = Counter(build.job for build in hit)
    failures = sum(1 for build in hit if build.failed)
    job_builds = sum(1 for build in window if build.job in jobs and eligible(fingerprint, build))
    return BugTrend(
        bug=fingerprint.bug,
        query=fingerprint.query,
        suppress_graph=fingerprint.suppress_graph,
        days=per_day,
        failures=failures,
        builds=len(hit),
        jobs=_most_first(jobs),
        projects=_most_first(Counter(build.project for build in hit if build.project)),
        first_seen=hit[0].time,
        last_seen=hit[-1].time,
        job_builds=job_builds,
        race_percentage=100.0 * failures / job_builds if job_builds else 0.0,
    )


def _most_first(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def as_json(report: Report) -> dict[str, Any]:
    return {
        "since": report.since,
        "until": report.until,
        "pipeline": report.pipeline,
        "builds": report.builds,
        "failures": report.failures,
        "classified": report.classified,
        "classified_percentage": round(report.classified_share, 1),
        "bugs": [
            {
                "bug": bug.bug,
                "query": bug.query,
                "failures": bug.failures,
                "builds": bug.builds,
                "race_percentage": round(bug.race_percentage, 2),
                "job_builds": bug.job_builds,
                "jobs": bug.jobs,
                "projects": bug.projects,
                "first_seen": bug.first_seen,
                "last_seen": bug.last_seen,
                "days": bug.days,
            }
            for bug in report.bugs
        ],
        "uncategorized": {
            job: [
                {
                    "build_uuid": item.build.uuid,
                    "time": item.build.time,
                    "status": item.build.status,
                    "project": item.build.project,
                    "errors": [line.as_json() for line in item.errors],
                }
                for item in items
            ]
            for job, items in report.uncategorized.items()
        },
    }


def render_text(report: Report, out: TextIO, width: int = 200) -> None:
    where = f", pipeline {report.pipeline}" if report.pipeline else ""
    print(
        f"{report.since} .. {report.until}{where}: {report.builds} builds, "
        f"{report.failures} failed (voting), {report.classified} of them classified "
        f"({report.classified_share:.0f}%)",
        file=out,
    )
    rows = [("bug", "failures", "builds", "race %", "first seen", "last seen", "jobs")]
    for bug in report.bugs:
        rows.append(
            (
                bug.bug,
                str(bug.failures),
                str(bug.builds),
                f"{bug.race_percentage:.1f}",
                minute(bug.first_seen),
                minute(bug.last_seen),
                ", ".join(f"{job} ({n})" for job, n in bug.jobs.items()),
            )
        )
    print(file=out)
    _table(rows, out, width)
    print("\nmatching builds per day (UTC), by build status:", file=out)
    for bug in report.bugs:
        hits = [
            f"{day[5:]} " + "+".join(f"{n} {status}" for status, n in sorted(statuses.items()))
            for day, statuses in bug.days.items()
            if statuses
        ]
        projects = ", ".join(bug.projects) or "-"
        print(f"  {bug.bug}: {'; '.join(hits)}  [projects: {projects}]"[:width], file=out)
    left = report.failures - report.classified
    print(f"\nuncategorized failures: {left} of {report.failures}", file=out)
    for job, items in report.uncategorized.items():
        print(f"  {job}: {len(items)}", file=out)
        for item in items:
            print(f"    {minute(item.build.time)} {item.build.uuid}", file=out)
            for line in item.errors:
                print(f"      {line.place()} {line.message}"[:width], file=out)


def _table(rows: Sequence[Sequence[str]], out: TextIO, width: int) -> None:
    widths = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(size) for cell, size in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip()[:width], file=out)


def gather(
    searcher: Searcher, fingerprints: Sequence[Fingerprint], window: Window, pipeline: str | None
) -> Gathered:
    """Everything `build_report` needs, read from a sink: one read of the window's
    summaries, one grouped count per query and per UUIDS_PER_QUERY builds, one search
    per failed voting build that no query matched."""
    builds = [
        Build.of(summary)
        for summary in searcher.builds(iso(window.since), iso(window.until))
        if pipeline is None or summary.get("build_queue") == pipeline
    ]
    uuids = [build.uuid for build in builds if build.uuid]
    matches: dict[str, set[str]] = {}
    for fingerprint in fingerprints:
        found: set[str] = set()
        for start in range(0, len(uuids), UUIDS_PER_QUERY):
            chunk = uuids[start : start + UUIDS_PER_QUERY]
            query = f"({fingerprint.query}) AND {uuid_clause(chunk)}"
            found.update(searcher.counts(query, "build_uuid", size=len(chunk)))
        matches[fingerprint.bug] = found
    # Voting builds count for every query, so a failed voting build is uncategorised
    # exactly when no query matched it.
    matched = set().union(*matches.values())
    errors = {
        build.uuid: first_errors(searcher, build.uuid)
        for build in builds
        if build.failed and build.voting and build.uuid not in matched
    }
    return Gathered(window, pipeline, builds, matches, errors)


def first_errors(searcher: Searcher, build_uuid: str) -> list[Line]:
    """The build's first error lines, as `log-shipper classify` finds them."""
    query = build_query(ERROR_LINES, build_uuid, voting_only=False)
    hits = searcher.search(query, size=ERRORS_SHOWN, oldest_first=True).hits
    return [Line.of(hit) for hit in hits]


def uuid_clause(uuids: Iterable[str]) -> str:
    return "build_uuid:(" + " OR ".join(quoted(uuid) for uuid in uuids) + ")"
