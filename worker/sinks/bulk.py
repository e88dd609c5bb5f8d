"""The `_bulk` body: documents in, chunks of NDJSON out, per-item results read back.

Pure functions with no I/O, so chunking is separate from sending (and testable alone).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from worker.documents import Document
from worker.errors import one_line
from worker.sinks.engine_errors import describe
from worker.sinks.retry import OVERLOADED


@dataclass(slots=True)
class Chunk:
    ids: list[str]
    lines: list[bytes]  # action and source lines, each ending in "\n"
    size: int = 0

    @property
    def body(self) -> bytes:
        return b"".join(self.lines)

    def select(self, positions: Iterable[int]) -> Chunk:
        """The sub-chunk of the items at `positions` (to retry only what was rejected)."""
        ids: list[str] = []
        lines: list[bytes] = []
        for i in positions:
            ids.append(self.ids[i])
            lines.append(self.lines[2 * i])
            lines.append(self.lines[2 * i + 1])
        return Chunk(ids, lines, sum(len(line) for line in lines))


def serialize(document: Document) -> tuple[bytes, bytes]:
    generation = document.file.generation
    if generation:
        # The run's generation is the document's external version: the engine keeps
        # a newer run's version of an id over an older run's arriving late (409).
        action = (
            f'{{"index":{{"_index":"{document.index}","_id":"{document.id}",'
            f'"version":{generation},"version_type":"external_gte"}}}}\n'
        ).encode()
    else:
        action = f'{{"index":{{"_index":"{document.index}","_id":"{document.id}"}}}}\n'.encode()
    if not document.fields:
        return action, orjson.dumps(document.file.fields, option=orjson.OPT_APPEND_NEWLINE)
    # The file's fields were serialised once, when the job started.
    return action, orjson.dumps(document.fields)[:-1] + document.file.json_rest


def chunk_documents(
    documents: Iterable[Document], *, max_documents: int, max_bytes: int
) -> Iterator[Chunk]:
    """Group serialised documents into chunks bounded by count and by bytes."""
    chunk = Chunk([], [])
    for document in documents:
        action, source = serialize(document)
        size = len(action) + len(source)
        if chunk.ids and (len(chunk.ids) >= max_documents or chunk.size + size > max_bytes):
            yield chunk
            chunk = Chunk([], [])
        chunk.ids.append(document.id)
        chunk.lines.append(action)
        chunk.lines.append(source)
        chunk.size += size
    if chunk.ids:
        yield chunk


@dataclass(slots=True)
class ItemOutcome:
    retry: list[int]  # positions rejected for now (retry.OVERLOADED): sent again
    failed: list[tuple[int, str]]  # positions refused for good, with the reason
    superseded: int = 0  # items a newer run of the file had written already (409)


def read_items(response: dict[str, Any], ids: Sequence[str]) -> ItemOutcome:
    """The outcome of each item of a chunk from a `_bulk` answer; `ids` are the chunk's
    document ids, by position (the answer may have been cut to status and error)."""
    outcome = ItemOutcome([], [])
    if not response.get("errors"):
        return outcome
    for position, item in enumerate(response.get("items", [])):
        result = next(iter(item.values()))
        status = int(result.get("status", 500))
        if status < 300:
            continue
        # The statuses that say "not now" of a whole request say it of an item too: 429
        # when the node is too busy; 503 when the item's shard has no primary to write
        # to within the bulk's timeout (its node left the cluster and no replica is
        # promoted yet), or writes are blocked while there is no master; 502 and 504
        # when the coordinating node lost the node holding the primary. The same item
        # sent again lands once a copy is back, under its same id.
        if status in OVERLOADED:
            outcome.retry.append(position)
        elif status == 409:
            outcome.superseded += 1
        else:
            error = result.get("error") or {}
            reason = describe(error) if isinstance(error, dict) else one_line(str(error))
            outcome.failed.append((position, f"{ids[position]}: {reason}"))
    return outcome
