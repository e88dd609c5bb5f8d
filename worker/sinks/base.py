"""The interface every sink implements, and the result types they share."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from worker.builds import TIME_FORMAT
from worker.documents import Document, FileRun
from worker.errors import QueryError, SinkError, one_line
from worker.sinks.retry import wait_ceiling

MAX_REPORTED_ERRORS = 10
# Values `Searcher.counts` returns unless told otherwise.
COUNTS_SIZE = 10
# wait_for_build's pauses between reads of the summary: doubling from the first, at most
# the last, so a summary written meanwhile is seen within a second or two.
BUILD_WAIT_FIRST = 0.05
BUILD_WAIT_MAX = 2.0


@dataclass(slots=True)
class WriteResult:
    indexed: int = 0
    failed: int = 0  # documents the sink refused; each is counted, none is dropped silently
    # Documents not written because a newer run of their file had written the same id.
    superseded: int = 0
    errors: list[str] = field(default_factory=list)  # the first few reasons

    def add_error(self, reason: str, count: int = 1) -> None:
        self.failed += count
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(one_line(reason))  # these go into answers and outcomes

    def merge(self, other: WriteResult) -> None:
        self.indexed += other.indexed
        self.failed += other.failed
        self.superseded += other.superseded
        for reason in other.errors:
            if len(self.errors) < MAX_REPORTED_ERRORS:
                self.errors.append(reason)


@dataclass(frozen=True, slots=True)
class Replaced:
    """What replacing a file's documents by a run's did."""

    removed: int  # documents of other runs removed
    # A newer run of the file had written it, and owns it: this run's documents were
    # removed too, and its outcome is the newer run's to record.
    by_newer_run: bool = False


@dataclass(slots=True)
class SearchResult:
    total: int
    hits: list[dict[str, Any]]  # document sources, newest first, with "_id" and "_index"


def check_complete(run: FileRun, written: WriteResult, left: int) -> None:
    """With no newer run's documents in place: `left` of this run's are, which must be
    all it wrote. Fewer, or any kept out by a newer run's version (superseded), mean
    a newer run failed and removed its documents and the older ones meanwhile."""
    if left != written.indexed or written.superseded:
        raise SinkError(
            f"{run.filename}: {written.indexed - left} of this run's {written.indexed} "
            f"documents, and {written.superseded} a newer run had written, were removed "
            "meanwhile by another run of the file"
        )


class DocumentWriter(Protocol):
    """The writing side of a sink: documents in, per-file replacement of older runs."""

    def prepare(self) -> None:
        """Create what must exist before writing (index template, tables). Idempotent."""

    def write(self, documents: Iterable[Document]) -> WriteResult:
        """Store documents, streaming: memory must not grow with their number."""
        ...

    def refresh(self) -> None:
        """Make everything written so far visible to search."""

    def delete_file(self, build_uuid: str, filename: str) -> int:
        """Remove every document of one file of one build; returns how many."""
        ...

    # Re-indexing a file (see worker.pipeline.run_job and README "This build is fully
    # indexed"): begin_file, then write the documents of the run's generation, then
    # replace_file; or discard_file if the run failed after writing any.
    def begin_file(self, run: FileRun) -> FileRun:
        """Note that `run` starts; the run to use from now on (a sink may note in it
        what it learnt, e.g. that no other run of the file had started)."""
        ...

    def replace_file(self, run: FileRun, written: WriteResult) -> Replaced:
        """After `run` wrote all of its file's documents (`written` says how it went):
        remove the file's documents of older runs, and of this run too if a newer run
        has written the file; says which, and how many were removed. Raises SinkError
        when the run's documents are no longer all there (see `check_complete`): the
        caller then discards the run."""
        ...

    def discard_file(self, run: FileRun) -> int:
        """After `run` failed: remove the file's documents of this run and of older
        runs, so that no partial file stays searchable; returns how many."""
        ...

    def stop_waiting(self) -> None:
        """Requests waiting for the store to answer again, now and from now on, give up
        with EngineOutage (the worker stopping: its job goes back to Gearman)."""

    def close(self) -> None: ...


class BuildRecorder(Protocol):
    """Build outcomes: each file's, and the summary of a build whose files all have one."""

    def record_file(self, outcome: dict[str, Any]) -> list[dict[str, Any]]:
        """Store one file's outcome (keyed by build_uuid and filename, so a re-run
        replaces it) and return every outcome recorded for that build so far."""
        ...

    def put_build(self, summary: dict[str, Any]) -> None:
        """Store a build-summary document (keyed by build_uuid)."""

    def get_build(self, build_uuid: str) -> dict[str, Any] | None:
        """The build-summary document, or None while the build is not fully indexed."""
        ...

    def file_outcomes(self, build_uuid: str) -> list[dict[str, Any]]:
        """Every file outcome recorded for the build so far (see record_file)."""
        ...

    def close(self) -> None: ...


class Searcher(Protocol):
    """The query side of a sink."""

    def search(self, query: str, size: int = 10, *, oldest_first: bool = False) -> SearchResult:
        """Run a Lucene query_string query (on SQLite: the subset er-queries use); hits
        newest first, or with `oldest_first` in the order the lines were logged."""
        ...

    def count(self, query: str = "*") -> int: ...

    def counts(self, query: str, field: str, size: int = COUNTS_SIZE) -> dict[str, int]:
        """The documents `query` matches, counted per exact value of `field` (as text: a
        number's digits, a boolean's true/false; each value of a list such as tags
        counts; a document without the field counts nowhere). The same on every sink:
        the `size` most frequent values, most frequent first, ties in value order."""
        ...

    def builds(self, since: str, until: str) -> list[dict[str, Any]]:
        """Every build-summary document (see BuildRecorder.put_build) whose @timestamp
        is in [since, until) (ISO 8601 times; without an offset, UTC), oldest first,
        ties in build_uuid order; all of them, however many."""
        ...

    def close(self) -> None: ...


class Sink(DocumentWriter, BuildRecorder, Searcher, Protocol):
    """One store in its three roles (what each sink module implements: sqlite,
    elasticsearch, opensearch); code that needs one role takes that role's type."""


def check_counts_size(size: int) -> None:
    if size < 1:
        raise QueryError(f"counts: size must be at least 1, got {size}")


def summary_window(since: str, until: str) -> tuple[str, str]:
    """[since, until) as the summaries write their times (worker.builds.iso), so that
    the times compare as text too; a time that is not ISO 8601 is a QueryError."""

    def read(name: str, text: str) -> str:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise QueryError(f"{name} {text!r} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime(TIME_FORMAT)

    return read("since", since), read("until", until)


def wait_for_build(
    recorder: BuildRecorder,
    build_uuid: str,
    seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any] | None:
    """The build's summary, read again after doubling pauses until it is there or
    `seconds` have passed (0: read once); None if it never came."""
    deadline = time.monotonic() + max(seconds, 0.0)
    reads = 0
    while True:
        summary = recorder.get_build(build_uuid)
        left = deadline - time.monotonic()
        if summary is not None or left <= 0:
            return summary
        reads += 1
        sleep(min(wait_ceiling(reads, BUILD_WAIT_FIRST, BUILD_WAIT_MAX), left))
