"""The interface every sink implements, and the result types they share."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from worker.documents import Document
from worker.errors import one_line

MAX_REPORTED_ERRORS = 10


@dataclass(slots=True)
class WriteResult:
    indexed: int = 0
    failed: int = 0  # documents the sink refused; each is counted, none is dropped silently
    errors: list[str] = field(default_factory=list)  # the first few reasons

    def add_error(self, reason: str, count: int = 1) -> None:
        self.failed += count
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(one_line(reason))  # these go into answers and outcomes

    def merge(self, other: WriteResult) -> None:
        self.indexed += other.indexed
        self.failed += other.failed
        for reason in other.errors:
            if len(self.errors) < MAX_REPORTED_ERRORS:
                self.errors.append(reason)


@dataclass(slots=True)
class SearchResult:
    total: int
    hits: list[dict[str, Any]]  # document sources, newest first, with "_id" and "_index"


class Sink(Protocol):
    """Where documents go. Implementations: sqlite, elasticsearch, opensearch."""

    def prepare(self) -> None:
        """Create what must exist before writing (index template, tables). Idempotent."""

    def write(self, documents: Iterable[Document]) -> WriteResult:
        """Store documents, streaming: memory must not grow with their number."""
        ...

    def refresh(self) -> None:
        """Make everything written so far visible to search."""

    def search(self, query: str, size: int = 10) -> SearchResult:
        """Run a Lucene query_string query (on SQLite: the subset er-queries use)."""
        ...

    def count(self, query: str = "*") -> int: ...

    def delete_file(self, build_uuid: str, filename: str) -> int:
        """Remove every document of one file of one build; returns how many."""
        ...

    def record_file(self, outcome: dict[str, Any]) -> list[dict[str, Any]]:
        """Store one file's outcome (keyed by build_uuid and filename, so a re-run
        replaces it) and return every outcome recorded for that build so far."""
        ...

    def put_build(self, summary: dict[str, Any]) -> None:
        """Store a build-summary document (keyed by build_uuid)."""

    def get_build(self, build_uuid: str) -> dict[str, Any] | None:
        """The build-summary document, or None while the build is not fully indexed."""
        ...

    def close(self) -> None: ...
