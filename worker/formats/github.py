"""GitHub Actions job logs: `2022-05-20T19:22:05.7100220Z text`.

The runner writes UTC ISO-8601 timestamps already, with 7 fractional digits, so the
timestamp is kept as written once `timestamps.utc` has found it a real date and time.
At most 9 fractional digits (nanoseconds) are a time: the pattern then reads a bounded
prefix of any line, never a whole run of digits.
"""

from __future__ import annotations

import re

from worker.formats.base import Line, ParseContext, Record
from worker.formats.timestamps import utc

NAME = "github"
TAGS: tuple[str, ...] = ()

_LINE = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z(?: |$)", re.ASCII)


def parse_line(line: Line, context: ParseContext) -> Record:
    text = line.text
    match = _LINE.match(text)
    if match is None:
        return Record(line, None, text)
    timestamp = utc(*match.groups())
    if timestamp is None:
        return Record(line, None, text)
    return Record(line, timestamp, text[match.end() :])


def sniff(text: str) -> bool:
    return _LINE.match(text) is not None
