"""`log-shipper report --html`: the report as one self-contained page.

Nothing is fetched when the page is opened (no script, font or stylesheet from
elsewhere): the charts are inline SVG drawn here, one per bug, a bar per day stacked
by build status. Every piece of text comes from logs, queries or build metadata, so
all of it is escaped, and only http(s) log URLs become links.
"""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

from log_shipper.trend import BugTrend, Report, Uncategorized, minute

BAR = 34  # px per day
LEFT = 24  # px left of the bars, for the scale
CHART_HEIGHT = 120
AXIS = 18  # px under the bars for the day labels
# Build statuses in stacking order (bottom first), with their colours; others are grey.
STATUS_COLOURS = {
    "FAILURE": "#d62728",
    "TIMED_OUT": "#ff7f0e",
    "POST_FAILURE": "#9467bd",
    "NODE_FAILURE": "#8c564b",
    "SUCCESS": "#2ca02c",
}
OTHER_COLOUR = "#7f7f7f"
STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; background: #fff; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-bottom: .2em; }
section.bug { border-top: 1px solid #ccc; padding: .5em 0 1em; }
pre { background: #f4f4f4; padding: .4em; white-space: pre-wrap; word-break: break-all; }
.meta { color: #555; font-size: .9em; }
.legend span { display: inline-block; margin-right: 1em; }
.legend i { display: inline-block; width: .8em; height: .8em; margin-right: .3em; }
li.build { margin: .3em 0; } li.line { font-family: monospace; font-size: .85em; }
"""


def render_page(report: Report) -> str:
    where = f", pipeline {report.pipeline}" if report.pipeline else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Which races hurt most: {_text(report.since)} .. {_text(report.until)}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Which races hurt most</h1>",
        f'<p class="summary">{_text(report.since)} .. {_text(report.until)}{_text(where)}: '
        f"{report.builds} builds, {report.failures} failed voting builds, "
        f"{report.classified} classified ({report.classified_share:.0f}%)</p>",
        _legend(),
    ]
    parts.extend(_bug(bug) for bug in report.bugs)
    left = report.failures - report.classified
    parts.append(
        f'<section id="uncategorized"><h2>Uncategorized failures: {left} of {report.failures}</h2>'
    )
    for job, items in report.uncategorized.items():
        parts.append(f'<h3 class="job">{_text(job)} ({len(items)})</h3><ul>')
        parts.extend(_uncategorized(item) for item in items)
        parts.append("</ul>")
    parts.append("</section></body></html>")
    return "\n".join(parts) + "\n"


def _bug(bug: BugTrend) -> str:
    jobs = ", ".join(f"{job} ({n})" for job, n in bug.jobs.items())
    projects = ", ".join(bug.projects) or "-"
    chart = (
        '<p class="meta">chart suppressed (suppress-graph)</p>'
        if bug.suppress_graph
        else _chart(bug)
    )
    return (
        f'<section class="bug" id="bug-{_text(bug.bug)}" data-bug="{_text(bug.bug)}">'
        f"<h2>{_text(bug.bug)}: {bug.failures} failures in {bug.builds} matching builds, "
        f"race {bug.race_percentage:.1f}% of {bug.job_builds} builds of its jobs</h2>"
        f'<p class="meta">first seen {_text(minute(bug.first_seen))}, last seen '
        f"{_text(minute(bug.last_seen))}; jobs: {_text(jobs)}; projects: {_text(projects)}</p>"
        f"<pre>{_text(bug.query)}</pre>{chart}</section>"
    )


def _chart(bug: BugTrend) -> str:
    days = list(bug.days)
    tallest = max((sum(statuses.values()) for statuses in bug.days.values()), default=0)
    scale = (CHART_HEIGHT - 4) / max(tallest, 1)
    width = max(LEFT + BAR * len(days), 200)
    shapes = [
        f'<line x1="{LEFT}" y1="{CHART_HEIGHT}" x2="{width}" y2="{CHART_HEIGHT}" stroke="#999"/>',
        f'<text x="2" y="10" font-size="10" fill="#555">{tallest}</text>',
    ]
    label_every = max(1, len(days) // 10)
    for n, day in enumerate(days):
        x = LEFT + n * BAR + 2
        top = float(CHART_HEIGHT)
        for status in _stacking(bug.days[day]):
            count = bug.days[day][status]
            height = count * scale
            top -= height
            shapes.append(
                f'<rect class="point" data-day="{day}" data-status="{_text(status)}" '
                f'data-count="{count}" x="{x}" y="{top:.1f}" width="{BAR - 4}" '
                f'height="{height:.1f}" fill="{STATUS_COLOURS.get(status, OTHER_COLOUR)}">'
                f"<title>{day}: {count} {_text(status)}</title></rect>"
            )
        if n % label_every == 0:
            shapes.append(
                f'<text x="{x}" y="{CHART_HEIGHT + 13}" font-size="9" fill="#555">{day[5:]}</text>'
            )
    return (
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{CHART_HEIGHT + AXIS}" role="img" aria-label="daily matching builds of '
        f'{_text(bug.bug)}">' + "".join(shapes) + "</svg>"
    )


def _stacking(statuses: dict[str, int]) -> list[str]:
    order = list(STATUS_COLOURS)
    return sorted(
        (status for status, count in statuses.items() if count),
        key=lambda status: (order.index(status) if status in order else len(order), status),
    )


def _legend() -> str:
    keys = [*STATUS_COLOURS.items(), ("other", OTHER_COLOUR)]
    spans = "".join(
        f'<span><i style="background:{colour}"></i>{name}</span>' for name, colour in keys
    )
    return f'<p class="legend">{spans}</p>'


def _uncategorized(item: Uncategorized) -> str:
    build = item.build
    lines = "".join(
        f'<li class="line">{_link(line.url or "", line.place())} {_text(line.message)}</li>'
        for line in item.errors
    )
    return (
        f'<li class="build" data-build="{_text(build.uuid)}">{_text(minute(build.time))} '
        f"{_text(build.uuid)} {_text(build.status)} {_text(build.project)}"
        f"<ul>{lines or '<li>no ERROR lines indexed</li>'}</ul></li>"
    )


def _link(url: str, label: str) -> str:
    # A log URL is text from the submitter: only a web or file address becomes a link (never
    # javascript: or data:).
    if urlsplit(url).scheme in ("http", "https", "file"):
        return f'<a href="{_text(url)}">{_text(label)}</a>'
    return _text(label)


def _text(value: str) -> str:
    return escape(value, quote=True)
