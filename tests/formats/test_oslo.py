"""oslo.log format on the devstack screen logs; expectations read with str.split here."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

from tests.paths import CORPUS, read_lines
from worker.formats import oslo
from worker.formats.base import Line, ParseContext, Record

CONTEXT = ParseContext(reference_time=datetime(2013, 9, 27, tzinfo=UTC))
LEVELS = {"DEBUG", "INFO", "AUDIT", "WARNING", "ERROR", "CRITICAL", "TRACE"}
STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ ")


def parse_all(lines: list[str]) -> list[Record]:
    return [oslo.parse_line(Line(n, text), CONTEXT) for n, text in enumerate(lines, 1)]


def test_screen_q_svc_levels_agree_with_a_plain_count() -> None:
    lines = read_lines(CORPUS / "os-loganalyze" / "screen-q-svc.txt.gz")
    assert len(lines) == 47887
    expected = Counter(m.group(1) for text in lines if (m := re.match(r"\S+ \S+ \d+ (\w+) ", text)))
    parsed = Counter(r.fields.get("loglevel") for r in parse_all(lines))
    parsed.pop(None)
    assert parsed == expected
    # SOURCES.txt
    assert parsed == {
        "DEBUG": 43583,
        "TRACE": 589,
        "INFO": 262,
        "ERROR": 72,
        "WARNING": 48,
        "CRITICAL": 1,
    }


def test_screen_q_svc_error_lines() -> None:
    lines = read_lines(CORPUS / "os-loganalyze" / "screen-q-svc.txt.gz")
    records = parse_all(lines)
    errors = 0
    for text, record in zip(lines, records, strict=True):
        words = text.split(" ")
        if len(words) > 4 and words[3] == "ERROR":
            errors += 1
            assert record.timestamp == f"{words[0]}T{words[1]}Z"
            assert record.fields["pid"] == words[2]
            assert record.fields["module"] == words[4]
            assert record.fields["loglevel"] == "ERROR"
            # "[-] text" or "[req-... user tenant] text"
            assert record.message == text.split("] ", 1)[1]
            assert not record.continuation
    assert errors == 72
    delete_failed = records[1854]
    assert delete_failed.message == "delete failed"
    assert delete_failed.timestamp == "2013-09-27T18:23:42.923Z"
    assert "request_id" not in delete_failed.fields


def is_trace(text: str, record: Record) -> bool:
    """Whether `text` is a TRACE line (by its words); if so, `record` must say so."""
    words = text.split(" ", 5)
    if len(words) < 5 or words[3] != "TRACE":
        return False
    assert record.continuation
    assert record.fields == {"loglevel": "TRACE", "module": words[4], "pid": words[2]}
    assert record.message == (words[5] if len(words) > 5 else "")
    return True


def test_screen_q_svc_trace_lines_are_continuations() -> None:
    lines = read_lines(CORPUS / "os-loganalyze" / "screen-q-svc.txt.gz")
    records = parse_all(lines)
    traces = 0
    for text, record in zip(lines, records, strict=True):
        if is_trace(text, record):
            traces += 1
        else:
            assert not record.continuation
    assert traces == 589
    assert records[1855].message == "Traceback (most recent call last):"
    assert records[1856].message.startswith('  File "/opt/stack/new/neutron/neutron/api/v2/')
    assert records[1867].message == ""  # the bare "... TRACE neutron.api.v2.resource"


def test_lines_repeating_a_trace_prefix_parse_as_they_would_alone() -> None:
    # nova-api.log's tracebacks: runs of TRACE lines sharing "<ts> <pid> TRACE <module> ",
    # parsed from a remembered prefix; next to them, lines that only nearly repeat it.
    lines = read_lines(CORPUS / "os-log-merger" / "nova-api.log-20151113.gz")[:30000]
    first = next(t for t in lines if t.split(" ")[3] == "TRACE")
    prefix = " ".join(first.split(" ")[:5]) + " "
    near = [prefix + "[req-1 u p] x", prefix.rstrip(), prefix, prefix[:-1] + ".sub x"]
    shared = ParseContext(reference_time=CONTEXT.reference_time)
    traces = 0
    for number, text in enumerate([*lines, first, *near], 1):
        alone = oslo.parse_line(Line(number, text), replace(shared, repeated=None))
        record = oslo.parse_line(Line(number, text), shared)
        assert record == alone
        traces += is_trace(text, record)
    assert traces > 25000


def test_request_ids() -> None:
    lines = read_lines(CORPUS / "os-loganalyze" / "screen-n-api.txt.gz")
    records = parse_all(lines)
    with_request = 0
    for text, record in zip(lines, records, strict=True):
        found = re.match(r"\S+ \S+ (?:\d+ )?[A-Z]+ \S+ \[(req-[0-9a-f-]+) ", text)
        if found:
            with_request += 1
            assert record.fields["request_id"] == found.group(1)
        else:
            assert "request_id" not in record.fields
    assert with_request > 1000


def test_lines_without_pid() -> None:
    lines = read_lines(CORPUS / "os-loganalyze" / "screen-n-api.txt.gz")
    records = parse_all(lines)
    without_pid = 0
    for text, record in zip(lines, records, strict=True):
        words = text.split(" ", 4)
        if STAMP.match(text) and words[2] in LEVELS:
            without_pid += 1
            assert "pid" not in record.fields
            assert record.fields["loglevel"] == words[2]
            assert record.fields["module"] == words[3]
    assert without_pid > 1000
    levels = Counter(r.fields.get("loglevel") for r in records)
    # SOURCES.txt
    assert [levels[name] for name in ("DEBUG", "INFO", "AUDIT", "WARNING", "ERROR")] == [
        11886,
        2721,
        271,
        6,
        5,
    ]


def test_other_lines_keep_their_text_without_timestamp() -> None:
    lines = read_lines(CORPUS / "os-loganalyze" / "screen-n-api.txt.gz")
    records = parse_all(lines)
    other = [(t, r) for t, r in zip(lines, records, strict=True) if not STAMP.match(t)]
    assert len(other) > 30000
    for text, record in other:
        assert record.timestamp is None
        assert record.message == text
        assert record.fields == {}
    assert other[0][0].startswith("+ ln -sf ")


def test_screen_c_api_audit_level() -> None:
    lines = read_lines(CORPUS / "os-loganalyze" / "screen-c-api.txt")
    levels = Counter(r.fields.get("loglevel") for r in parse_all(lines))
    assert levels["AUDIT"] == 249 and levels["WARNING"] == 50  # SOURCES.txt


def test_garbled_line_keeps_its_timestamp() -> None:
    # Two processes wrote into each other's line (nova-api.log-20151113).
    text = '2015-11-13 02:12:21.981 16i.openstack   File "/usr/lib/python2.7/x.py", line 103'
    record = oslo.parse_line(Line(1, text), CONTEXT)
    assert record.timestamp == "2015-11-13T02:12:21.981Z"
    assert record.message == text[24:]
    assert record.fields == {}


def test_only_ascii_digits_make_a_timestamp() -> None:
    # A real line of screen-c-api.txt with its year in Arabic-Indic digits, which no
    # engine parses as a date: the line keeps its text and gets no timestamp.
    text = next(
        t for t in read_lines(CORPUS / "os-loganalyze" / "screen-c-api.txt") if STAMP.match(t)
    )
    assert oslo.parse_line(Line(1, text), CONTEXT).timestamp is not None
    foreign = "\u0662\u0660\u0661\u0663" + text[4:]
    record = oslo.parse_line(Line(1, foreign), CONTEXT)
    assert record.timestamp is None
    assert record.message == foreign


def test_sniff() -> None:
    lines = read_lines(CORPUS / "os-loganalyze" / "screen-q-svc.txt.gz")
    assert not oslo.sniff(lines[0])  # "+ ln -sf ..."
    assert oslo.sniff(lines[4])
