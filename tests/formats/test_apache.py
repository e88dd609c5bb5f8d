"""Apache access and error logs. The corpus has no Apache file, so these lines are
written from the documented formats, not copied from a server's logs: httpd's "Log
Files" page (the Combined Log Format example, the 2.2 and 2.4 error log examples),
httpd 2.4's ErrorLogFormat (default "[time] [module:level] [pid P:tid T] [client
ADDRESS:PORT] message"), and mod_wsgi's documentation ("[wsgi:error]" and "[remote
ADDRESS:PORT]" in mod_wsgi 4; mod_wsgi 3 under httpd 2.4 logs no module name, "[:error]")."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

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


@pytest.mark.parametrize(
    "text",
    [
        '10.0.0.1 - - [45/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1',
        '10.0.0.1 - - [31/Feb/2000:13:55:36 +0000] "GET / HTTP/1.0" 200 1',
        '10.0.0.1 - - [29/Feb/2017:13:55:36 +0000] "GET / HTTP/1.0" 200 1',
        '10.0.0.1 - - [10/Oct/2000:24:00:00 +0000] "GET / HTTP/1.0" 200 1',
        '10.0.0.1 - - [10/Oct/2000:13:61:00 +0000] "GET / HTTP/1.0" 200 1',
        '10.0.0.1 - - [10/Oct/2000:13:55:60 +0000] "GET / HTTP/1.0" 200 1',
        '10.0.0.1 - - [10/Oct/2000:13:55:36 +0099] "GET / HTTP/1.0" 200 1',
        '10.0.0.1 - - [10/Oct/0000:13:55:36 +0000] "GET / HTTP/1.0" 200 1',
        "[Wed Feb 31 14:32:52 2017] [error] [client 10.0.0.1] x",
        "[Wed Oct 11 25:61:99.123456 2017] [:error] [pid 1] x",
    ],
)
def test_impossible_dates_are_no_timestamps(text: str) -> None:
    record = parse(text)
    assert (record.timestamp, record.fields, record.message) == (None, {}, text)


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
    assert record.fields == {
        "loglevel": "ERROR",
        "module": "wsgi",
        "pid": "1234",
        "clientip": "10.0.0.5",
    }
    assert record.message == "Internal Server Error: /dashboard/project/"


def test_error_log_22_and_traceback_frames_keep_indentation() -> None:
    record = parse("[Wed Oct 04 09:01:02 2017] [warn] [client 10.0.0.1] mod_wsgi: deprecated")
    assert record.timestamp == "2017-10-04T09:01:02Z"
    assert record.fields == {"loglevel": "WARNING", "clientip": "10.0.0.1"}
    assert record.message == "mod_wsgi: deprecated"
    frame = parse('[Wed Oct 11 14:32:52.1 2017] [wsgi:error] [pid 12]   File "/x.py", line 4')
    assert frame.message == '  File "/x.py", line 4'


def test_error_log_24_without_module_name() -> None:
    # mod_wsgi 3 under httpd 2.4 logs through the core without naming its module.
    text = (
        "[Wed Oct 11 14:32:52.123456 2017] [:error] [pid 1234] [client 10.0.0.1:5555]"
        " mod_wsgi (pid=1234): Exception occurred processing WSGI script '/srv/app.wsgi'."
    )
    record = parse(text)
    assert record.timestamp == "2017-10-11T14:32:52.123456Z"
    assert record.fields == {"loglevel": "ERROR", "pid": "1234", "clientip": "10.0.0.1"}
    assert record.message == (
        "mod_wsgi (pid=1234): Exception occurred processing WSGI script '/srv/app.wsgi'."
    )


def test_error_log_24_without_client() -> None:
    record = parse(
        "[Wed Oct 11 14:32:52.5 2017] [mpm_event:notice] [pid 1:tid 2] AH00489: Apache/2.4.29"
        " (Ubuntu) configured -- resuming normal operations"
    )
    assert record.timestamp == "2017-10-11T14:32:52.5Z"
    assert record.fields == {"loglevel": "NOTICE", "module": "mpm_event", "pid": "1"}
    assert record.message.startswith("AH00489: Apache/2.4.29 (Ubuntu) configured")


@pytest.mark.parametrize(
    ("head", "clientip"),
    [
        # 2.4 writes ADDRESS:PORT, 2.2 the address alone: an IPv6 address ends in ":1" too.
        ("[core:error] [pid 7] [client 10.0.0.1:5555]", "10.0.0.1"),
        ("[core:error] [pid 7] [client ::1:5555]", "::1"),
        ("[wsgi:error] [pid 7:tid 8] [remote 2001:db8::7:443]", "2001:db8::7"),
        ("[error] [client 10.0.0.1]", "10.0.0.1"),
        ("[error] [client ::1]", "::1"),
    ],
)
def test_client_address(head: str, clientip: str) -> None:
    record = parse(f"[Wed Oct 11 14:32:52 2017] {head} File does not exist: /srv/favicon.ico")
    assert record.fields["clientip"] == clientip
    assert record.message == "File does not exist: /srv/favicon.ico"


def test_access_line_without_request_line() -> None:
    # httpd logs "-" when the client sent no request line before the timeout.
    record = parse('10.0.0.1 - - [11/Oct/2017:14:32:52 +0000] "-" 408 - "-" "-"')
    assert record.timestamp == "2017-10-11T14:32:52Z"
    assert record.fields == {"clientip": "10.0.0.1", "response": "408"}


def test_access_line_request_with_escaped_quotes() -> None:
    # httpd writes a quote inside the request as \", so the request ends at the first
    # quote that the status follows.
    record = parse('10.0.0.1 - - [11/Oct/2017:14:32:52 +0000] "GET /q?a=\\"x\\" HTTP/1.1" 200 5')
    assert record.fields == {
        "clientip": "10.0.0.1",
        "verb": "GET",
        "request": '/q?a=\\"x\\"',
        "response": "200",
    }


def test_request_ends_at_the_quote_before_the_first_quoted_field() -> None:
    # httpd writes a quote inside the request as \", so an escaped quote followed by
    # " 200" is request text: the status is the field after the request's own quote.
    escaped = parse('10.0.0.1 - - [11/Oct/2017:14:32:52 +0000] "GET /?q=\\" 200 HTTP/1.1" 404 5')
    assert (escaped.fields["request"], escaped.fields["response"]) == ('/?q=\\"', "404")
    # A 3-digit field after the quoted ones (a %D of 532 microseconds) is no status.
    timed = parse('10.0.0.1 - - [11/Oct/2017:14:32:52 +0000] "GET /v3 HTTP/1.1" 200 5 "-" "c" 532')
    assert (timed.fields["request"], timed.fields["response"]) == ("/v3", "200")
    # A space-quote inside the request is not what httpd writes (it writes \"): the line
    # is no access line, and keeps its text.
    text = '10.0.0.1 - - [11/Oct/2017:14:32:52 +0000] "GET /a "b" HTTP/1.1" 200 5'
    assert (parse(text).timestamp, parse(text).fields) == (None, {})


ACCESS_HEAD = '10.0.0.1 - - [11/Oct/2017:14:32:52 +0000] "GET /'
ERROR_HEAD = "[Wed Oct 11 14:32:52 2017] "


def test_adversarial_lines_parse_as_written() -> None:
    # The 64 KiB lines of tools/bench adversarial: what they parse to, not how fast.
    unterminated = ACCESS_HEAD + "a" * 65536
    assert (parse(unterminated).timestamp, parse(unterminated).fields) == (None, {})
    for unit in ('"', '" 20'):
        dense = ACCESS_HEAD + unit * (65536 // len(unit))
        assert (parse(dense).timestamp, parse(dense).fields) == (None, {})
    quoted = ACCESS_HEAD + '\\"' * 20000 + ' HTTP/1.1" 200 1'
    record = parse(quoted)
    assert record.timestamp == "2017-10-11T14:32:52Z"
    assert record.fields == {
        "clientip": "10.0.0.1",
        "verb": "GET",
        "request": "/" + '\\"' * 20000,
        "response": "200",
    }
    # More than 9 fractional digits is no time httpd writes (it writes 6).
    digits = "[Wed Oct 11 14:32:52." + "1" * 65536 + " 2017] [:error] [pid 1] x"
    brackets = ERROR_HEAD + "[" * 65536
    word = ERROR_HEAD + "[" + "a" * 65536
    client = ERROR_HEAD + "[:error] [pid 1] [client " + "1:" * 32768
    for text in (digits, brackets, word):
        record = parse(text)
        assert (record.timestamp, record.fields, record.message) == (None, {}, text)
    record = parse(client)
    assert record.fields == {"loglevel": "ERROR", "pid": "1"}
    assert record.message == client[len(ERROR_HEAD + "[:error] [pid 1] ") :]


def test_other_lines() -> None:
    record = parse("AH00558: apache2: Could not reliably determine the server's name")
    assert record.timestamp is None
    assert record.fields == {}


def test_sniff() -> None:
    assert apache.sniff('127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1')
    assert apache.sniff("[Wed Oct 11 14:32:52 2017] [error] [client 10.0.0.1] x")
    assert not apache.sniff("2013-09-27 18:22:11.248 2820 INFO neutron.common.config [-] x")
