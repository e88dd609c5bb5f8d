"""The SQLite sink: storage, idempotent re-runs, deletes, concurrency.

Documents come from real corpus lines through the real document builder; the lines are
split here with a couple of string operations so these tests do not depend on the format
parsers.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from tests.paths import CORPUS, DATA
from worker.config import SinkConfig, WorkerConfig
from worker.decode import DecodeStats
from worker.documents import Document, build_documents
from worker.errors import ConfigError, SinkError
from worker.events import Event, EventStats
from worker.job import Job
from worker.pipeline import parse_documents
from worker.sinks.base import Sink
from worker.sinks.sqlite import SqliteSink

JOB_OUTPUT = CORPUS / "zuul-jobs-fixture" / "job-output.txt"
SCREEN_C_API = CORPUS / "os-loganalyze" / "screen-c-api.txt"

CONSOLE_JOB = Job(
    source_url="https://logs.example.org/f6/f677f03/job-output.txt",
    fields={
        "build_uuid": "f677f0312811438a8db3fa38953649c7",
        "build_name": "trigger-readthedocs-webhook",
        "build_status": "SUCCESS",
        "build_queue": "post",
        "build_branch": "master",
        "project": "openstack/gerrit-dash-creator",
        "voting": 1,
        "zuul_tenant": "openstack",  # not a well-known field: only in the stored source
    },
    tags=("console", "console.html"),
)
SCREEN_JOB = Job(
    source_url="https://logs.example.org/4f/4f440b7/logs/screen-c-api.txt",
    fields={
        "build_uuid": "4f440b7e8c4b493c81ddf709d8a54076",
        "build_name": "check-tempest-dsvm-full",
        "build_status": "FAILURE",
        "build_queue": "gate",
        "build_change": "135639",
        "build_patchset": "3",
        "build_branch": "master",
        "project": "openstack/cinder",
        "voting": "0",
        "filename": "logs/screen-c-api.txt",
    },
    tags=("screen", "oslofmt"),
)

_CONSOLE_LINE = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{6}) \| (.*)")
_OSLO_LINE = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) (\d+) ([A-Z]+) (\S+) (.*)")


def console_events(path: Path) -> list[Event]:
    """One event per line; a line without a timestamp inherits the previous one."""
    events = []
    timestamp = ""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = _CONSOLE_LINE.fullmatch(line)
        if match is None:
            events.append(Event(number, timestamp, line))
            continue
        date, time, text = match.groups()
        timestamp = f"{date}T{time}+00:00"
        events.append(Event(number, timestamp, text))
    return events


def oslo_events(path: Path) -> list[Event]:
    """Like console_events; the lines before the first timestamp take the first one."""
    lines = path.read_text().splitlines()
    first = next(m for m in map(_OSLO_LINE.fullmatch, lines) if m)
    timestamp = f"{first[1]}T{first[2]}000+00:00"
    events = []
    for number, line in enumerate(lines, start=1):
        match = _OSLO_LINE.fullmatch(line)
        if match is None:
            events.append(Event(number, timestamp, line))
            continue
        date, time, pid, level, module, text = match.groups()
        timestamp = f"{date}T{time}000+00:00"
        fields = {"pid": pid, "loglevel": level, "module": module}
        events.append(Event(number, timestamp, text, fields))
    return events


@cache
def console_documents() -> tuple[Document, ...]:
    return tuple(build_documents(console_events(JOB_OUTPUT), CONSOLE_JOB, "logstash-"))


@cache
def screen_documents() -> tuple[Document, ...]:
    return tuple(build_documents(oslo_events(SCREEN_C_API), SCREEN_JOB, "logstash-"))


def corpus_documents() -> list[Document]:
    return [*console_documents(), *screen_documents()]


# Six oslo.log lines whose request context the oslo parser reads (the one test file
# here that goes through the parsers: the fields come from them).
CONTEXT_LOG = DATA / "oslo-context.txt"
CONTEXT_JOB = Job(
    source_url="https://logs.example.org/3f/3f2a8c1/logs/screen-n-cpu.txt",
    fields={"build_uuid": "3f2a8c1e5b7d4e2f9a617c0d2e4b9f10", "filename": "logs/screen-n-cpu.txt"},
    tags=("oslofmt",),
)
# (query, documents of CONTEXT_LOG it finds), counted by hand in the file: the instance
# on lines 1, 2 and 5 (line 6 has it in its text only), the global request on 2 and 3.
CONTEXT_HITS = [
    ('instance:"3f2a8c1e-5b7d-4e2f-9a61-7c0d2e4b9f10"', 3),
    ('instance:"7e9b0d2c-1a3f-4c5e-8d7b-6f1e2a3b4c5d"', 1),
    ('global_request_id:"req-6b1e2f3a-7c8d-4c5d-8e7f-0a1b2c3d4e02"', 2),
    ('request_id:"req-9d5c0a7e-1f2b-4a2b-9c3d-5e6f7a8b9c01"', 2),
    ('request_id:"req-0c4d5e6f-a7b8-4f60-a1b2-c3d4e5f6a703"', 3),
    ('instance.raw:"3f2a8c1e"', 0),  # the exact value: the whole value or nothing
]


def context_queries() -> list[tuple[str, int]]:
    """CONTEXT_HITS and the engine tests' table of analysed matches on the same lines:
    every sink gives the historical index's answers."""
    from tests.sinks.test_engine import CONTEXT_TEXT_HITS

    return CONTEXT_HITS + CONTEXT_TEXT_HITS


def context_documents(index_prefix: str) -> list[Document]:
    """CONTEXT_LOG through the pipeline's parse stages, as run_job makes them."""
    config = WorkerConfig(sink=SinkConfig(index_prefix=index_prefix))
    _, documents = parse_documents(
        [CONTEXT_LOG.read_bytes()],
        CONTEXT_JOB,
        config,
        last_modified=None,
        decode_stats=DecodeStats(),
        event_stats=EventStats(),
    )
    return list(documents)


def fts_state(path: Path) -> tuple[int, int]:
    """(rows, FTS entries), after checking the FTS index against the table it indexes."""
    with sqlite3.connect(path) as connection:
        # Raises "database disk image is malformed" if entries and rows disagree.
        connection.execute(
            "INSERT INTO documents_fts (documents_fts, rank) VALUES ('integrity-check', 1)"
        )
        rows = connection.execute("SELECT count(*) FROM documents").fetchone()[0]
        entries = connection.execute("SELECT count(*) FROM documents_fts_docsize").fetchone()[0]
    connection.close()
    return rows, entries


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "logs.db"


@pytest.fixture
def sink(db_path: Path) -> Iterator[SqliteSink]:
    sink = SqliteSink(str(db_path), SinkConfig(chunk_documents=500))
    sink.prepare()
    yield sink
    sink.close()


def test_is_a_sink(sink: SqliteSink) -> None:
    implementation: Sink = sink
    assert implementation is sink


def test_write_then_count_equals_number_of_events(sink: SqliteSink, db_path: Path) -> None:
    documents = corpus_documents()
    result = sink.write(documents)
    assert (result.indexed, result.failed, result.errors) == (len(documents), 0, [])
    sink.refresh()
    assert sink.count() == len(console_events(JOB_OUTPUT)) + len(oslo_events(SCREEN_C_API))
    assert sink.count("tags:console") == len(console_documents())
    assert sink.count("tags:screen") == len(screen_documents())
    assert fts_state(db_path) == (len(documents), len(documents))


def test_rewriting_the_same_documents_duplicates_nothing(sink: SqliteSink, db_path: Path) -> None:
    documents = corpus_documents()
    sink.write(documents)
    again = sink.write(documents)
    assert again.indexed == len(documents)
    assert sink.count() == len(documents)
    assert fts_state(db_path) == (len(documents), len(documents))
    result = sink.search('message:"Loading extension"', size=1000)
    ids = [hit["_id"] for hit in result.hits]
    assert result.total == len(ids) == len(set(ids)) > 0


def test_rewrite_with_a_changed_message_reindexes_it(sink: SqliteSink, db_path: Path) -> None:
    original = console_documents()[0]
    changed = Document(
        original.index, original.id, {**original.source, "message": "rebuilt console start"}
    )
    sink.write([original])
    assert sink.count('message:"Job console starting"') == 1
    sink.write([changed])
    assert sink.count('message:"Job console starting"') == 0
    assert sink.count('message:"rebuilt console start"') == 1
    assert fts_state(db_path) == (1, 1)


def test_search_returns_stored_sources_newest_first(sink: SqliteSink) -> None:
    sink.write(corpus_documents())
    result = sink.search("tags:console", size=5)
    assert result.total == len(console_documents())
    stamps = [hit["@timestamp"] for hit in result.hits]
    assert stamps == sorted(stamps, reverse=True)
    by_id = {document.id: document for document in console_documents()}
    newest = max(document.source["@timestamp"] for document in console_documents())
    assert stamps[0] == newest
    for hit in result.hits:
        document = by_id[hit.pop("_id")]
        assert hit.pop("_index") == document.index == "logstash-2018.08.01"
        assert hit == document.source  # extra fields and the tag list come back unchanged
    assert result.hits[0]["zuul_tenant"] == "openstack"


def test_search_size_limits_hits_not_total(sink: SqliteSink) -> None:
    sink.write(corpus_documents())
    empty = sink.search("*", size=0)
    assert (empty.total, empty.hits) == (len(corpus_documents()), [])
    assert len(sink.search("*", size=7).hits) == 7


def test_unstorable_documents_are_counted_not_dropped(sink: SqliteSink) -> None:
    good = list(console_documents()[:30])
    template = good[0]
    not_json = Document(template.index, "not-json", {**template.source, "oops": {1, 2}})
    # orjson accepts an unsigned 64-bit number that SQLite cannot store.
    too_big = Document(template.index, "too-big", {**template.source, "line_number": 2**63})
    no_time = Document(template.index, "no-time", {"message": "x", "tags": []})
    result = sink.write([not_json, *good[:10], too_big, *good[10:], no_time])
    assert (result.indexed, result.failed) == (30, 3)
    assert len(result.errors) == 3
    assert all(any(i in e for e in result.errors) for i in ("not-json", "too-big", "no-time"))
    assert sink.count() == 30


def test_write_streams_in_committed_chunks(db_path: Path) -> None:
    writer = SqliteSink(str(db_path), SinkConfig(chunk_documents=10))
    observer = SqliteSink(str(db_path), SinkConfig())
    writer.prepare()
    seen: list[int] = []

    def documents() -> Iterator[Document]:
        for position, document in enumerate(screen_documents()[:35]):
            if position and position % 10 == 0:
                seen.append(observer.count())
            yield document

    assert writer.write(documents()).indexed == 35
    assert seen == [10, 20, 30]
    assert observer.count() == 35
    writer.close()
    observer.close()


def test_delete_file_removes_rows_and_index_entries(sink: SqliteSink, db_path: Path) -> None:
    sink.write(corpus_documents())
    assert sink.count('message:"Loading extension"') > 0
    removed = sink.delete_file("4f440b7e8c4b493c81ddf709d8a54076", "logs/screen-c-api.txt")
    assert removed == len(screen_documents())
    assert sink.count() == len(console_documents())
    assert sink.count('message:"Loading extension"') == 0
    assert fts_state(db_path) == (len(console_documents()), len(console_documents()))
    assert sink.delete_file("4f440b7e8c4b493c81ddf709d8a54076", "logs/screen-c-api.txt") == 0
    with pytest.raises(SinkError, match="build_uuid"):
        sink.delete_file("", "job-output.txt")


def test_concurrent_writers_end_with_the_right_count(db_path: Path) -> None:
    # Two sink objects stand for two processes: their threads meet SQLite's own locking.
    config = SinkConfig(chunk_documents=40)
    sinks = [SqliteSink(str(db_path), config), SqliteSink(str(db_path), config)]
    documents = corpus_documents()
    parts = [documents[start::4] for start in range(4)]
    results: list[int] = []
    failures: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()
    sinks[0].prepare()

    def write(part: list[Document], sink: SqliteSink) -> None:
        try:
            results.append(sink.write(part).indexed)
        except BaseException as exc:
            failures.append(exc)

    def read() -> None:
        try:
            while not stop.is_set():
                counts.append(sinks[0].count('message:"extension"'))
        except BaseException as exc:
            failures.append(exc)

    writers = [
        threading.Thread(target=write, args=(part, sinks[number % 2]))
        for number, part in enumerate(parts)
    ]
    reader = threading.Thread(target=read)
    for thread in writers:
        thread.start()
    reader.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join()
    assert failures == []
    assert sorted(results) == sorted(len(part) for part in parts)
    assert sinks[1].count() == len(documents)
    assert counts == sorted(counts)  # each read saw a committed state, never a partial one
    assert fts_state(db_path) == (len(documents), len(documents))
    for sink in sinks:
        sink.close()


def test_prepare_is_idempotent_and_write_prepares(db_path: Path) -> None:
    first = SqliteSink(str(db_path), SinkConfig())
    first.write(console_documents())  # no prepare(): the schema is created on first write
    second = SqliteSink(str(db_path), SinkConfig())
    second.prepare()
    second.prepare()
    assert second.count() == len(console_documents())
    first.close()
    second.close()
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


def test_searching_a_file_with_nothing_indexed_is_a_sink_error(db_path: Path) -> None:
    sink = SqliteSink(str(db_path), SinkConfig())
    with pytest.raises(SinkError, match="nothing indexed"):
        sink.count()
    sink.close()


def test_closed_sink_refuses_work(sink: SqliteSink) -> None:
    sink.close()
    with pytest.raises(SinkError, match="closed"):
        sink.count()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:./logs.db", "./logs.db"),
        ("sqlite:relative.db", "relative.db"),
        ("sqlite:///abs/path/logs.db", "/abs/path/logs.db"),
        ("sqlite:/abs/logs.db", "/abs/logs.db"),
    ],
)
def test_from_url(url: str, path: str) -> None:
    assert SqliteSink.from_url(url, SinkConfig()).path == path


@pytest.mark.parametrize("url", ["sqlite:", "sqlite://", "postgres://x/y", "sqlite::memory:"])
def test_from_url_refuses(url: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"sink URL {url!r}: ")):
        SqliteSink.from_url(url, SinkConfig())


def test_a_database_of_schema_2_gets_the_generation_column(db_path: Path) -> None:
    older = SqliteSink(str(db_path), SinkConfig())
    older.write(console_documents())
    older.close()
    # As a worker of schema 2 left it: no generation column.
    with sqlite3.connect(db_path) as connection:
        connection.execute("ALTER TABLE documents DROP COLUMN generation")
        connection.execute("PRAGMA user_version = 2")
    connection.close()
    sink = SqliteSink(str(db_path), SinkConfig())
    sink.prepare()
    assert sink.count() == len(console_documents())
    assert sink.count("generation:5") == 0
    # Schema 5 indexes the standard analyzer's tokens: the older FTS index is made again,
    # so a dotted host name is one token (lines 2 and 25) and not a phrase inside others
    # (line 23's "ze09.openstack.org" is two: a digit before "." does not join a letter).
    assert sink.count('message:"git.openstack.org"') == 2
    assert sink.count('message:"openstack.org"') == 1
    sink.close()
    with sqlite3.connect(db_path) as connection:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(documents)")}
        assert "generation" in columns
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 5
    connection.close()


def test_request_context_fields_are_text_with_exact_raw_values(sink: SqliteSink) -> None:
    assert sink.write(context_documents("logstash-")).indexed == 6
    expected = context_queries()
    assert [(query, sink.count(query)) for query, _ in expected] == expected


def test_a_database_of_schema_3_gets_the_request_context_columns_filled(db_path: Path) -> None:
    older = SqliteSink(str(db_path), SinkConfig())
    older.write(context_documents("logstash-"))
    older.close()
    # As a worker of schema 3 left it: the fields in the stored source only.
    with sqlite3.connect(db_path) as connection:
        connection.execute("ALTER TABLE documents DROP COLUMN instance")
        connection.execute("ALTER TABLE documents DROP COLUMN global_request_id")
        connection.execute("PRAGMA user_version = 3")
    connection.close()
    sink = SqliteSink(str(db_path), SinkConfig())
    sink.prepare()
    expected = context_queries()
    assert [(query, sink.count(query)) for query, _ in expected] == expected
    sink.close()
    with sqlite3.connect(db_path) as connection:
        filled = connection.execute(
            "SELECT count(*) FROM documents WHERE instance IS NOT NULL"
        ).fetchone()[0]
    connection.close()
    assert filled == 4  # lines 1, 2, 3 and 5


def test_an_older_runs_version_of_a_document_is_not_written(sink: SqliteSink) -> None:
    (event,) = console_events(JOB_OUTPUT)[:1]
    (newer,) = build_documents([event], CONSOLE_JOB, "logstash-", generation=2000)
    (older,) = build_documents([event], CONSOLE_JOB, "logstash-", generation=1000)
    assert sink.write([newer]).indexed == 1
    result = sink.write([older])
    assert (result.indexed, result.superseded, result.failed) == (0, 1, 0)
    (hit,) = sink.search("*").hits
    assert hit["generation"] == 2000
