"""syslog and journald exports; expected values read by slicing the text here."""

from __future__ import annotations

import re
from datetime import UTC, datetime

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
        (datetime(2015, 6, 1, tzinfo=UTC), "2015-06-09T15:41:36Z"),
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
