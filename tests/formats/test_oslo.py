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


# -- oslo.log since 1.2 (written from its defaults: logging_context_format_string
# "<ts> <pid> <level> <module> [<global_request_id> <request_id> <user_identity>]
# <instance><message>", logging_exception_prefix "<ts> <pid> ERROR <module> <instance>",
# instance_format "[instance: <uuid>] "; the corpus has only the older TRACE style).

HEAD = "2024-05-02 10:01:02.345 812 INFO nova.compute.manager "
INSTANCE = "3f2a6b1c-9d8e-4f7a-b6c5-d4e3f2a1b0c9"
REQUEST = "req-a8d1e0f2-5b7c-4d3e-8f9a-0b1c2d3e4f50"
GLOBAL = "req-6c1f3b7e-8f0a-4a4e-9d43-2b1f8b8e9c10"
USER = "7e2f9c0a1b3d4e5f 5c1a2b3c4d5e6f70 - - default default"
BASE = {"loglevel": "INFO", "module": "nova.compute.manager", "pid": "812"}

# (what follows the module, the fields it adds, the message left), by hand.
CONTEXTS = [
    ("[-] Running periodic task", {}, "Running periodic task"),
    (f"[{REQUEST} demo demo] Running", {"request_id": REQUEST}, "Running"),
    (f"[None {REQUEST} {USER}] Running", {"request_id": REQUEST}, "Running"),
    (
        f"[{GLOBAL} {REQUEST} {USER}] Running",
        {"request_id": REQUEST, "global_request_id": GLOBAL},
        "Running",
    ),
    (
        f"[{REQUEST} {USER}] [instance: {INSTANCE}] Took 1.20 seconds to spawn",
        {"request_id": REQUEST, "instance": INSTANCE},
        "Took 1.20 seconds to spawn",
    ),
    (f"[-] [instance: {INSTANCE}] Deleted", {"instance": INSTANCE}, "Deleted"),
    (f"[instance: {INSTANCE}] Traceback", {"instance": INSTANCE}, "Traceback"),
    (f"[{REQUEST}] Running", {"request_id": REQUEST}, "Running"),
    (f"[{REQUEST} demo demo]", {"request_id": REQUEST}, ""),
    ("[-]", {}, ""),
    # Not a context: message text, as it was written.
    ("[abc] Running", {}, "[abc] Running"),
    ("[None] Running", {}, "[None] Running"),
    (f"[{REQUEST} demo demo Running", {}, f"[{REQUEST} demo demo Running"),
    ("[-]Running", {}, "[-]Running"),
    (f"[instance {INSTANCE}] Running", {}, f"[instance {INSTANCE}] Running"),
]


def test_request_context_grammar() -> None:
    for rest, extra, message in CONTEXTS:
        context = ParseContext(reference_time=CONTEXT.reference_time)
        record = oslo.parse_line(Line(1, HEAD + rest), context)
        assert record.timestamp == "2024-05-02T10:01:02.345Z", rest
        assert record.fields == {**BASE, **extra}, rest
        assert record.message == message, rest


def test_instances_of_the_corpus() -> None:
    # screen-n-api.txt: "[req-... user tenant] [instance: <uuid>] text".
    lines = read_lines(CORPUS / "os-loganalyze" / "screen-n-api.txt.gz")
    with_instance = 0
    for text, record in zip(lines, parse_all(lines), strict=True):
        if "] [instance: " in text and STAMP.match(text):
            with_instance += 1
            after = text.split("] [instance: ", 1)[1]
            uuid, message = after.split("] ", 1)
            assert record.fields["instance"] == uuid
            assert record.message == message
        else:
            assert "instance" not in record.fields
    assert with_instance == 45


PREFIX = f"2024-05-02 10:01:02.345 812 ERROR nova.compute.manager [instance: {INSTANCE}] "
MODERN = [
    f"2024-05-02 10:01:02.311 812 INFO nova.compute.claims [None {REQUEST} {USER}] "
    f"[instance: {INSTANCE}] Claim successful on node devstack",
    f"2024-05-02 10:01:02.345 812 ERROR nova.compute.manager [None {REQUEST} {USER}] "
    f"[instance: {INSTANCE}] Instance failed to spawn: ValueError: boom",
    PREFIX + "Traceback (most recent call last):",
    PREFIX + '  File "/opt/stack/nova/nova/compute/manager.py", line 2743, in _build_resources',
    PREFIX + "    yield resources",
    PREFIX + '  File "/opt/stack/nova/nova/virt/libvirt/driver.py", line 4411, in spawn',
    PREFIX + '    raise ValueError("boom")',
    PREFIX + "ValueError: boom",
    PREFIX,
    f"2024-05-02 10:01:02.346 812 WARNING nova.compute.manager [None {REQUEST} {USER}] "
    f"[instance: {INSTANCE}] Aborting claim",
]


def test_exception_prefix_lines_are_continuations() -> None:
    context = ParseContext(reference_time=CONTEXT.reference_time)
    records = [oslo.parse_line(Line(n, t), context) for n, t in enumerate(MODERN, 1)]
    assert [r.continuation for r in records] == [False, False] + [True] * 7 + [False]
    for text, record in zip(MODERN[2:9], records[2:9], strict=True):
        assert record.message == text.removeprefix(PREFIX)
        assert record.timestamp == "2024-05-02T10:01:02.345Z"
        assert record.fields == {
            "loglevel": "ERROR",
            "module": "nova.compute.manager",
            "pid": "812",
            "instance": INSTANCE,
        }
    assert records[1].fields["request_id"] == records[9].fields["request_id"] == REQUEST
    assert records[1].message == "Instance failed to spawn: ValueError: boom"


NO_INSTANCE = "2024-05-02 10:05:00.100 900 ERROR oslo_messaging.rpc.server "
SAME_MOMENT = [
    NO_INSTANCE + f"[{REQUEST} - - - - - -] Exception during message handling: KeyError: 'h'",
    NO_INSTANCE + "Traceback (most recent call last):",
    NO_INSTANCE + '  File "/usr/lib/python3/dist-packages/oslo_messaging/rpc/server.py", line 165',
    NO_INSTANCE + "    res = self.dispatcher.dispatch(message)",
    NO_INSTANCE + "KeyError: 'h'",
    NO_INSTANCE + "",
    NO_INSTANCE + "During handling of the above exception, another exception occurred:",
    NO_INSTANCE + "",
    NO_INSTANCE + "Traceback (most recent call last):",
    NO_INSTANCE + "['a list', 'printed by the exception']",  # a "[" that opens no context
    NO_INSTANCE.rstrip(),  # the last, bare prefix, its trailing space stripped by a tool
    # The same moment, module and level: log lines, told apart by their context.
    NO_INSTANCE + "[-] Giving up",
    NO_INSTANCE + f"[None {REQUEST} {USER}] Giving up",
    NO_INSTANCE + f"[instance: {INSTANCE}] Other instance",
]


def test_exception_prefix_without_instance_and_log_lines_of_the_same_moment() -> None:
    context = ParseContext(reference_time=CONTEXT.reference_time)
    records = [oslo.parse_line(Line(n, t), context) for n, t in enumerate(SAME_MOMENT, 1)]
    assert [r.continuation for r in records] == [False] + [True] * 10 + [False] * 3
    assert [r.message for r in records[1:11]] == [
        t.removeprefix(NO_INSTANCE) for t in SAME_MOMENT[1:10]
    ] + [""]
    assert records[11].message == records[12].message == "Giving up"
    assert records[12].fields["request_id"] == REQUEST
    assert records[13].fields["instance"] == INSTANCE


def test_lines_repeating_an_exception_prefix_parse_as_they_would_alone() -> None:
    # Timestamp, message and fields do not depend on the lines before; whether a line
    # continues a traceback does, for the context-less lines after a "Traceback" one.
    shared = ParseContext(reference_time=CONTEXT.reference_time)
    for number, text in enumerate([*MODERN, *SAME_MOMENT, *MODERN], 1):
        record = oslo.parse_line(Line(number, text), shared)
        alone = oslo.parse_line(Line(number, text), ParseContext(CONTEXT.reference_time))
        assert (record.timestamp, record.message, record.fields) == (
            alone.timestamp,
            alone.message,
            alone.fields,
        )
        if alone.continuation:
            assert record.continuation


def test_trace_lines_with_the_instance_of_the_old_prefix() -> None:
    # logging_exception_prefix "<ts> <pid> TRACE <module> <instance>" before oslo.log 1.2.
    head = "2014-11-25 00:49:21.685 3321 TRACE nova.compute.manager "
    lines = [
        head + f"[instance: {INSTANCE}] Traceback (most recent call last):",
        head + f'[instance: {INSTANCE}]   File "/opt/stack/new/nova/nova/compute/manager.py"',
        head + "[-] traceback text after a prefix without instance",
    ]
    context = ParseContext(reference_time=CONTEXT.reference_time)
    records = [oslo.parse_line(Line(n, t), context) for n, t in enumerate(lines, 1)]
    assert [r.message for r in records] == [
        "Traceback (most recent call last):",
        '  File "/opt/stack/new/nova/nova/compute/manager.py"',
        "[-] traceback text after a prefix without instance",
    ]
    assert all(r.continuation for r in records)
    base = {"loglevel": "TRACE", "module": "nova.compute.manager", "pid": "3321"}
    assert [r.fields for r in records] == [{**base, "instance": INSTANCE}] * 2 + [base]


# (timestamp as written, as stored), by hand.
STAMPS = [
    ("2013-09-27 18:23:42.923", "2013-09-27T18:23:42.923Z"),
    ("2013-09-27 18:23:42,923", "2013-09-27T18:23:42.923Z"),
    ("2013-09-27T18:23:42.923", "2013-09-27T18:23:42.923Z"),
    ("2013-09-27 18:23:42.923+0200", "2013-09-27T16:23:42.923Z"),
    ("2013-09-27T18:23:42.923+00:00", "2013-09-27T18:23:42.923Z"),
    ("2013-09-27T23:23:42.923-01:00", "2013-09-28T00:23:42.923Z"),
    ("2013-09-27 18:23:42", "2013-09-27T18:23:42Z"),
]


def test_timestamp_shapes() -> None:
    for written, stored in STAMPS:
        text = f"{written} 2820 ERROR neutron.api.v2.resource [-] delete failed"
        record = oslo.parse_line(Line(1, text), CONTEXT)
        assert record.timestamp == stored, written
        assert record.fields == {
            "loglevel": "ERROR",
            "module": "neutron.api.v2.resource",
            "pid": "2820",
        }
        assert record.message == "delete failed"
        assert oslo.sniff(text)


def test_an_impossible_date_is_no_timestamp() -> None:
    for text in (
        "2013-13-45 25:61:99.923 2820 ERROR neutron.api.v2.resource [-] delete failed",
        "2013-02-30 18:23:42.923 2820 ERROR neutron.api.v2.resource [-] delete failed",
        "2013-09-27 24:00:00.000 2820 ERROR neutron.api.v2.resource [-] delete failed",
        "2013-13-45 25:61:99.923 garbled",
    ):
        record = oslo.parse_line(Line(1, text), CONTEXT)
        assert record.timestamp is None, text
        assert record.message == text
        assert record.fields == {}


def test_adversarial_heads_keep_their_text() -> None:
    # Lines that once took seconds to match (an unclosed context of repeated "req-"):
    # read in one pass now (tools/bench measures it; no timing here), the text kept.
    head = "2013-09-27 18:23:42.923 2820 INFO mod "
    for rest in ("[" + "req-" * 16384, "[" + "req- " * 13000, "[None req-1 " + "x " * 30000):
        record = oslo.parse_line(Line(1, head + rest), CONTEXT)
        assert record.fields == {"loglevel": "INFO", "module": "mod", "pid": "2820"}
        assert record.message == rest


def test_a_module_longer_than_any_is_no_head() -> None:
    # Read up to 255 characters: what follows the level is then no module, and the line
    # keeps its timestamp and text like a garbled one.
    text = "2013-09-27 18:23:42.923 2820 INFO " + "a" * 300 + " [-] x"
    record = oslo.parse_line(Line(1, text), CONTEXT)
    assert record.timestamp == "2013-09-27T18:23:42.923Z"
    assert record.fields == {}
    assert record.message == text[len("2013-09-27 18:23:42.923 ") :]
    longest = "2013-09-27 18:23:42.923 2820 INFO " + "a" * 255 + " [-] x"
    assert oslo.parse_line(Line(1, longest), CONTEXT).fields["module"] == "a" * 255
