"""Apache access and error logs. The corpus has none of their own, so these are lines of
the shapes httpd writes (the access line is the one in Apache's log documentation)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.paths import CORPUS
from worker.formats import apache
from worker.formats.base import Line, ParseContext

CONTEXT = ParseContext(reference_time=datetime(2017, 10, 12, tzinfo=UTC))


def parse(text: str):
    return apache.parse_line(Line(1, text), CONTEXT)


def test_combined_access_line_is_converted_to_utc() -> None:
    text = (
        '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326'
        ' "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"'
    )
    record = parse(text)
    assert record.timestamp == "2000-10-10T20:55:36Z"
    assert record.message == text
    assert record.fields == {
        "clientip": "127.0.0.1",
        "verb": "GET",
        "request": "/apache_pb.gif",
        "response": "200",
    }


def test_access_line_offsets_cross_midnight() -> None:
    late = '10.0.0.1 - - [31/Dec/2016:23:30:00 -0130] "POST /v3/auth/tokens HTTP/1.1" 201 6570'
    assert parse(late).timestamp == "2017-01-01T01:00:00Z"
    early = '10.0.0.1 - - [01/Mar/2016:00:10:00 +0100] "GET / HTTP/1.1" 300 1 "-" "curl/7.47.0"'
    assert parse(early).timestamp == "2016-02-29T23:10:00Z"


def test_swift_access_line_in_syslog() -> None:
    # The access part of a real swift line from the corpus's syslog.txt.
    line = next(
        text
        for text in (CORPUS / "os-loganalyze" / "syslog.txt").read_text().split("\n")
        if "account-server: 127.0.0.1 - - [" in text
    )
    access = line.split("account-server: ", 1)[1]
    record = parse(access)
    assert record.timestamp == "2014-06-09T15:41:42Z"
    assert record.fields["verb"] == access.split('"')[1].split(" ")[0]
    assert record.fields["response"] == access.split('" ')[1][:3]


def test_error_log_24() -> None:
    text = (
        "[Wed Oct 11 14:32:52.123456 2017] [wsgi:error] [pid 1234:tid 140219843311360]"
        " [remote 10.0.0.5:50312] Internal Server Error: /dashboard/project/"
    )
    record = parse(text)
    assert record.timestamp == "2017-10-11T14:32:52.123456Z"
    assert record.fields == {"loglevel": "ERROR", "module": "wsgi", "pid": "1234"}
    assert record.message == "[remote 10.0.0.5:50312] Internal Server Error: /dashboard/project/"


def test_error_log_22_and_traceback_frames_keep_indentation() -> None:
    record = parse("[Wed Oct 04 09:01:02 2017] [warn] [client 10.0.0.1] mod_wsgi: deprecated")
    assert record.timestamp == "2017-10-04T09:01:02Z"
    assert record.fields == {"loglevel": "WARNING"}
    assert record.message == "[client 10.0.0.1] mod_wsgi: deprecated"
    frame = parse('[Wed Oct 11 14:32:52.1 2017] [wsgi:error] [pid 12]   File "/x.py", line 4')
    assert frame.message == '  File "/x.py", line 4'


def test_other_lines() -> None:
    record = parse("AH00558: apache2: Could not reliably determine the server's name")
    assert record.timestamp is None
    assert record.fields == {}


def test_sniff() -> None:
    assert apache.sniff('127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1')
    assert apache.sniff("[Wed Oct 11 14:32:52 2017] [error] [client 10.0.0.1] x")
    assert not apache.sniff("2013-09-27 18:22:11.248 2820 INFO neutron.common.config [-] x")
