"""Text without known structure: every line is its own message, without a timestamp."""

from __future__ import annotations

from worker.formats.base import Line, ParseContext, Record

NAME = "plain"
TAGS: tuple[str, ...] = ()


def parse_line(line: Line, context: ParseContext) -> Record:
    return Record(line, None, line.text)


def sniff(text: str) -> bool:
    # The fallback when nothing else matches; it never claims a file by itself.
    return False
