"""The one document builder every sink uses: fields, ids and index names."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from worker.events import Event
from worker.job import Job
from worker.redact import mask_url

# Set by the builder on every document; a job field of the same name is overridden.
LINE_FIELDS = ("@timestamp", "message", "line_number", "line_count", "truncated")
# Set by the builder on the documents of a file: the indexing run that wrote them and,
# for a file of no build (whose build_uuid and filename do not name it), the file's
# key, the first part of each id. A job or parsed field so named is overridden:
# re-indexing finds a file's documents, and tells runs apart, by these.
FILE_KEY_FIELD = "file_key"
GENERATION_FIELD = "generation"


@dataclass(frozen=True, slots=True)
class FileFields:
    """What every document of one file carries: the job's fields, filename and tags.

    Built once per job and shared by its documents, so that per line neither a merged
    dict nor the serialised form of these fields is made again (see `sinks.bulk`).
    """

    fields: dict[str, Any]
    names: frozenset[str]
    # `fields` in JSON as the end of an NDJSON line whose object's own members come
    # first: b',"a":1,"b":"x"}\n', or b"}\n" when there are none.
    json_rest: bytes
    # The indexing run that writes these documents (see FileRun); 0 for documents built
    # outside one, which sinks write unversioned.
    generation: int = 0

    @classmethod
    def of(cls, fields: dict[str, Any], generation: int = 0) -> FileFields:
        fields = {name: value for name, value in fields.items() if name not in LINE_FIELDS}
        members = orjson.dumps(fields)[1:-1]
        rest = b"," + members + b"}\n" if members else b"}\n"
        return cls(fields, frozenset(fields), rest, generation)


NO_FILE_FIELDS = FileFields.of({})


@dataclass(slots=True)
class Document:
    index: str  # daily index of the event's own date, e.g. "logstash-2013.09.27"
    id: str  # deterministic: a re-run job overwrites instead of duplicating
    fields: dict[str, Any]  # this line's own: @timestamp, message, line_number, parsed fields
    # The file's, shared by its documents; none for a document built whole.
    file: FileFields = NO_FILE_FIELDS

    @property
    def source(self) -> dict[str, Any]:
        """The whole document, as the engine stores it."""
        return {**self.file.fields, **self.fields}


@dataclass(frozen=True, slots=True)
class FileRun:
    """One indexing run of one file. Its documents carry `generation`, which orders
    runs (nanoseconds since the epoch at the run's start): a sink keeps, per document
    id, the newest run's version, and when a run has written the whole file it removes
    the file's documents of older runs (see `Sink.replace_file`)."""

    key: str  # file_key(): what every document id of the file starts with
    build_uuid: str
    filename: str
    generation: int
    # Set by a sink that knows no other run of this file had started before this one.
    first: bool = False


def file_run(job: Job, generation: int) -> FileRun:
    _, _, filename, id_key = file_identity(job)
    build_uuid = str(job.fields.get("build_uuid") or "")
    return FileRun(file_key(id_key, filename), build_uuid, filename, generation)


def file_key(id_key: str, filename: str) -> str:
    """The part of every document id that names the file."""
    key = f"{id_key}\0{filename}".encode()
    return hashlib.blake2b(key, digest_size=12).hexdigest()


def document_id(build_uuid: str, filename: str, line_number: int) -> str:
    # The file's key then the line: ids of one file share a prefix and differ in a
    # short suffix, which Lucene's terms dictionary stores and looks up more cheaply
    # than random hashes, and which costs no hashing per line.
    return f"{file_key(build_uuid, filename)}-{line_number}"


def index_name(prefix: str, timestamp: str) -> str:
    """`timestamp` is ISO-8601 UTC; its date, not today's, names the index."""
    return f"{prefix}{timestamp[0:4]}.{timestamp[5:7]}.{timestamp[8:10]}"


def file_identity(job: Job) -> tuple[dict[str, Any], list[str], str, str]:
    """The per-file part of every document: base fields, tags, filename and id key.

    Computed once per job, not per line.
    """
    fields = dict(job.fields)
    # The credentials a job's URL may carry are for fetching, never for the index.
    url = mask_url(job.source_url)
    filename = str(fields.get("filename") or urlsplit(url).path.rsplit("/", 1)[-1])
    fields["filename"] = filename
    log_url = fields.get("log_url", url)
    fields["log_url"] = mask_url(log_url) if isinstance(log_url, str) else log_url
    build_uuid = str(fields.get("build_uuid") or "")
    if build_uuid and not fields.get("build_short_uuid"):
        fields["build_short_uuid"] = build_uuid[:7]
    tags = list(job.tags)
    basename = filename.rsplit("/", 1)[-1]
    for extra in (basename, basename.removesuffix(".gz")):
        if extra not in tags:
            tags.append(extra)
    # Without a build uuid the log URL is what identifies the file.
    id_key = build_uuid or url
    return fields, tags, filename, id_key


def build_documents(
    events: Iterable[Event], job: Job, index_prefix: str, generation: int = 0
) -> Iterator[Document]:
    """The documents of one file; `generation` is the indexing run's (FileRun), 0 when
    the documents are built outside a run (they then carry none)."""
    base, tags, filename, id_key = file_identity(job)
    key = file_key(id_key, filename)
    # What the builder sets for the whole file, over any job or parsed field so named.
    reserved: dict[str, Any] = {"tags": tags}
    if not base.get("build_uuid"):
        reserved[FILE_KEY_FIELD] = key
    if generation:
        reserved[GENERATION_FIELD] = generation
    shared = FileFields.of({**base, **reserved}, generation)
    bare = FileFields.of({}, generation)
    names = shared.names
    indices: dict[str, str] = {}
    last_day = ""
    index = ""
    for event in events:
        timestamp = event.timestamp
        line_number = event.line_number
        fields = event.fields
        if fields and not names.isdisjoint(fields):
            # A parsed field named like a job field (rare): this document carries the
            # job's fields itself, the parsed value winning as it always has, but for
            # the tags and the file's key and run, which are the builder's.
            own = {**shared.fields, **fields, **reserved}
            file = bare
        else:
            own = {**fields}
            file = shared
        own["@timestamp"] = timestamp
        own["message"] = event.message
        own["line_number"] = line_number
        if event.line_count > 1:
            own["line_count"] = event.line_count
        if event.truncated:
            own["truncated"] = True
        # Lines come many to a day: the last day's index is compared first, without
        # hashing.
        day = timestamp[:10]
        if day != last_day:
            if day not in indices:
                indices[day] = index_name(index_prefix, timestamp)
            index = indices[day]
            last_day = day
        yield Document(index, f"{key}-{line_number}", own, file)
