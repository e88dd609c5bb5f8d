"""The types every log format works with.

A format turns one decoded line into a `Record`; `worker.events` then groups records
into documents-to-be. Formats never see more than one line, which keeps them plain,
fast and testable line by line.

A format is a module of `worker.formats` exporting what `Format` below names; the
registry in `worker/formats/__init__.py` lists those modules.

Line patterns are compiled with re.ASCII, so that digit, word and space classes match
ASCII only: timestamps, host names and log levels are ASCII (a year in other digits is
no date an engine parses), and ASCII classes are tested faster, which counts here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

# The first line of every Python traceback.
TRACEBACK = "Traceback (most recent call last):"


@dataclass(slots=True)
class Line:
    """One decoded line of a log file."""

    number: int  # 1-based line number in the decompressed file
    text: str  # without the line terminator, ANSI codes removed
    truncated: bool = False  # cut at the configured maximum line length


@dataclass(slots=True)
class Record:
    """What a format understood of one line.

    `timestamp` is ISO-8601 in UTC ending in "Z" (e.g. "2013-09-27T18:22:11.255Z"),
    keeping the line's own fractional digits, or None when the line has no timestamp.
    `message` is the line without its timestamp/level prefix.
    `fields` holds what the format parsed: loglevel, module, pid, request_id,
    global_request_id, instance, host, program.
    `continuation` is set by formats that know a line belongs to the previous event
    (an oslo TRACE line, a line repeating oslo.log's exception prefix); plain traceback
    detection is done by `worker.events`.
    `fields` is read, never changed, downstream: a format may hand the same dict to
    the lines that repeat one prefix (see ParseContext.repeated).
    """

    line: Line
    timestamp: str | None
    message: str
    fields: dict[str, str] = field(default_factory=dict)
    continuation: bool = False


@dataclass(slots=True)
class ParseContext:
    """What a format may need beyond the line itself."""

    # The year of log lines that carry none (syslog, journald) is taken from here:
    # the build's time when known, else the file's Last-Modified time.
    reference_time: datetime
    # The file is HTML (console.html): markup and entities are removed before parsing.
    # Set from the file name, not from tags: job-output.txt is tagged "console.html"
    # too, yet is plain text whose literal "<...>" must survive.
    html: bool = False
    # A prefix the next lines are likely to repeat, with what it parsed to: (prefix,
    # timestamp, fields). An oslo traceback is hundreds of TRACE lines that differ only
    # after "<timestamp> <pid> TRACE <module> "; a str.startswith replaces the regex.
    repeated: tuple[str, str, dict[str, str]] | None = None
    # The head (the text before the message, less any timestamp) of the last line that
    # opened a traceback written with oslo.log's logging_exception_prefix, which every
    # line of that traceback repeats: see oslo.continues_traceback.
    exception_head: str | None = None
    # What a year-less timestamp reads as in this file, by the line's text up to its
    # second ("Jun  9 15:48:42" -> "2015-06-09T15:48:42", or None for no real date):
    # the year comes from reference_time, so the memo is the file's (see syslog).
    seconds: dict[str, str | None] = field(default_factory=dict)


class Format(Protocol):
    """What a format module exports (modules satisfy this protocol structurally)."""

    NAME: str
    # Job tags that select this format without sniffing (see historical-index.md).
    TAGS: tuple[str, ...]

    def parse_line(self, line: Line, context: ParseContext) -> Record: ...

    def sniff(self, text: str) -> bool: ...
