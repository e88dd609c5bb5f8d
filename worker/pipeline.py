"""One push-log job, start to end: fetch -> decode -> format -> events -> redact ->
documents -> sink. This module wires the stages and does nothing else."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import TypeVar

from worker.config import WorkerConfig
from worker.decode import DecodeStats, decode_lines
from worker.documents import Document, FileRun, build_documents, file_run
from worker.errors import BodyBroken, EngineOutage, LogIndexerError, SinkError
from worker.events import Event, EventStats, group_events
from worker.fetch import Interrupt, Source, open_source, verify_length
from worker.formats import choose_format
from worker.formats.base import ParseContext
from worker.job import Job, JobSummary
from worker.redact import Redactor, mask_url
from worker.sinks.base import DocumentWriter, WriteResult

SNIFF_LINES = 50
T = TypeVar("T")

log = logging.getLogger(__name__)


def run_job(
    job: Job, config: WorkerConfig, sink: DocumentWriter, interrupt: Interrupt | None = None
) -> JobSummary:
    """Index the job's file. A body the log server broke off mid-transfer is read again
    from the start, up to fetch.reread_attempts times, each read a new run of the file
    whose documents replace the broken one's: the summary is the whole read's."""
    started = time.monotonic()
    attempts = config.fetch.reread_attempts
    attempt = 0
    while True:
        last = attempt >= attempts
        try:
            summary = read_file(job, config, sink, interrupt, keep_on_break=not last)
        except BodyBroken as exc:
            if last:
                if attempts:
                    raise BodyBroken(f"{exc} (broken off in each of {attempt + 1} reads)") from exc
                raise
            url = mask_url(job.source_url)
            log.warning(
                "%s: the log server broke off the body; reading it again from the start"
                " (%d of %d): %s",
                url,
                attempt + 1,
                attempts,
                mask_url(str(exc)),
                extra={"source_url": url, "error": mask_url(str(exc))},
            )
            attempt += 1
            continue
        summary.seconds = round(time.monotonic() - started, 3)
        return summary


def read_file(
    job: Job,
    config: WorkerConfig,
    sink: DocumentWriter,
    interrupt: Interrupt | None = None,
    *,
    keep_on_break: bool = False,
) -> JobSummary:
    """One run of the job's file: one read from the start, its documents written."""
    summary = JobSummary(source_url=mask_url(job.source_url))  # logged and answered
    decode_stats = DecodeStats()
    event_stats = EventStats()
    # Named as its documents name it: by the redacted build uuid and filename.
    run = sink.begin_file(file_run(redacted_job(job, config), time.time_ns()))
    # Documents left for the next run to replace: that of a job handed back because
    # its engine is away, and a broken-off body's that is read again at once.
    kept: tuple[type[Exception], ...] = (
        (EngineOutage, BodyBroken) if keep_on_break else (EngineOutage,)
    )
    with (
        replacing(sink, run, summary, keep=kept) as result,
        open_source(job.source_url, config.fetch, interrupt) as source,
    ):
        summary.format, documents = parse_documents(
            source.chunks,
            job,
            config,
            last_modified=source.last_modified,
            decode_stats=decode_stats,
            event_stats=event_stats,
            generation=run.generation,
        )
        result.merge(
            sink.write(
                checked_length(counted(documents, summary), source, job.size, decode_stats, summary)
            )
        )
        summary.compressed_bytes = source.received
    summary.lines = decode_stats.lines
    summary.decompressed_bytes = decode_stats.bytes
    summary.truncated_lines = decode_stats.truncated
    summary.truncated = decode_stats.stopped
    summary.dropped = event_stats.dropped
    summary.indexed = result.indexed
    summary.failed = result.failed
    summary.errors = result.errors
    return summary


def parse_documents(
    chunks: Iterable[bytes],
    job: Job,
    config: WorkerConfig,
    *,
    last_modified: datetime | None,
    decode_stats: DecodeStats,
    event_stats: EventStats,
    generation: int = 0,
) -> tuple[str, Iterator[Document]]:
    """The stages from bytes to documents: the name of the format the file is read
    with, and the documents (of indexing run `generation`), made as they are consumed."""
    name, events = parse_events(
        chunks,
        job,
        config,
        last_modified=last_modified,
        decode_stats=decode_stats,
        event_stats=event_stats,
    )
    # Before any document exists: the message and every field of each event, and the
    # job's own fields, which every document of the file carries.
    job = redacted_job(job, config)
    redactor = Redactor(config.redact.rules)
    documents = build_documents(redactor.events(events), job, config.sink.index_prefix, generation)
    return name, documents


def redacted_job(job: Job, config: WorkerConfig) -> Job:
    """The job with its own fields redacted, as its documents carry them."""
    return replace(job, fields=Redactor(config.redact.rules).fields(job.fields))


@contextmanager
def replacing(
    sink: DocumentWriter, run: FileRun, summary: JobSummary, keep: tuple[type[Exception], ...] = ()
) -> Iterator[WriteResult]:
    """Around a run's writing, whose outcome goes in the WriteResult yielded: then the
    run's documents replace all of the file's; if the run fails, none stays, unless it
    failed with one of `keep`: a run of the file to come then replaces them."""
    written = WriteResult()
    try:
        yield written
        summary.replaced_by_newer_run = sink.replace_file(run, written).by_newer_run
    except Exception as exc:
        # A run that failed before its first document has changed nothing: the file's
        # previous documents, if any, stay as they were.
        if summary.documents and not isinstance(exc, keep):
            discard(sink, run, exc)
        raise


def discard(sink: DocumentWriter, run: FileRun, error: Exception) -> None:
    """Remove a failed run's documents, and its file's older ones it may have
    overwritten part of; the job fails with `error` either way."""
    try:
        sink.discard_file(run)
    except LogIndexerError as cleanup:
        raise SinkError(
            f"{error}; removing the partial documents of {run.filename} failed too: {cleanup}"
        ) from error


def parse_events(
    chunks: Iterable[bytes],
    job: Job,
    config: WorkerConfig,
    *,
    last_modified: datetime | None,
    decode_stats: DecodeStats,
    event_stats: EventStats,
) -> tuple[str, Iterator[Event]]:
    """The stages from bytes to events (decode, format, grouping): the name of the
    format the file is read with, and the events, made as they are consumed."""
    lines = decode_lines(
        chunks,
        max_bytes=config.fetch.max_decompressed_bytes,
        max_line_bytes=config.fetch.max_line_bytes,
        max_lines=config.parse.max_lines,
        max_ratio=config.fetch.max_decompression_ratio,
        ratio_after_bytes=config.fetch.ratio_after_bytes,
        stats=decode_stats,
    )
    head, lines = peek(lines, SNIFF_LINES)
    log_format = choose_format(job.tags, job.options.format, [line.text for line in head])
    context = ParseContext(reference_time=reference_time(job, last_modified), html=is_html(job))
    records = map(log_format.parse_line, lines, itertools.repeat(context))
    events = group_events(
        records,
        max_event_lines=config.parse.max_event_lines,
        lookahead_lines=config.parse.lookahead_lines,
        fallback_timestamp=iso_utc(context.reference_time),
        drop_debug=job.options.drop_debug,
        drop_xtrace=job.options.drop_xtrace,
        stats=event_stats,
    )
    return log_format.NAME, events


def peek(items: Iterator[T], n: int) -> tuple[list[T], Iterator[T]]:
    """The first `n` items, and an iterator that still yields all of them."""
    head = list(itertools.islice(items, n))
    return head, itertools.chain(head, items)


def counted(documents: Iterable[T], summary: JobSummary) -> Iterator[T]:
    for document in documents:
        summary.documents += 1
        yield document


def checked_length(
    documents: Iterable[T],
    source: Source,
    expected: int | None,
    stats: DecodeStats,
    summary: JobSummary,
) -> Iterator[T]:
    """The documents, then the check that the body was whole: raised while the sink is
    still writing, a short body fails the file like a connection broken mid-body."""
    yield from documents
    if source.ended:  # not when a cap stopped reading: `truncated` says that
        summary.length_verified = verify_length(source, expected, stats.bytes)


def is_html(job: Job) -> bool:
    name = str(job.fields.get("filename") or job.source_url).removesuffix(".gz")
    return name.endswith((".html", ".htm"))


def reference_time(job: Job, last_modified: datetime | None) -> datetime:
    """The time year-less lines are placed in, and lines with no timestamp at all fall
    back to: the build's end when the job says it, else the file's modification time.
    Never ingest time when anything better is known, or old builds land in today's index."""
    return job.end_time or last_modified or datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
