"""The query side every sink shares (worker/sinks/base.py Searcher: counts, builds) and
wait_for_build, on SQLite, Elasticsearch and OpenSearch with the same expectations."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.engines import build_index_for, index_prefix
from worker.config import SinkConfig
from worker.documents import Document
from worker.errors import QueryError
from worker.fields import catalogue_of
from worker.sinks import engine as engine_module
from worker.sinks import open_sink
from worker.sinks.base import Sink, summary_window, wait_for_build

# message, loglevel, tags, build_name, line_number, build_hostids (None: absent).
ROWS: tuple[tuple[str, str | None, list[str], str, int, list[str] | None], ...] = (
    ("Timeout waiting for port", "ERROR", ["console", "screen"], "tempest-full", 10, ["h1", "h2"]),
    ("Timeout connecting", "ERROR", ["console"], "tempest-full", 11, ["h1"]),
    ("all good", "INFO", ["console"], "tempest-full", 12, None),
    ("Timeout again", "ERROR", ["screen"], "grenade", 5, None),
    ("Timeout", "WARNING", ["screen"], "grenade", 6, None),
    ("Timeout", "CRITICAL", [], "nova-next", 7, None),
    ("something", None, [], "grenade", 8, None),
)


def documents(prefix: str) -> list[Document]:
    made = []
    for number, (message, level, tags, job, line, hosts) in enumerate(ROWS):
        fields: dict[str, Any] = {
            "@timestamp": f"2026-11-20T10:00:0{number}.000Z",
            "message": message,
            "tags": tags,
            "build_name": job,
            "line_number": line,
        }
        if level is not None:
            fields["loglevel"] = level
        if hosts is not None:
            fields["build_hostids"] = hosts
        made.append(Document(f"{prefix}2026.11.20", f"doc-{number}", fields))
    return made


def test_search_newest_or_oldest_first(sink: Sink) -> None:
    # Timeout lines: rows 1, 2, 4, 5, 6 (times in row order).
    newest = sink.search("message:Timeout", size=2)
    oldest = sink.search("message:Timeout", size=2, oldest_first=True)
    assert (newest.total, oldest.total) == (5, 5)
    assert [hit["line_number"] for hit in newest.hits] == [7, 6]
    assert [hit["line_number"] for hit in oldest.hits] == [10, 11]


def test_file_outcomes_of_a_build_in_filename_order(sink: Sink) -> None:
    assert [o["filename"] for o in sink.file_outcomes("b-first")] == ["a", "x"]
    assert sink.file_outcomes("no-such-build") == []


def summary(build_uuid: str, timestamp: str) -> dict[str, Any]:
    return {"type": "build", "build_uuid": build_uuid, "@timestamp": timestamp, "files": []}


SUMMARIES = (
    summary("a-before", "2026-11-18T23:59:59.999000Z"),
    summary("b-first", "2026-11-19T00:00:00.000000Z"),
    summary("e-tie", "2026-11-19T12:00:00.000000Z"),
    summary("c-tie", "2026-11-19T12:00:00.000000Z"),
    summary("f-late", "2026-11-19T23:00:00.000000Z"),
    summary("d-until", "2026-11-20T00:00:00.000000Z"),
)


# One sink of each kind for the module, its documents and summaries written once.
@pytest.fixture(scope="module", params=["sqlite", "elasticsearch", "opensearch"])
def sink(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sink]:
    if request.param == "sqlite":
        config = SinkConfig(url=f"sqlite:{tmp_path_factory.mktemp('base') / 'logs.db'}")
    else:
        base = request.getfixturevalue(f"{request.param}_url")
        prefix = index_prefix("sinktest")
        config = SinkConfig(
            url=f"{request.param}+{base}", index_prefix=prefix, build_index=build_index_for(prefix)
        )
    opened = open_sink(config.url, config)
    opened.prepare()
    result = opened.write(documents(config.index_prefix))
    assert (result.indexed, result.failed) == (len(ROWS), 0)
    for built in SUMMARIES:
        opened.put_build(built)
    # A file outcome beside the summaries (the engines' build index holds both).
    for filename in ("x", "a"):
        opened.record_file(
            {"type": "file", "build_uuid": "b-first", "filename": filename, "status": "ok"}
        )
    opened.refresh()
    yield opened
    opened.close()


def test_counts_per_keyword_value_most_frequent_first(sink: Sink) -> None:
    # Timeout lines: rows 1, 2, 4 ERROR; 5 WARNING; 6 CRITICAL. The ties in value order.
    counts = sink.counts("message:Timeout", "loglevel")
    assert list(counts.items()) == [("ERROR", 3), ("CRITICAL", 1), ("WARNING", 1)]


def test_counts_each_tag_of_a_document(sink: Sink) -> None:
    # screen: rows 1, 4, 5; console: rows 1, 2 (row 6 has no tag).
    assert list(sink.counts("message:Timeout", "tags").items()) == [
        ("screen", 3),
        ("console", 2),
    ]


def test_counts_size_keeps_the_most_frequent(sink: Sink) -> None:
    # grenade rows 4, 5, 7 and tempest-full rows 1, 2, 3 tie; nova-next (row 6) is cut.
    counts = sink.counts("*", "build_name", size=2)
    assert list(counts.items()) == [("grenade", 3), ("tempest-full", 3)]


def test_counts_numbers_in_numeric_order_and_as_text(sink: Sink) -> None:
    counts = sink.counts("message:Timeout", "line_number")
    assert list(counts.items()) == [("5", 1), ("6", 1), ("7", 1), ("10", 1), ("11", 1)]


def test_counts_of_a_list_field_and_of_a_missing_one(sink: Sink) -> None:
    assert list(sink.counts("*", "build_hostids").items()) == [("h1", 2), ("h2", 1)]
    assert sink.counts("*", "no_such_field") == {}
    assert sink.counts("message:nothingmatches", "loglevel") == {}


def test_counts_refuses_a_size_below_one(sink: Sink) -> None:
    with pytest.raises(QueryError, match="size must be at least 1"):
        sink.counts("*", "loglevel", size=0)


def test_builds_in_a_window_oldest_first_until_excluded(
    sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of two on the engines, so that search_after has to carry on three times.
    monkeypatch.setattr(engine_module, "BUILDS_PAGE", 2)
    found = sink.builds("2026-11-19", "2026-11-20")
    assert [b["build_uuid"] for b in found] == ["b-first", "c-tie", "e-tie", "f-late"]
    assert found[0] == SUMMARIES[1]
    # Offsets are read: 01:00+01:00 is midnight UTC.
    shifted = sink.builds("2026-11-19T01:00:00+01:00", "2026-11-19T12:00:00Z")
    assert [b["build_uuid"] for b in shifted] == ["b-first"]
    assert sink.builds("2026-11-21", "2026-11-22") == []


def test_builds_refuses_a_time_that_is_not_iso(sink: Sink) -> None:
    with pytest.raises(QueryError, match="since '10d' is not an ISO 8601 time"):
        sink.builds("10d", "2026-11-20")


def test_summary_window_is_in_the_summaries_own_format() -> None:
    assert summary_window("2026-11-19", "2026-11-19T10:30:00.5+02:00") == (
        "2026-11-19T00:00:00.000000Z",
        "2026-11-19T08:30:00.500000Z",
    )


def test_wait_for_build_reads_until_the_summary_is_there(sink: Sink) -> None:
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 3:
            sink.put_build(late)

    # Outside every window the builds tests read.
    late = summary(f"late-{uuid.uuid4().hex}", "2026-01-01T00:00:00.000000Z")
    assert wait_for_build(sink, late["build_uuid"], 60, sleep=sleep) == late
    # Doubling pauses from 0.05 s: read, pause, read, pause, read, pause, read (found).
    assert pauses == [0.05, 0.1, 0.2]


def test_wait_for_build_gives_up_after_its_time(sink: Sink) -> None:
    pauses: list[float] = []
    assert wait_for_build(sink, "never", 0, sleep=pauses.append) is None
    assert pauses == []  # 0: one read, no wait
    assert wait_for_build(sink, "never", 0.3) is None


def test_exact_name_is_the_raw_sub_field_where_the_mapping_has_one() -> None:
    template = {
        "mappings": {
            "dynamic_templates": [
                {
                    "strings": {
                        "match_mapping_type": "string",
                        "mapping": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                    }
                }
            ],
            "properties": {
                "message": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                "loglevel": {"type": "keyword"},
                "project": {"type": "text", "fields": {"words": {"type": "text"}}},
                "program": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                "syslog_program": {"type": "alias", "path": "program"},
            },
        }
    }
    catalogue = catalogue_of(template)
    assert catalogue.exact_name("message") == "message.raw"
    assert catalogue.exact_name("loglevel") == "loglevel"
    assert catalogue.exact_name("project") == "project"
    assert catalogue.exact_name("syslog_program") == "program.raw"
    # A string field the template does not name is mapped by the dynamic template.
    assert catalogue.exact_name("absent") == "absent.raw"
