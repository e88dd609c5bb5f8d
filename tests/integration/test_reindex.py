"""Re-indexing a file replaces all of its documents, on every sink; a failed run leaves
none of them searchable (worker/pipeline.py run_job, Sink.replace_file/discard_file)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.engines import build_index_for, index_prefix
from tests.httpserver import LogServer, serve_directory
from tests.integration.conftest import SINK_KINDS, sink_url
from worker.config import FetchConfig, ParseConfig, SinkConfig, WorkerConfig
from worker.decode import DecodeStats
from worker.documents import Document, FileRun, file_run
from worker.errors import FetchError, SinkError
from worker.events import EventStats
from worker.job import FileOptions, Job
from worker.pipeline import parse_documents, run_job
from worker.sinks import open_sink
from worker.sinks.base import Sink, WriteResult

# A hand-written oslo log: an ERROR line whose traceback follows on bare lines, and one
# more line. Each line has a word no other line has.
LINES = [
    "2024-05-01 10:00:00.000 1234 ERROR nova.api [-] kilo failed",  # 1
    "Traceback (most recent call last):",  # 2
    '  File "/srv/x", line 1, in alpha',  # 3
    "    bravo()",  # 4
    '  File "/srv/y", line 9, in charlie',  # 5
    "    raise ValueError(delta)",  # 6
    "ValueError: echo",  # 7
    "2024-05-01 10:00:01.000 1234 INFO nova.api [-] lima done",  # 8
]
WORDS = {
    "kilo": 1,
    "traceback": 2,
    "alpha": 3,
    "bravo": 4,
    "charlie": 5,
    "delta": 6,
    "echo": 7,
    "lima": 8,
}
# The first line of each document, by max_event_lines, worked out by hand from the
# grouping rules (worker/events.py): the traceback joins line 1's event (lines 1-7);
# a cap of 2 lines cuts that event into 1-2, 3-4, 5-6 and 7.
STARTS = {500: [1, 8], 2: [1, 3, 5, 7, 8]}
# A longer file for cutting a body midway: one oslo line per document.
LONG_LINES = [
    f"2024-05-01 {10 + n // 3600}:{n // 60 % 60:02d}:{n % 60:02d}.000 1234 INFO nova.api [-] "
    f"line number {n}"
    for n in range(1, 6001)
]


@pytest.fixture(params=SINK_KINDS)
def sink_config(request: pytest.FixtureRequest, tmp_path: Path) -> SinkConfig:
    url = sink_url(request, tmp_path)
    prefix = index_prefix()
    # Small chunks: a body cut midway has had some chunks written by then.
    config = SinkConfig(
        url=url,
        index_prefix=prefix,
        build_index=build_index_for(prefix),
        chunk_documents=20,
    )
    return config


@dataclass(frozen=True)
class Target:
    sink: Sink
    config: SinkConfig


@pytest.fixture
def target(sink_config: SinkConfig) -> Iterator[Target]:
    opened = open_sink(sink_config.url, sink_config)
    opened.prepare()
    yield Target(opened, sink_config)
    opened.close()


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[LogServer]:
    root = tmp_path / "logs"
    root.mkdir()
    (root / "app.log").write_text("\n".join(LINES) + "\n")
    (root / "long.log").write_text("\n".join(LONG_LINES) + "\n")
    with serve_directory(root) as server:
        yield server


def make_job(server: LogServer, name: str, of_build: bool = True) -> Job:
    """A job for file `name` of a fresh build, or of none (then its URL names it)."""
    build = {"build_uuid": uuid.uuid4().hex} if of_build else {}
    return Job(
        source_url=server.url(name),
        fields={**build, "filename": f"logs/{name}"},
        tags=("oslofmt",),
        options=FileOptions(format="oslo"),
    )


def index(target: Target, server: LogServer, job: Job, max_event_lines: int) -> None:
    config = WorkerConfig(
        sink=target.config,
        # Chunks of 32 KiB: a body cut midway has been read, parsed and partly written
        # by then (a whole chunk is read before any of its lines is decoded).
        fetch=FetchConfig(allow=(server.url(""),), retries=0, chunk_bytes=32 * 1024),
        parse=ParseConfig(max_event_lines=max_event_lines),
    )
    run_job(job, config, target.sink)


def hits(sink: Sink) -> list[dict[str, Any]]:
    """Every document of the test: each has its own index prefix."""
    sink.refresh()
    result = sink.search("*", size=10_000)
    assert result.total == len(result.hits)
    return sorted(result.hits, key=lambda hit: int(hit["line_number"]))


def assert_grouped_as(sink: Sink, max_event_lines: int) -> None:
    starts = STARTS[max_event_lines]
    assert [hit["line_number"] for hit in hits(sink)] == starts
    for word, line in WORDS.items():
        found = sink.search(f"message:{word}", size=10)
        assert found.total == 1, (word, found.hits)
        # The one document holding that line: the last one starting at or before it.
        assert found.hits[0]["line_number"] == max(s for s in starts if s <= line), word


@pytest.mark.parametrize("of_build", [True, False])
@pytest.mark.parametrize(("first", "second"), [(500, 2), (2, 500)])
def test_reindexing_with_other_grouping_leaves_exactly_the_new_documents(
    target: Target, logs: LogServer, first: int, second: int, of_build: bool
) -> None:
    job = make_job(logs, "app.log", of_build)
    index(target, logs, job, first)
    assert_grouped_as(target.sink, first)
    index(target, logs, job, second)
    assert_grouped_as(target.sink, second)


def test_reindexing_an_unchanged_file_changes_nothing(target: Target, logs: LogServer) -> None:
    job = make_job(logs, "app.log")
    index(target, logs, job, 2)
    before = hits(target.sink)
    index(target, logs, job, 2)
    after = hits(target.sink)
    assert len(after) == len(STARTS[2])

    def without_run(hit: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in hit.items() if name != "generation"}

    assert [without_run(hit) for hit in after] == [without_run(hit) for hit in before]
    # Every document is the second run's: the later run's generation is larger.
    assert {hit["generation"] for hit in after} != {hit["generation"] for hit in before}
    assert len({hit["generation"] for hit in after}) == 1
    assert min(hit["generation"] for hit in after) > max(hit["generation"] for hit in before)


@pytest.mark.parametrize("indexed_before", [False, True])
def test_a_job_whose_body_is_cut_midway_leaves_no_document_of_the_file(
    target: Target, logs: LogServer, indexed_before: bool
) -> None:
    job = make_job(logs, "long.log")
    if indexed_before:
        index(target, logs, job, 500)
        assert len(hits(target.sink)) == len(LONG_LINES)
    # About half of the file arrives (~3000 lines; chunks of 20 written meanwhile), well
    # past the first 64 KiB, which decoding judges (binary?) before yielding any line.
    size = len("\n".join(LONG_LINES)) + 1
    assert size // 2 > 2 * 64 * 1024
    logs.behave("/long.log", drop_after=size // 2)
    with pytest.raises(FetchError, match="connection broken"):
        index(target, logs, job, 500)
    assert hits(target.sink) == []


def test_a_job_failing_before_its_first_document_keeps_the_previous_ones(
    target: Target, logs: LogServer
) -> None:
    job = make_job(logs, "app.log")
    index(target, logs, job, 2)
    logs.behave("/app.log", status=404)
    with pytest.raises(FetchError, match="404"):
        index(target, logs, job, 500)
    assert_grouped_as(target.sink, 2)


def app_documents(
    target: Target, job: Job, max_event_lines: int, generation: int
) -> Iterator[Document]:
    """The documents of app.log parsed as a worker does, of run `generation`."""
    config = WorkerConfig(sink=target.config, parse=ParseConfig(max_event_lines=max_event_lines))
    _, documents = parse_documents(
        [("\n".join(LINES) + "\n").encode()],
        job,
        config,
        last_modified=None,
        decode_stats=DecodeStats(),
        event_stats=EventStats(),
        generation=generation,
    )
    return documents


def test_documents_from_before_generations_are_replaced_too(
    target: Target, logs: LogServer
) -> None:
    # As an older worker wrote them: the same ids and fields, but no generation.
    job = make_job(logs, "app.log")
    legacy = list(app_documents(target, job, 2, generation=0))
    assert all("generation" not in document.source for document in legacy)
    assert target.sink.write(legacy).indexed == len(STARTS[2])
    target.sink.refresh()  # written long before: searchable by now
    index(target, logs, job, 500)
    assert_grouped_as(target.sink, 500)


# Concurrent runs of one file, interleaved step by step through the sink's interface,
# as two workers running the same job (gearmand re-running it) would.


def write_run(target: Target, job: Job, generation: int, max_event_lines: int) -> WriteResult:
    """Write the documents of one run of `job`'s file."""
    return target.sink.write(app_documents(target, job, max_event_lines, generation))


def two_runs(target: Target, logs: LogServer) -> tuple[Job, FileRun, FileRun]:
    """A fresh build's app.log, and two runs of it begun: the older, then the newer."""
    job = make_job(logs, "app.log")
    older = target.sink.begin_file(file_run(job, 1_000))
    newer = target.sink.begin_file(file_run(job, 2_000))
    return job, older, newer


def test_an_older_run_finishing_last_leaves_the_newer_runs_documents(
    target: Target, logs: LogServer
) -> None:
    job, older, newer = two_runs(target, logs)
    # The newer run writes and finishes first, then the older one writes its other
    # grouping: lines 1 and 8 are the newer run's already, 3, 5 and 7 are new ids.
    assert not target.sink.replace_file(
        newer, write_run(target, job, newer.generation, 500)
    ).by_newer_run
    late = write_run(target, job, older.generation, 2)
    assert (late.indexed, late.superseded) == (3, 2)
    # The older run learns that its outcome is not the file's (its 3 documents went).
    assert target.sink.replace_file(older, late).by_newer_run
    assert_grouped_as(target.sink, 500)


def test_a_newer_run_finishing_last_leaves_its_documents(target: Target, logs: LogServer) -> None:
    job, older, newer = two_runs(target, logs)
    older_written = write_run(target, job, older.generation, 2)
    newer_written = write_run(target, job, newer.generation, 500)
    assert target.sink.replace_file(older, older_written).by_newer_run
    assert not target.sink.replace_file(newer, newer_written).by_newer_run
    assert_grouped_as(target.sink, 500)


def test_a_run_whose_documents_a_failed_newer_run_removed_fails_too(
    target: Target, logs: LogServer
) -> None:
    job, older, newer = two_runs(target, logs)
    older_written = write_run(target, job, older.generation, 2)
    write_run(target, job, newer.generation, 500)
    target.sink.discard_file(newer)  # the newer run failed: its and older documents go
    with pytest.raises(SinkError, match="removed meanwhile by another run"):
        target.sink.replace_file(older, older_written)
    target.sink.discard_file(older)
    assert hits(target.sink) == []


def test_a_run_kept_out_by_a_newer_run_that_then_failed_leaves_all_or_nothing(
    target: Target, logs: LogServer
) -> None:
    job, older, newer = two_runs(target, logs)
    write_run(target, job, newer.generation, 500)
    target.sink.discard_file(newer)
    # The older run writes after that. The engines keep a deleted id's version for a
    # while (index.gc_deletes), so lines 1 and 8 may be refused as older still; SQLite
    # keeps none. Either the older run's whole grouping is left, or it fails, and its
    # documents are discarded.
    written = write_run(target, job, older.generation, 2)
    try:
        target.sink.replace_file(older, written)
    except SinkError:
        assert written.superseded == 2
        target.sink.discard_file(older)
        assert hits(target.sink) == []
    else:
        assert written.superseded == 0
        assert_grouped_as(target.sink, 2)
