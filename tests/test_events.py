"""group_events on real logs; expectations are read from the text with str.split here."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tests.paths import CORPUS, read_lines
from worker.events import Event, EventStats, group_events
from worker.formats import console, oslo, plain, syslog
from worker.formats.base import Line, ParseContext

SCREEN_Q_SVC = CORPUS / "os-loganalyze" / "screen-q-svc.txt.gz"
SCREEN_N_API = CORPUS / "os-loganalyze" / "screen-n-api.txt.gz"
C_VOL = CORPUS / "os-loganalyze" / "devstack@c-vol.service.log.txt"
FALLBACK = "2013-09-28T00:00:00.000000Z"
STAMP = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+) ")


def events_of(
    lines: list[str],
    fmt=oslo,
    *,
    max_event_lines: int = 500,
    lookahead_lines: int = 2000,
    stats: EventStats | None = None,
    reference: datetime = datetime(2013, 9, 27, tzinfo=UTC),
    **options: bool,
) -> list[Event]:
    context = ParseContext(reference_time=reference)
    records = (fmt.parse_line(Line(n, text), context) for n, text in enumerate(lines, 1))
    return list(
        group_events(
            records,
            max_event_lines=max_event_lines,
            lookahead_lines=lookahead_lines,
            fallback_timestamp=FALLBACK,
            stats=stats,
            **options,
        )
    )


def words(text: str) -> list[str]:
    return text.split(" ", 5)


def is_trace(text: str) -> bool:
    parts = words(text)
    return len(parts) > 4 and parts[3] == "TRACE"


def trace_message(text: str) -> str:
    parts = words(text)
    return parts[5] if len(parts) > 5 else ""


def test_trace_lines_join_the_error_before_them() -> None:
    lines = read_lines(SCREEN_Q_SVC)
    stats = EventStats()
    events = events_of(lines, stats=stats)
    by_line = {event.line_number: event for event in events}

    delete_failed = by_line[1855]
    assert lines[1854].endswith("ERROR neutron.api.v2.resource [-] delete failed")
    traces = 0
    while is_trace(lines[1855 + traces]):
        traces += 1
    assert traces == 13
    assert delete_failed.line_count == 1 + traces
    assert "Traceback (most recent call last):" in delete_failed.message
    expected = ["delete failed"] + [trace_message(t) for t in lines[1855 : 1855 + traces]]
    # The last TRACE line is the bare prefix: counted, but the message does not end in "\n".
    assert expected[-1] == ""
    assert delete_failed.message == "\n".join(expected[:-1])
    assert delete_failed.fields["loglevel"] == "ERROR"
    assert delete_failed.timestamp == "2013-09-27T18:23:42.923Z"

    # Every TRACE line sits in the event of the line before it; no TRACE event of its own.
    grouped = 0
    for number, text in enumerate(lines, 1):
        parts = words(text)
        if len(parts) > 4 and parts[3] != "TRACE" and number < len(lines):
            following = 0
            while number + following < len(lines) and is_trace(lines[number + following]):
                following += 1
            if following:
                grouped += following
                assert by_line[number].line_count == 1 + following
    assert grouped == 589  # all TRACE lines (SOURCES.txt)
    assert not any(e.fields.get("loglevel") == "TRACE" for e in events)
    assert stats.records == len(lines) == sum(e.line_count for e in events) + stats.blank
    assert stats.events == len(events) == len(lines) - 589


def test_lines_before_the_first_timestamp_take_it() -> None:
    lines = read_lines(SCREEN_Q_SVC)
    first = next(n for n, text in enumerate(lines) if STAMP.match(text))
    assert first == 4 and all(text.startswith("+ ") for text in lines[:first])
    events = events_of(lines)
    assert [e.timestamp for e in events[:5]] == ["2013-09-27T18:22:11.248Z"] * 5
    assert [e.message for e in events[:4]] == lines[:4]


def test_lookahead_is_limited() -> None:
    lines = read_lines(SCREEN_Q_SVC)
    # The first timestamp is on line 5: four records of look-ahead do not reach it.
    events = events_of(lines[:20], lookahead_lines=4)
    assert [e.timestamp for e in events[:4]] == [FALLBACK] * 4
    assert events[4].timestamp == "2013-09-27T18:22:11.248Z"
    events = events_of(lines[:20], lookahead_lines=5)
    assert [e.timestamp for e in events[:5]] == ["2013-09-27T18:22:11.248Z"] * 5
    events = events_of(lines[:20], lookahead_lines=0)
    assert [e.timestamp for e in events[:4]] == [FALLBACK] * 4


def test_untimestamped_lines_are_own_events_with_the_previous_timestamp() -> None:
    lines = read_lines(SCREEN_N_API)
    stats = EventStats()
    by_line = {e.line_number: e for e in events_of(lines, stats=stats)}
    last = None
    bodies = 0
    for number, text in enumerate(lines, 1):
        stamp = STAMP.match(text)
        if stamp:
            last = f"{stamp.group(1)}T{stamp.group(2)}Z"
        elif text.strip() and last is not None:
            bodies += 1
            event = by_line[number]
            assert event.timestamp == last
            assert event.message == text
            assert event.line_count == 1 and event.fields == {}
    assert bodies > 30000
    # Blank lines are skipped and counted, not dropped.
    assert stats.blank == sum(1 for text in lines if not text.strip()) == 1702
    assert stats.dropped == 0


def test_journald_traceback_is_one_event() -> None:
    lines = read_lines(C_VOL)
    start = next(
        n for n, text in enumerate(lines) if text.endswith("]: Traceback (most recent call last):")
    )
    end = next(
        n
        for n, text in enumerate(lines)
        if text.endswith("]: error: cannot switch to a different thread")
    )
    events = events_of(lines, syslog, reference=datetime(2017, 5, 27, tzinfo=UTC))
    traceback = next(e for e in events if e.line_number == start + 1)
    assert traceback.line_count == end - start + 1 == 8
    assert traceback.message.split("\n") == [
        text.split("]: ", 1)[1] for text in lines[start : end + 1]
    ]
    assert traceback.message.endswith("\nerror: cannot switch to a different thread")
    assert traceback.timestamp == "2017-05-26T20:44:32.283596Z"
    assert traceback.fields["pid"] == "27348"
    # The INFO line before and after stay separate events.
    assert [e.line_count for e in events] == [1, 8, 1, 1, 1, 1, 1]
    assert events[2].fields["loglevel"] == "INFO"


def test_console_traceback_is_grouped() -> None:
    lines = read_lines(CORPUS / "os-loganalyze" / "console.html.gz")
    start = next(
        n for n, t in enumerate(lines) if t.endswith(" | Traceback (most recent call last):")
    )
    count = 1
    while lines[start + count].split(" | ", 1)[1].startswith(" "):
        count += 1
    count += 1  # the exception line
    context = ParseContext(reference_time=datetime(2013, 9, 27, tzinfo=UTC), html=True)
    records = (console.parse_line(Line(n, t), context) for n, t in enumerate(lines, 1))
    events = list(
        group_events(records, max_event_lines=500, lookahead_lines=10, fallback_timestamp=FALLBACK)
    )
    event = next(e for e in events if e.line_number == start + 1)
    assert event.line_count == count
    assert event.message.startswith("Traceback (most recent call last):\n  File ")


def test_event_cap_continues_in_a_new_event() -> None:
    lines = read_lines(SCREEN_Q_SVC)
    stats = EventStats()
    events = events_of(lines, max_event_lines=5, stats=stats)
    assert max(e.line_count for e in events) == 5
    assert sum(e.line_count for e in events) == len(lines)
    by_line = {e.line_number: e for e in events}
    # "delete failed" and its 13 TRACE lines: 5 + 5 + 4 lines.
    parts = [by_line[1855], by_line[1860], by_line[1865]]
    assert [p.line_count for p in parts] == [5, 5, 4]
    assert [p.truncated for p in parts] == [True, True, False]
    assert all(p.fields["loglevel"] == "ERROR" for p in parts)
    assert all(p.timestamp == "2013-09-27T18:23:42.923Z" for p in parts)
    uncapped = {e.line_number: e for e in events_of(lines)}[1855]
    assert "\n".join(p.message for p in parts) == uncapped.message
    groups = [e.line_count for e in events_of(lines) if e.line_count > 1]
    assert stats.split == sum((count - 1) // 5 for count in groups)


def test_drop_debug() -> None:
    lines = read_lines(SCREEN_Q_SVC)
    debug = sum(1 for text in lines if len(words(text)) > 4 and words(text)[3] == "DEBUG")
    assert debug == 43583
    stats = EventStats()
    events = events_of(lines, drop_debug=True, stats=stats)
    assert not any(e.fields.get("loglevel") == "DEBUG" for e in events)
    assert stats.dropped == debug
    assert len(events) == len(events_of(lines)) - debug
    assert any(e.line_number == 1855 and e.line_count == 14 for e in events)


def test_drop_xtrace() -> None:
    lines = read_lines(SCREEN_Q_SVC)
    xtrace = sum(1 for text in lines if text.startswith("+ ") and not STAMP.match(text))
    assert xtrace >= 4
    stats = EventStats()
    events = events_of(lines, drop_xtrace=True, stats=stats)
    assert stats.dropped == xtrace
    assert events[0].line_number == 5
    assert not any(
        e.message.startswith("+ ") and e.line_count == 1 and not e.fields for e in events
    )


def test_console_lines_with_nothing_after_the_timestamp_are_skipped() -> None:
    lines = read_lines(CORPUS / "zuul-jobs-fixture" / "job-output.txt")
    empty = [n for n, text in enumerate(lines, 1) if re.fullmatch(r"\S+ \S+ \| ", text)]
    assert len(empty) == 10
    stats = EventStats()
    events = events_of(lines, console, stats=stats)
    assert stats.blank == len(empty)
    assert len(events) == len(lines) - len(empty)
    assert not set(empty) & {e.line_number for e in events}


def test_no_timestamp_anywhere_uses_the_fallback() -> None:
    lines = read_lines(CORPUS / "zuul-jobs-fixture" / "job-output.txt")
    # As plain text, nothing has a timestamp.
    events = events_of(lines, plain)
    assert {e.timestamp for e in events} == {FALLBACK}
    assert [e.message for e in events] == [t for t in lines if t.strip()]


def test_interleaved_processes_never_share_an_event() -> None:
    # nova-api.log: several worker processes write tracebacks at the same moment.
    lines = read_lines(CORPUS / "os-log-merger" / "nova-api.log-20151113.gz")[90000:100000]
    events = events_of(lines)
    for event in events:
        start = event.line_number - 1
        covered = lines[start : start + event.line_count]
        pids = {m.group(1) for t in covered if (m := re.match(r"\S+ \S+ (\d+) [A-Z]+ ", t))}
        assert len(pids) <= 1, event
    assert max(e.line_count for e in events) > 20


def test_truncated_line_marks_its_event() -> None:
    lines = read_lines(SCREEN_Q_SVC)[1850:1870]
    context = ParseContext(reference_time=datetime(2013, 9, 27, tzinfo=UTC))
    records = []
    for number, text in enumerate(lines, 1851):
        line = Line(number, text[:120], truncated=len(text) > 120)
        records.append(oslo.parse_line(line, context))
    events = list(
        group_events(records, max_event_lines=500, lookahead_lines=10, fallback_timestamp=FALLBACK)
    )
    for event in events:
        covered = lines[event.line_number - 1851 : event.line_number - 1851 + event.line_count]
        assert event.truncated == any(len(text) > 120 for text in covered)


# oslo.log since 1.2, written from its defaults (the corpus has only TRACE tracebacks):
# every traceback line repeats "<ts> <pid> ERROR <module> <instance>".
UUID = "3f2a6b1c-9d8e-4f7a-b6c5-d4e3f2a1b0c9"
ERROR = f"2024-05-02 10:01:02.345 812 ERROR nova.compute.manager [instance: {UUID}] "
FRAMES = [
    "Traceback (most recent call last):",
    '  File "/opt/stack/nova/nova/compute/manager.py", line 2743, in _build_resources',
    "    yield resources",
    '  File "/opt/stack/nova/nova/virt/libvirt/driver.py", line 4411, in spawn',
    '    raise ValueError("boom")',
    "ValueError: boom",
]
MODERN = [
    "2024-05-02 10:01:02.311 812 INFO nova.compute.claims [None req-a8d1 admin admin - - -] "
    f"[instance: {UUID}] Claim successful on node devstack",
    "2024-05-02 10:01:02.345 812 ERROR nova.compute.manager [None req-a8d1 admin admin - - -] "
    f"[instance: {UUID}] Instance failed to spawn: ValueError: boom",
    *(ERROR + frame for frame in FRAMES),
    ERROR,
    "2024-05-02 10:01:02.345 812 ERROR nova.compute.manager [-] Giving up",
]


def test_a_traceback_with_repeated_error_prefixes_is_one_event_with_its_context() -> None:
    stats = EventStats()
    events = events_of(MODERN, stats=stats, reference=datetime(2024, 5, 3, tzinfo=UTC))
    assert [(e.line_number, e.line_count) for e in events] == [(1, 1), (2, 8), (10, 1)]
    failed = events[1]
    assert failed.message == "\n".join(["Instance failed to spawn: ValueError: boom", *FRAMES])
    assert failed.fields == {
        "loglevel": "ERROR",
        "module": "nova.compute.manager",
        "pid": "812",
        "request_id": "req-a8d1",
        "instance": UUID,
    }
    assert failed.timestamp == "2024-05-02T10:01:02.345Z"
    assert events[2].message == "Giving up"
    assert stats.blank == 0


def test_a_traceback_of_another_process_starts_its_own_event() -> None:
    # The message line is another process's: the traceback cannot belong to it, and
    # keeps the instance of its own prefix.
    other = MODERN[1].replace(" 812 ", " 813 ", 1)
    events = events_of([other, *MODERN[2:9]], reference=datetime(2024, 5, 3, tzinfo=UTC))
    assert [(e.line_number, e.line_count) for e in events] == [(1, 1), (2, 7)]
    assert events[1].message == "\n".join(FRAMES)
    assert events[1].fields == {
        "loglevel": "ERROR",
        "module": "nova.compute.manager",
        "pid": "812",
        "instance": UUID,
    }


def test_a_journald_traceback_with_repeated_error_prefixes_is_one_event() -> None:
    journal = "May 02 10:01:02.{} devstack nova-compute[812]: "
    head = f"ERROR nova.compute.manager [instance: {UUID}] "
    lines = [
        journal.format("345001")
        + f"ERROR nova.compute.manager [None req-a8d1 admin admin] [instance: {UUID}] failed",
        *(journal.format(f"{345100 + n}") + head + frame for n, frame in enumerate(FRAMES)),
        journal.format("345200") + head.rstrip(),
        journal.format("345300") + "INFO nova.compute.manager [-] Took 0.1 seconds",
    ]
    events = events_of(lines, syslog, reference=datetime(2024, 5, 3, tzinfo=UTC))
    assert [(e.line_number, e.line_count) for e in events] == [(1, 8), (9, 1)]
    assert events[0].message == "\n".join(["failed", *FRAMES])
    assert events[0].fields["instance"] == UUID
    assert events[0].fields["request_id"] == "req-a8d1"
    assert events[0].timestamp == "2024-05-02T10:01:02.345001Z"
