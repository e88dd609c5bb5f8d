"""syslog and journald exports; expected values read by slicing the text here."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest

from tests.paths import CORPUS, read_lines
from worker.formats import syslog
from worker.formats.base import Line, ParseContext, Record

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
SYSLOG = CORPUS / "os-loganalyze" / "syslog.txt"
C_API = CORPUS / "os-loganalyze" / "devstack@c-api.service.log.txt"
C_VOL = CORPUS / "os-loganalyze" / "devstack@c-vol.service.log.txt"


def parse_all(lines: list[str], reference: datetime) -> list[Record]:
    context = ParseContext(reference_time=reference)
    return [syslog.parse_line(Line(n, text), context) for n, text in enumerate(lines, 1)]


def test_syslog_txt_fields_and_timestamps() -> None:
    lines = read_lines(SYSLOG)
    assert len(lines) == 25939
    records = parse_all(lines, datetime(2014, 6, 10, tzinfo=UTC))
    for text, record in zip(lines, records, strict=True):
        # "Jun  9 15:41:36 host program[pid]: message"
        month = MONTHS.index(text[:3]) + 1
        day = int(text[4:6])
        assert record.timestamp == f"2014-{month:02d}-{day:02d}T{text[7:15]}Z"
        host, _, rest = text[16:].partition(" ")
        head, _, message = rest.partition(": ")
        program, _, pid = head.partition("[")
        assert record.fields.get("host") == (host or None)
        assert record.fields["program"] == program
        assert record.fields.get("pid") == (pid.rstrip("]") or None)
        assert record.message == message
    assert records[0].timestamp == "2014-06-09T15:41:36Z"
    repeated = [r for r in records if r.message.startswith("last message repeated")]
    assert repeated and all("host" not in r.fields for r in repeated)


def test_year_comes_from_the_reference_time() -> None:
    line = Line(1, read_lines(SYSLOG)[0])  # "Jun  9 15:41:36 ..."
    cases = [
        (datetime(2014, 6, 10, tzinfo=UTC), "2014-06-09T15:41:36Z"),
        (datetime(2014, 12, 31, tzinfo=UTC), "2014-06-09T15:41:36Z"),
        # A month after the reference month was last year: the log crossed New Year.
        (datetime(2015, 1, 2, tzinfo=UTC), "2014-06-09T15:41:36Z"),
        (datetime(2015, 5, 30, tzinfo=UTC), "2014-06-09T15:41:36Z"),
        # Eight days after the reference: no line is, so it is last year's.
        (datetime(2015, 6, 1, tzinfo=UTC), "2014-06-09T15:41:36Z"),
        # Up to two days after the reference (clock skew, a late last line): this year's.
        (datetime(2015, 6, 7, 16, tzinfo=UTC), "2015-06-09T15:41:36Z"),
        (datetime(2015, 6, 7, 15, tzinfo=UTC), "2014-06-09T15:41:36Z"),
        (datetime(2015, 6, 9, 15, 41, 36, tzinfo=UTC), "2015-06-09T15:41:36Z"),
    ]
    for reference, expected in cases:
        assert syslog.parse_line(line, ParseContext(reference_time=reference)).timestamp == expected


def test_journald_oslo_fields() -> None:
    lines = read_lines(C_API)
    records = parse_all(lines, datetime(2017, 3, 28, 13, tzinfo=UTC))
    assert records[0].timestamp is None  # "-- Logs begin at ..."
    assert records[0].message == lines[0]
    for text, record in zip(lines[1:], records[1:], strict=True):
        assert record.timestamp == "2017-03-28T" + text[7:22] + "Z"
        assert record.fields["host"] == "ubuntu-xenial-osic-cloud1-s3500-8127579"
        message = text.split("]: ", 1)[1]
        level, module, rest = message.split(" ", 2)
        if level in ("DEBUG", "INFO", "WARNING"):
            assert record.fields["loglevel"] == level
            assert record.fields["module"] == module
            assert rest.startswith("[-] ")
            assert record.message == rest[4:]
            assert "request_id" not in record.fields
        else:
            assert "loglevel" not in record.fields
            assert record.message == message
    assert records[1].fields == {
        "host": "ubuntu-xenial-osic-cloud1-s3500-8127579",
        "program": "systemd",
        "pid": "1",
    }
    assert records[3].fields["program"] == "cinder-api"
    assert records[3].fields["pid"] == "8526"
    assert records[3].message.startswith('Acquired semaphore "singleton_lock"')


def test_journald_request_id_and_traceback_indentation() -> None:
    lines = read_lines(C_VOL)
    records = parse_all(lines, datetime(2017, 5, 27, tzinfo=UTC))
    request = re.search(r"\[(req-[0-9a-f-]+) ", lines[0])
    assert request is not None
    assert records[0].fields["request_id"] == request.group(1)
    assert records[0].fields["loglevel"] == "INFO"
    assert records[0].message == "Delete snapshot completed successfully."
    # Frames keep their indentation after "cinder-volume[27348]: ".
    assert records[1].message == "Traceback (most recent call last):"
    assert records[2].message == lines[2].split("]: ", 1)[1]
    assert records[2].message.startswith("  File ")
    assert records[3].message == "    timer()"
    assert records[11].message.startswith("   stack : TTY=unknown")
    assert records[11].fields["program"] == "sudo"


def test_sniff() -> None:
    assert syslog.sniff(read_lines(SYSLOG)[0])
    assert syslog.sniff(read_lines(C_API)[1])
    assert not syslog.sniff(read_lines(C_API)[0])
    assert not syslog.sniff("2013-09-27 18:22:11.248 2820 INFO neutron.common.config [-] x")


def stamp(text: str, reference: datetime) -> str | None:
    return syslog.parse_line(Line(1, text), ParseContext(reference_time=reference)).timestamp


def test_new_year_in_both_directions() -> None:
    dec31 = "Dec 31 23:59:58 ubuntu-noble kernel: eth0: link down"
    jan1 = "Jan  1 00:00:02 ubuntu-noble kernel: eth0: link up"
    # The reference after both lines (the build ended on New Year's Day).
    after = datetime(2025, 1, 1, 0, 10, tzinfo=UTC)
    assert stamp(dec31, after) == "2024-12-31T23:59:58Z"
    assert stamp(jan1, after) == "2025-01-01T00:00:02Z"
    # The reference before the line (end time written before the last lines).
    before = datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert stamp(dec31, before) == "2024-12-31T23:59:58Z"
    assert stamp(jan1, before) == "2025-01-01T00:00:02Z"
    # Days later, a December line is still last year's.
    assert stamp(dec31, datetime(2025, 1, 5, tzinfo=UTC)) == "2024-12-31T23:59:58Z"


def test_the_reference_is_compared_in_utc() -> None:
    # 2024-12-31T22:00:00-05:00 is 2025-01-01T03:00:00Z: a line of Jan 1 02:30 (UTC)
    # is half an hour before the build's end, in 2025.
    end = datetime.fromisoformat("2024-12-31T22:00:00-05:00")
    line = "Jan  1 02:30:00 ubuntu-noble zuul-executor[812]: Job finished"
    assert stamp(line, end) == "2025-01-01T02:30:00Z"
    # The other way round: 2025-01-01T01:00:00+05:00 is Dec 31 20:00 UTC.
    east = datetime.fromisoformat("2025-01-01T01:00:00+05:00")
    assert stamp("Dec 31 19:30:00 h p: x", east) == "2024-12-31T19:30:00Z"
    assert stamp("Jun  9 15:41:36 h p: x", east) == "2024-06-09T15:41:36Z"


def test_leap_day_and_impossible_dates() -> None:
    leap = "Feb 29 12:00:00 h p: x"
    assert stamp(leap, datetime(2024, 3, 1, tzinfo=UTC)) == "2024-02-29T12:00:00Z"
    # 2025 has no Feb 29: no timestamp rather than a wrong day.
    assert stamp(leap, datetime(2025, 3, 1, tzinfo=UTC)) is None
    for text in ("Jan 32 12:00:00 h p: x", "Jan  1 25:00:00 h p: x", "Foo  1 12:00:00 h p: x"):
        record = syslog.parse_line(Line(1, text), ParseContext(datetime(2025, 3, 1, tzinfo=UTC)))
        assert record.timestamp is None, text
        assert record.message == text
        assert record.fields == {}


# rsyslog's RSYSLOG_FileFormat (RFC 3339 timestamps) and relayed lines with "<PRI>",
# written from rsyslog's documented templates; the corpus has neither.
RFC3339 = [
    (
        "2024-01-01T02:30:00.123456+00:00 ubuntu-noble sshd[812]: Accepted publickey for zuul",
        "2024-01-01T02:30:00.123456Z",
        {"host": "ubuntu-noble", "program": "sshd", "pid": "812"},
        "Accepted publickey for zuul",
    ),
    (
        "2024-01-01T02:30:00.5+02:00 ubuntu-noble kernel: [    0.000000] Linux version 6.8.0",
        "2024-01-01T00:30:00.5Z",
        {"host": "ubuntu-noble", "program": "kernel"},
        "[    0.000000] Linux version 6.8.0",
    ),
    (
        "2024-01-01T00:30:00-05:00 ubuntu-noble CRON[77]: (root) CMD (run-parts)",
        "2024-01-01T05:30:00Z",
        {"host": "ubuntu-noble", "program": "CRON", "pid": "77"},
        "(root) CMD (run-parts)",
    ),
    (
        "<13>Jan  1 02:30:00 ubuntu-noble zuul: relayed with its priority",
        "2025-01-01T02:30:00Z",
        {"host": "ubuntu-noble", "program": "zuul"},
        "relayed with its priority",
    ),
    (
        "<86>2024-01-01T02:30:00Z ubuntu-noble sudo[9]: pam_unix(sudo:session): opened",
        "2024-01-01T02:30:00Z",
        {"host": "ubuntu-noble", "program": "sudo", "pid": "9"},
        "pam_unix(sudo:session): opened",
    ),
    (
        "<14>Mar 28 12:20:44.172534 ubuntu-xenial cinder-api[8526]: "
        'DEBUG oslo_concurrency.lockutils [-] Acquired semaphore "singleton_lock"',
        "2025-03-28T12:20:44.172534Z",
        {
            "host": "ubuntu-xenial",
            "program": "cinder-api",
            "pid": "8526",
            "loglevel": "DEBUG",
            "module": "oslo_concurrency.lockutils",
        },
        'Acquired semaphore "singleton_lock"',
    ),
]


def test_rfc3339_and_priority() -> None:
    reference = datetime(2025, 3, 30, tzinfo=UTC)
    for text, timestamp, fields, message in RFC3339:
        record = syslog.parse_line(Line(1, text), ParseContext(reference_time=reference))
        assert (record.timestamp, record.fields, record.message) == (timestamp, fields, message)
        assert syslog.sniff(text)
    # An impossible RFC 3339 date dates nothing.
    bad = "2024-13-01T02:30:00Z ubuntu-noble sshd[812]: x"
    assert syslog.parse_line(Line(1, bad), ParseContext(reference)).timestamp is None


def test_console_and_oslo_lines_are_not_syslog() -> None:
    for text in (
        "2018-08-01T00:44:04.804077Z | Job: trigger-readthedocs-webhook",
        "2018-08-01 00:44:04.804077 | localhost | ok: Runtime: 0:00:00.003",
        "2013-09-27T18:22:11.248 2820 INFO neutron.common.config [-] Logging enabled!",
    ):
        assert not syslog.sniff(text), text


JOURNAL = "Mar 28 12:20:44.{} ubuntu-xenial nova-compute[8526]: "
ERROR_HEAD = "ERROR nova.compute.manager [instance: 3f2a6b1c-9d8e-4f7a-b6c5-d4e3f2a1b0c9] "


def test_journald_exception_prefix_lines_are_continuations() -> None:
    # devstack's journald format: oslo.log's head without timestamp and pid, each line
    # its own journal entry with its own time; the exception prefix "ERROR <module>
    # <instance>" on every traceback line.
    lines = [
        JOURNAL.format("172534")
        + "ERROR nova.compute.manager [None req-a8d1e0f2 admin admin] "
        + "[instance: 3f2a6b1c-9d8e-4f7a-b6c5-d4e3f2a1b0c9] Instance failed to spawn: boom",
        JOURNAL.format("172601") + ERROR_HEAD + "Traceback (most recent call last):",
        JOURNAL.format("172644") + ERROR_HEAD + '  File "/opt/stack/nova/nova/compute/manager.py"',
        JOURNAL.format("172690") + ERROR_HEAD + "ValueError: boom",
        JOURNAL.format("172702") + ERROR_HEAD.rstrip(),
        JOURNAL.format("172800") + "ERROR nova.compute.manager [-] Giving up",
        # Another process with the same head is not this traceback.
        "Mar 28 12:20:44.172900 ubuntu-xenial nova-compute[9999]: " + ERROR_HEAD + "ValueError",
    ]
    context = ParseContext(reference_time=datetime(2017, 3, 28, 13, tzinfo=UTC))
    records = [syslog.parse_line(Line(n, t), context) for n, t in enumerate(lines, 1)]
    assert [r.continuation for r in records] == [False, True, True, True, True, False, False]
    assert [r.message for r in records[1:5]] == [
        "Traceback (most recent call last):",
        '  File "/opt/stack/nova/nova/compute/manager.py"',
        "ValueError: boom",
        "",
    ]
    assert records[0].fields["request_id"] == "req-a8d1e0f2"
    assert records[0].fields["instance"] == records[2].fields["instance"]
    assert records[2].timestamp == "2017-03-28T12:20:44.172644Z"


def test_a_reference_without_zone_is_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    # Taken for local time, 2024-12-29T23:00 in New York would be 2024-12-30T04:00Z,
    # two days before Jan 1 02:30; as UTC it is more than two days before.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        line = "Jan  1 02:30:00 ubuntu-noble zuul-executor[812]: Job finished"
        assert stamp(line, datetime(2024, 12, 29, 23)) == "2024-01-01T02:30:00Z"
        assert stamp(line, datetime(2024, 12, 30, 3)) == "2025-01-01T02:30:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()
