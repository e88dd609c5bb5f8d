"""From records to events: timestamp inheritance and multi-line grouping.

Rules, in the order they are applied to each record:

- A record without a timestamp takes the last timestamp seen. Records before the first
  timestamped one take that first timestamp, searched for at most `lookahead_lines`
  records ahead (only those are buffered), else `fallback_timestamp`.
- drop_xtrace drops timestamp-less "+ " lines (shell xtrace) before anything else.
- A record joins the open event when
  - the format marked it a continuation and its pid is the event's or absent: oslo TRACE
    lines, and the lines of a traceback written with oslo.log's exception prefix (every
    line "<ts> <pid> ERROR <module> [instance: ...] ...", the first one included, so
    the traceback joins the log line it belongs to);
  - it has no timestamp and starts with "Traceback (most recent call last):"; the event
    enters traceback mode (a timestamped "Traceback" line, as journald writes it, starts
    a new event in traceback mode instead);
  - in traceback mode, with the event's pid or none: it is indented (a frame or source
    line), or it is the first non-indented line (the exception, which ends the mode).
    A non-indented line that the format parsed a loglevel from is a new log entry, not
    an exception line: it ends the mode and starts a new event.
- Any other record starts a new event, timestamp-less ones (XML/JSON bodies) included.
- A record whose message is empty or whitespace and that has no parsed fields carries
  no information (a blank line, a console line with nothing after "ts | "): it is
  skipped and counted in EventStats.blank, not in `dropped`. With fields it is kept: an
  oslo line "... DEBUG neutronclient.client [-] " opens a message continued on the next
  lines. A blank line inside a traceback is skipped without ending the traceback.
  Continuation lines are kept even when empty (oslo.log ends every traceback with its
  bare prefix), counted in the event's lines; a grouped message does not end in "\n".
- An event holds at most `max_event_lines` lines. The line that would exceed the cap
  starts a new event that continues the same group (same fields, pid, traceback mode),
  so nothing is lost; the event that hit the cap is marked truncated.
- drop_debug drops events whose loglevel is DEBUG, with all lines grouped into them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice

from worker.formats.base import TRACEBACK, Record


@dataclass(slots=True)
class Event:
    """One future document: a line, or several grouped lines (a traceback)."""

    line_number: int  # number of the event's first line
    timestamp: str  # ISO-8601 UTC, always set (inherited or fallback when the line has none)
    message: str  # lines joined with "\n"
    fields: dict[str, str] = field(default_factory=dict)
    line_count: int = 1
    truncated: bool = False  # a line was cut at the length limit, or the event at the line cap


def _joined(messages: list[str]) -> str:
    """The message of a grouped event: its lines, less the empty ones at its end."""
    return "\n".join(messages).rstrip("\n")


@dataclass(slots=True)
class EventStats:
    records: int = 0  # records read
    events: int = 0  # events yielded
    dropped: int = 0  # lines dropped on purpose: DEBUG events, xtrace lines
    blank: int = 0  # empty lines skipped
    split: int = 0  # times an event reached max_event_lines and was continued in a new one


def group_events(
    records: Iterable[Record],
    *,
    max_event_lines: int,
    lookahead_lines: int,
    fallback_timestamp: str,
    drop_debug: bool = False,
    drop_xtrace: bool = False,
    stats: EventStats | None = None,
) -> Iterator[Event]:
    if stats is None:
        stats = EventStats()
    max_event_lines = max(max_event_lines, 1)
    source = iter(records)
    head: list[Record] = []
    current = fallback_timestamp
    for record in islice(source, lookahead_lines):
        head.append(record)
        if record.timestamp is not None:
            current = record.timestamp
            break

    # The open event and its grouping state; counters are flushed to `stats` at the end.
    event: Event | None = None
    more: list[str] | None = None  # messages of a multi-line event, first one included
    event_pid: str | None = None
    drop = False
    traceback = False
    count = emitted = dropped = blank = split = 0
    try:
        for record in chain(head, source) if head else source:
            count += 1
            message = record.message
            timestamp = record.timestamp
            if timestamp is None:
                if drop_xtrace and message.startswith("+ "):
                    dropped += 1
                    continue
                timestamp = current
            else:
                current = timestamp
            fields = record.fields
            pid = fields.get("pid")
            starts_traceback = message.startswith(TRACEBACK)
            join = False
            if event is not None:
                if record.continuation:
                    join = pid is None or pid == event_pid
                elif starts_traceback:
                    if record.timestamp is None:
                        join = traceback = True
                elif traceback and (pid is None or pid == event_pid):
                    if not message or message.isspace():
                        blank += 1
                        continue
                    if message[0] in " \t":
                        join = True
                    elif "loglevel" not in fields:
                        join = True
                        traceback = False
            line = record.line
            if join:
                assert event is not None
                if event.line_count < max_event_lines:
                    event.line_count += 1
                    if line.truncated:
                        event.truncated = True
                    if not drop:
                        if more is None:
                            more = [event.message]
                        more.append(message)
                    continue
                split += 1
                event.truncated = True
            elif not fields and (not message or message.isspace()):
                blank += 1
                continue

            if event is not None:
                if drop:
                    dropped += event.line_count
                else:
                    if more is not None:
                        event.message = _joined(more)
                    emitted += 1
                    yield event
            more = None
            if join:
                # Continue the capped group: same fields, pid, traceback mode and dropping.
                assert event is not None
                fields = dict(event.fields)
            else:
                event_pid = pid
                drop = drop_debug and fields.get("loglevel") == "DEBUG"
                traceback = starts_traceback and not record.continuation
            event = Event(line.number, timestamp, message, fields, 1, line.truncated)

        if event is not None:
            if drop:
                dropped += event.line_count
            else:
                if more is not None:
                    event.message = _joined(more)
                emitted += 1
                yield event
    finally:
        stats.records += count
        stats.events += emitted
        stats.dropped += dropped
        stats.blank += blank
        stats.split += split
