"""GitHub Actions job logs: `2022-05-20T19:22:05.7100220Z text`.

The runner writes UTC ISO-8601 timestamps already, with 7 fractional digits, so the
timestamp is used as written. At most 9 fractional digits (nanoseconds) are a time: the
pattern then reads a bounded prefix of any line, never a whole run of digits.
"""

from __future__ import annotations

import re

from worker.formats.base import Line, ParseContext, Record

NAME = "github"
TAGS: tuple[str, ...] = ()

_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z(?: |$)", re.ASCII)


def parse_line(line: Line, context: ParseContext) -> Record:
    text = line.text
    match = _LINE.match(text)
    if match is None:
        return Record(line, None, text)
    end = match.end()
    if text[end - 1] == " ":
        return Record(line, text[: end - 1], text[end:])
    return Record(line, text[:end], "")


def sniff(text: str) -> bool:
    return _LINE.match(text) is not None
