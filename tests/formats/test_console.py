"""Console formats (Zuul/Jenkins console, console.html, GitHub Actions) on the corpus."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import unescape

import pytest

from tests.paths import CORPUS, read_lines
from worker.formats import console, github
from worker.formats.base import Line, ParseContext, Record

TEXT = ParseContext(reference_time=datetime(2018, 8, 1, tzinfo=UTC))
HTML = ParseContext(reference_time=datetime(2013, 9, 27, tzinfo=UTC), html=True)


def parse_all(module, lines: list[str], context: ParseContext) -> list[Record]:
    return [module.parse_line(Line(n, text), context) for n, text in enumerate(lines, 1)]


def test_job_output_timestamps_hosts_and_messages() -> None:
    lines = read_lines(CORPUS / "zuul-jobs-fixture" / "job-output.txt")
    records = parse_all(console, lines, TEXT)
    # The hosts of this build, as its PLAY/TASK output shows them.
    hosts = {"localhost", "ubuntu-xenial", "ubuntu-xenial -> localhost"}
    with_host = 0
    for text, record in zip(lines[:-1], records[:-1], strict=True):
        assert record.timestamp == text[:10] + "T" + text[11:26] + "Z"
        parts = text.split(" | ", 2)
        if len(parts) == 3 and parts[1] in hosts:
            with_host += 1
            assert record.fields == {"host": parts[1]}
            assert record.message == parts[2]
        else:
            assert record.fields == {}
            assert record.message == text[len("2018-08-01 00:44:04.693529 | ") :]
    assert with_host == 24
    # The randomart box keeps its own "|" characters.
    assert records[42].fields == {"host": "ubuntu-xenial -> localhost"}
    assert records[42].message == "| .o o            |"
    assert records[20].message == "Job: trigger-readthedocs-webhook"
    assert records[20].fields == {}


def test_job_output_literal_markup_is_kept() -> None:
    lines = read_lines(CORPUS / "zuul-jobs-fixture" / "job-output.txt")
    last = console.parse_line(Line(54, lines[-1]), TEXT)
    assert last.timestamp is None
    assert last.message == "here is a line with some <escapes>"


def test_console_html_markup_and_entities_are_removed() -> None:
    lines = read_lines(CORPUS / "os-loganalyze" / "console.html.gz")
    assert len(lines) == 21373
    raw = "\n".join(lines)
    assert raw.count("<a ") == 536 and "&amp;" in raw and "&lt;" in raw
    records = parse_all(console, lines, HTML)
    assert len(records) == 21373
    for record in records:
        for markup in ("<a ", "</a>", "<pre>", "</pre>", "&amp;", "&lt;", "href="):
            assert markup not in record.message, record
    # Every line but the <pre> wrapper starts with "YYYY-MM-DD HH:MM:SS.fff | ".
    assert records[0].message == "" and records[0].timestamp is None
    assert records[-1].message == "" and records[-1].timestamp is None
    for text, record in zip(lines[1:-1], records[1:-1], strict=True):
        stamp, _, _ = text.partition(" | ")
        assert record.timestamp == stamp.replace(" ", "T") + "Z"
        assert record.fields == {}
    assert records[1].message == "Started by user anonymous"
    anchor = re.search(r"<a href='[^']*'>([^<]*)</a>", lines[6])
    assert anchor is not None
    assert records[6].message == "+ git clone " + anchor.group(1)
    assert records[20].message.startswith("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 16436")
    assert sum(r.message.count("&") for r in records) == raw.count("&amp;")


def test_console_html_six_digit_fractions() -> None:
    lines = read_lines(CORPUS / "os-loganalyze" / "console.html.gz")
    six = [n for n, text in enumerate(lines) if re.match(r"\S+ \d\d:\d\d:\d\d\.\d{6} \| ", text)]
    assert len(six) == 68
    record = console.parse_line(Line(six[0] + 1, lines[six[0]]), HTML)
    assert record.timestamp == "2013-09-27T18:47:33.342999Z"
    assert record.message == "Build step 'Execute shell' marked build as failure"


def test_html_is_only_removed_when_the_file_is_html() -> None:
    text = "2013-09-27 18:15:29.336 | 1: lo: &lt;LOOPBACK,UP,LOWER_UP> <b>x</b>"
    assert (
        console.parse_line(Line(1, text), TEXT).message
        == "1: lo: &lt;LOOPBACK,UP,LOWER_UP> <b>x</b>"
    )
    assert console.parse_line(Line(1, text), HTML).message == "1: lo: <LOOPBACK,UP,LOWER_UP> x"


def test_every_console_html_link_text_stays_a_word_of_its_own() -> None:
    lines = read_lines(CORPUS / "os-loganalyze" / "console.html.gz")
    anchors = 0
    for number, text in enumerate(lines, 1):
        message = console.parse_line(Line(number, text), HTML).message
        for link in re.findall(r"<a href='[^']*'[^>]*>([^<]*)</a>", text):
            anchors += 1
            # Whitespace or an end of the line on both sides, never a neighbour's letter.
            word = re.escape(unescape(link))
            assert re.search(rf"(?:^|\s){word}(?:\s|$)", message), (number, message)
        # No double space where the line had none.
        assert ("  " in message) == ("  " in unescape(re.sub(r"<[^>]*>", "", text)))
    assert anchors == 536


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("See <a href='x'>details.</a>FATAL: boom", "See details. FATAL: boom"),
        ("<b>x</b>y", "xy"),
        ("x<span class='c'>y</span>z", "xyz"),  # AnsiColor colouring part of a word
        ("a<br>b", "a b"),
        ("a</a><a href='y'>b", "a b"),  # a run of tags leaves one space
        ("a <a href='y'>b</a> c", "a b c"),  # next to a space: nothing
        ("a\t<a href='y'>b</a>", "a\tb"),
        ("<pre>", ""),
        ("</a>start and end<a href='y'>", "start and end"),
        ("&lt;b&gt;x&lt;/b&gt;", "<b>x</b>"),  # escaped markup is text
        ("&amp;&amp; &#39;q&#39; &#x27;r&#x27; &quot;s&quot;", "&& 'q' 'r' \"s\""),
        ("1 < 2 and 3 > 2", "1 < 2 and 3 > 2"),  # a "<" that starts no tag stays
        ("<" * 100_000, "<" * 100_000),
        # No code point has 8 digits: U+FFFD, as for any reference out of range, even
        # where Python's int() refuses the thousands of digits.
        ("a &#" + "9" * 5000 + "; &amp; &#65;", "a \ufffd & A"),
        ("&#99999999;", "\ufffd"),
    ],
)
def test_clean_html(html: str, text: str) -> None:
    assert console.clean_html(html) == text


def test_devstacklog_keeps_nested_timestamps_in_the_message() -> None:
    lines = read_lines(CORPUS / "os-loganalyze" / "devstacklog.txt.gz")
    records = parse_all(console, lines, TEXT)
    stamped = [text for text in lines if re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \| ", text)]
    assert sum(r.timestamp is not None for r in records) == len(stamped) == len(lines) - 9
    assert not any(r.fields for r in records)
    assert records[1].message == "+ echo_summary 'Installing package prerequisites'"
    assert records[-1].timestamp is None
    assert records[-1].message == "This is your host ip: 166.78.46.245"


# (console line as written, its timestamp as stored, host, message), by hand.
CONSOLE_STAMPS = [
    (
        "2018-08-01 00:44:04.804077 | localhost | ok",
        "2018-08-01T00:44:04.804077Z",
        "localhost",
        "ok",
    ),
    (
        "2018-08-01T00:44:04.804077 | localhost | ok",
        "2018-08-01T00:44:04.804077Z",
        "localhost",
        "ok",
    ),
    ("2018-08-01T00:44:04.804077Z | PLAY [all]", "2018-08-01T00:44:04.804077Z", None, "PLAY [all]"),
    ("2018-08-01 00:44:04,804 | + set -e", "2018-08-01T00:44:04.804Z", None, "+ set -e"),
    ("2018-08-01T02:44:04.8+02:00 | node | x", "2018-08-01T00:44:04.8Z", "node", "x"),
    ("2018-08-01T00:14:04-0100 | node | x", "2018-08-01T01:14:04Z", "node", "x"),
    ("2018-08-01T00:14:04.5-01:00 |", "2018-08-01T01:14:04.5Z", None, ""),
]


def test_timestamp_shapes() -> None:
    for text, timestamp, host, message in CONSOLE_STAMPS:
        record = console.parse_line(Line(1, text), TEXT)
        assert record.timestamp == timestamp, text
        assert record.fields == ({"host": host} if host else {}), text
        assert record.message == message, text
        assert console.sniff(text)


def test_an_impossible_date_is_no_timestamp() -> None:
    for text in (
        "2013-13-45 25:61:99.923 | + ./stack.sh",
        "2013-09-31 10:00:00.000 | + ./stack.sh",
        "2013-09-27 18:14:10.807+2500 | + ./stack.sh",
    ):
        record = console.parse_line(Line(1, text), TEXT)
        assert record.timestamp is None, text
        assert record.message == text
        assert record.fields == {}


def test_github_actions_log() -> None:
    lines = read_lines(CORPUS / "bugswarm" / "2360239904-orig.log")
    assert len(lines) == 4922
    records = parse_all(github, lines, TEXT)
    for text, record in zip(lines, records, strict=True):
        stamp, _, message = text.partition(" ")
        assert record.timestamp == stamp
        assert record.message == message
    assert records[0].timestamp == "2022-05-20T19:22:05.7100220Z"
    assert records[6].message == "##[group]Operating System"


def test_sniff() -> None:
    job_output = read_lines(CORPUS / "zuul-jobs-fixture" / "job-output.txt")
    assert console.sniff(job_output[0])
    assert not console.sniff(job_output[-1])
    assert github.sniff(read_lines(CORPUS / "bugswarm" / "2360239904-orig.log")[0])
    assert not github.sniff(job_output[0])
    assert not console.sniff("2013-09-27 18:22:11.248 2820 INFO neutron.common.config [-] x")
