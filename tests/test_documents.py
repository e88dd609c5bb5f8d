"""The document builder: ids, index names, build fields, tags, filename.

Events are built by hand from real corpus lines, split here with a regular expression so
these tests do not depend on the format parsers; expected values come from those lines
and from the reference (historical-index.md), not from the builder.
"""

from __future__ import annotations

import gzip
import re
from datetime import UTC, datetime
from functools import cache

import pytest

from tests.paths import CORPUS
from worker.documents import Document, build_documents, document_id, file_identity, index_name
from worker.events import Event
from worker.job import Job

REFERENCE = CORPUS.parent / "reference" / "historical-index.md"
SCREEN_C_API = CORPUS / "os-loganalyze" / "screen-c-api.txt"
JOB_OUTPUT = CORPUS / "zuul-jobs-fixture" / "job-output.txt"
SCREEN_Q_SVC = CORPUS / "os-loganalyze" / "screen-q-svc.txt.gz"

_OSLO = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) (\d+) ([A-Z]+) (\S+) (.*)")
_CONSOLE = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{6}) \| ?(.*)")


@cache
def reference_examples() -> dict[str, str]:
    """field -> example column of the reference's "Fields on every document" table."""
    examples = {}
    for line in REFERENCE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([^`]+)`", cells[0]):
                examples[name] = cells[2]
    return examples


def reference_example(field: str) -> str:
    example = reference_examples()[field]
    match = re.fullmatch(r"`(.*)`", example)
    assert match, f"no example for {field}: {example!r}"
    return match[1]


REF_UUID = reference_example("build_uuid")  # 4f440b7e8c4b493c81ddf709d8a54076
REF_SHORT_UUID = reference_example("build_short_uuid")

SCREEN_JOB = Job(
    source_url="https://logs.example.org/4f/4f440b7/logs/screen-c-api.txt.gz",
    fields={
        "build_uuid": REF_UUID,
        "build_name": reference_example("build_name"),
        "build_status": "FAILURE",
        "build_queue": "gate",
        "build_change": "135639",
        "build_patchset": "3",
        "build_branch": "master",
        "project": "openstack/cinder",
        "voting": "1",
        "node_provider": "rax-ord",
        "filename": "logs/screen-c-api.txt.gz",
    },
    tags=("screen", "oslofmt"),
)


def oslo_event(number: int, line: str) -> Event:
    match = _OSLO.fullmatch(line)
    assert match, line
    date, time, pid, level, module, text = match.groups()
    fields = {"pid": pid, "loglevel": level, "module": module}
    return Event(number, f"{date}T{time}Z", text, fields)


@cache
def screen_lines() -> tuple[str, ...]:
    return tuple(SCREEN_C_API.read_text().splitlines())


@cache
def screen_events() -> tuple[Event, ...]:
    """One event per timestamped line of screen-c-api.txt (the xtrace head is skipped)."""
    return tuple(
        oslo_event(number, line)
        for number, line in enumerate(screen_lines(), start=1)
        if _OSLO.fullmatch(line)
    )


def fresh(events: tuple[Event, ...]) -> list[Event]:
    """Copies, so that no test can change the cached events."""
    return [Event(e.line_number, e.timestamp, e.message, dict(e.fields)) for e in events]


def documents(job: Job, events: list[Event], prefix: str = "logstash-") -> list[Document]:
    return list(build_documents(events, job, prefix))


def first_event() -> Event:
    return fresh(screen_events()[:1])[0]


def test_first_screen_event_is_built_from_the_file() -> None:
    event = first_event()
    assert event.line_number == 5  # lines 1-4 are "+ " xtrace lines
    assert screen_lines()[4].startswith("2013-09-27 18:22:35.392 6602 AUDIT")
    assert event.fields["loglevel"] == "AUDIT"


def test_index_name_uses_the_event_date_not_today() -> None:
    (document,) = documents(SCREEN_JOB, [first_event()])
    line_date = screen_lines()[4][:10]  # "2013-09-27"
    assert document.index == "logstash-" + line_date.replace("-", ".")
    assert document.index == "logstash-2013.09.27"
    today = datetime.now(UTC).strftime("logstash-%Y.%m.%d")
    assert document.index != today


def test_each_document_lands_in_its_own_lines_date() -> None:
    console_lines = JOB_OUTPUT.read_text().splitlines()
    console_match = _CONSOLE.fullmatch(console_lines[0])
    assert console_match
    date, time, text = console_match.groups()
    events = [first_event(), Event(1, f"{date}T{time}Z", text)]
    docs = documents(SCREEN_JOB, events, prefix="ci-")
    assert [d.index for d in docs] == ["ci-2013.09.27", "ci-2018.08.01"]


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2013-09-27T18:22:35.392Z", "logstash-2013.09.27"),
        ("2014-11-25T00:49:21.685+00:00", "logstash-2014.11.25"),  # the reference's example
        ("2018-12-31T23:59:59.999999Z", "logstash-2018.12.31"),
    ],
)
def test_index_name(timestamp: str, expected: str) -> None:
    assert index_name("logstash-", timestamp) == expected


def test_document_ids_are_deterministic_and_unique_per_line() -> None:
    first = documents(SCREEN_JOB, fresh(screen_events()))
    second = documents(SCREEN_JOB, fresh(screen_events()))
    assert [d.id for d in first] == [d.id for d in second]
    timestamped = sum(1 for line in screen_lines() if _OSLO.fullmatch(line))
    assert len(first) == timestamped
    assert len({d.id for d in first}) == timestamped


def test_document_id_depends_on_build_filename_and_line() -> None:
    base = document_id(REF_UUID, "logs/screen-c-api.txt.gz", 5)
    assert base == document_id(REF_UUID, "logs/screen-c-api.txt.gz", 5)
    others = {
        document_id("0" * 32, "logs/screen-c-api.txt.gz", 5),
        document_id(REF_UUID, "logs/screen-n-api.txt.gz", 5),
        document_id(REF_UUID, "logs/screen-c-api.txt.gz", 6),
        document_id(REF_UUID, "logs/screen-c-api.txt.gz", 50),
    }
    assert base not in others
    assert len(others) == 4
    # The separator keeps ("ab", "c") and ("a", "bc") apart.
    assert document_id("ab", "c", 1) != document_id("a", "bc", 1)


def test_ids_differ_across_builds_and_files_through_the_builder() -> None:
    event = first_event()
    other_build = Job(
        SCREEN_JOB.source_url, {**SCREEN_JOB.fields, "build_uuid": "f" * 32}, SCREEN_JOB.tags
    )
    other_file = Job(
        SCREEN_JOB.source_url,
        {**SCREEN_JOB.fields, "filename": "logs/screen-c-vol.txt.gz"},
        SCREEN_JOB.tags,
    )
    ids = {documents(job, [event])[0].id for job in (SCREEN_JOB, other_build, other_file)}
    assert len(ids) == 3


def test_without_build_uuid_the_url_identifies_the_file() -> None:
    event = first_event()
    a = Job("https://logs.example.org/a/screen-c-api.txt", {}, ())
    b = Job("https://logs.example.org/b/screen-c-api.txt", {}, ())
    (doc_a,) = documents(a, [event])
    (doc_a_again,) = documents(a, [event])
    (doc_b,) = documents(b, [event])
    assert doc_a.id == doc_a_again.id
    assert doc_a.id != doc_b.id
    assert "build_short_uuid" not in doc_a.source
    assert "build_uuid" not in doc_a.source


def test_build_short_uuid_is_derived_when_missing() -> None:
    assert "build_short_uuid" not in SCREEN_JOB.fields
    (document,) = documents(SCREEN_JOB, [first_event()])
    assert document.source["build_short_uuid"] == REF_SHORT_UUID == "4f440b7"


@pytest.mark.parametrize("given", ["4f440b7", "given-1"])
def test_build_short_uuid_is_kept_when_given(given: str) -> None:
    job = Job(SCREEN_JOB.source_url, {**SCREEN_JOB.fields, "build_short_uuid": given}, ())
    (document,) = documents(job, [first_event()])
    assert document.source["build_short_uuid"] == given


def test_build_fields_are_carried_unchanged() -> None:
    docs = documents(SCREEN_JOB, fresh(screen_events()[:50]))
    for document in docs:
        for key, value in SCREEN_JOB.fields.items():
            assert document.source[key] == value, key
    assert SCREEN_JOB.fields["voting"] == "1"  # not turned into an int or a bool
    assert "build_short_uuid" not in SCREEN_JOB.fields  # the job is not modified


def test_event_fields_message_timestamp_and_line_number() -> None:
    line = screen_lines()[4]
    (document,) = documents(SCREEN_JOB, [first_event()])
    assert document.source["@timestamp"] == "2013-09-27T18:22:35.392Z"
    assert document.source["message"] == "[-] Initializing extension manager."
    assert line.endswith(document.source["message"])
    assert document.source["loglevel"] == "AUDIT"
    assert document.source["module"] == "cinder.api.extensions"
    assert document.source["pid"] == "6602"
    assert document.source["line_number"] == 5


def test_tags_get_the_basename_and_the_basename_without_gz() -> None:
    # The reference's "tags" row: file basename + configured tags (+ basename without .gz).
    example = reference_example("tags")
    assert example == '["console.html", "console"]'
    job = Job(
        "https://logs.example.org/4f/4f440b7/console.html.gz",
        {"build_uuid": REF_UUID},
        ("console",),
    )
    (document,) = documents(job, [first_event()])
    tags = document.source["tags"]
    assert set(tags) == {"console.html.gz", "console.html", "console"}
    assert len(tags) == len(set(tags))
    assert tags[0] == "console"  # configured tags first, in the job's order


def test_tags_are_not_duplicated_when_the_job_already_has_them() -> None:
    job = Job(
        "https://logs.example.org/x/screen-c-api.txt",
        {},
        ("screen-c-api.txt", "screen", "oslofmt"),
    )
    (document,) = documents(job, [first_event()])
    assert document.source["tags"] == ["screen-c-api.txt", "screen", "oslofmt"]


def test_tags_use_the_basename_of_a_relative_filename() -> None:
    (document,) = documents(SCREEN_JOB, [first_event()])
    assert document.source["tags"] == [
        "screen",
        "oslofmt",
        "screen-c-api.txt.gz",
        "screen-c-api.txt",
    ]


def test_filename_comes_from_the_fields() -> None:
    (document,) = documents(SCREEN_JOB, [first_event()])
    assert document.source["filename"] == "logs/screen-c-api.txt.gz"


@pytest.mark.parametrize(
    ("url", "filename"),
    [
        ("https://logs.example.org/4f/4f440b7/logs/screen-c-api.txt", "screen-c-api.txt"),
        ("https://logs.example.org/4f/job-output.txt.gz?download=1", "job-output.txt.gz"),
        ("file:///srv/logs/build/console.html.gz", "console.html.gz"),
    ],
)
def test_filename_defaults_to_the_url_basename(url: str, filename: str) -> None:
    (document,) = documents(Job(url, {"build_uuid": REF_UUID}, ()), [first_event()])
    assert document.source["filename"] == filename
    _, _, identity_filename, _ = file_identity(Job(url, {}, ()))
    assert identity_filename == filename


def test_log_url_defaults_to_the_source_url_and_is_kept_when_given() -> None:
    (document,) = documents(SCREEN_JOB, [first_event()])
    assert document.source["log_url"] == SCREEN_JOB.source_url
    given = "https://logs.example.org/browse/4f440b7/logs/screen-c-api.txt.gz"
    job = Job(SCREEN_JOB.source_url, {**SCREEN_JOB.fields, "log_url": given}, ())
    (document,) = documents(job, [first_event()])
    assert document.source["log_url"] == given


def test_line_count_and_truncated_only_when_relevant() -> None:
    text = gzip.decompress(SCREEN_Q_SVC.read_bytes()).decode().splitlines()
    start = next(i for i, line in enumerate(text) if "TRACE" in line and "Traceback" in line)
    trace = [_OSLO.fullmatch(line) for line in text[start : start + 5]]
    assert all(m and m[4] == "TRACE" for m in trace)
    grouped = oslo_event(start + 1, text[start])
    grouped.message = "\n".join(m[6] for m in trace if m)
    grouped.line_count = 5
    truncated = first_event()
    truncated.truncated = True
    plain = first_event()
    docs = documents(SCREEN_JOB, [grouped, truncated, plain])
    assert docs[0].source["line_count"] == 5
    assert docs[0].source["message"].count("\n") == 4
    assert docs[0].source["message"].startswith("Traceback (most recent call last):")
    assert "truncated" not in docs[0].source
    assert docs[1].source["truncated"] is True
    assert "line_count" not in docs[1].source
    assert "line_count" not in docs[2].source
    assert "truncated" not in docs[2].source


def test_the_run_and_file_key_are_the_builders_over_parsed_and_job_fields() -> None:
    # A file of no build: its build_uuid and filename do not name it, its key does.
    job = Job(
        "https://logs.example.org/a/screen-c-api.txt",
        {"generation": "from the job", "file_key": "from the job"},
        (),
    )
    event = first_event()
    clashing = Event(6, event.timestamp, "x", {"generation": "parsed", "file_key": "parsed"})
    documents_of_run = list(build_documents([event, clashing], job, "logstash-", generation=7))
    key = documents_of_run[0].id.removesuffix("-5")
    assert len(key) == 24
    for document in documents_of_run:
        assert document.source["generation"] == 7
        assert document.source["file_key"] == key
        assert document.id.startswith(f"{key}-")


def test_a_build_file_carries_its_run_but_no_file_key() -> None:
    (document,) = build_documents([first_event()], SCREEN_JOB, "logstash-", generation=7)
    assert document.source["generation"] == 7
    assert "file_key" not in document.source
    # Built outside a run, the builder adds no generation.
    (outside,) = build_documents([first_event()], SCREEN_JOB, "logstash-")
    assert "generation" not in outside.source
