"""The log formats, and the choice of one for a file.

A format is a module exporting NAME, TAGS, parse_line and sniff (see base.Format).
Adding one means writing its module and listing it in _REGISTERED.
"""

from __future__ import annotations

from collections.abc import Sequence

from worker.errors import JobError
from worker.formats import apache, console, github, oslo, plain, syslog
from worker.formats.base import Format

# Earlier entries win ties when sniffing.
_REGISTERED: tuple[Format, ...] = (console, oslo, syslog, apache, github, plain)

FORMATS: dict[str, Format] = {fmt.NAME: fmt for fmt in _REGISTERED}
_BY_TAG: dict[str, Format] = {tag: fmt for fmt in _REGISTERED for tag in fmt.TAGS}
SNIFF_LINES = 50


def choose_format(tags: Sequence[str], forced: str | None, first_lines: Sequence[str]) -> Format:
    """The forced format, else the first tag's format, else the one whose sniff
    recognises most of the first non-empty lines, else plain."""
    if forced is not None:
        found = FORMATS.get(forced)
        if found is None:
            known = ", ".join(sorted(FORMATS))
            raise JobError(f"unknown format {forced!r} (known formats: {known})")
        return found
    for tag in tags:
        found = _BY_TAG.get(tag)
        if found is not None:
            return found
    return sniff_format(first_lines)


def sniff_format(first_lines: Sequence[str]) -> Format:
    # A vote rather than the first match: files often open with lines of another shape
    # (xtrace before a service's first log line, a journald "-- Logs begin" banner).
    sample = [text for text in first_lines if text.strip()][:SNIFF_LINES]
    best: Format = plain
    best_count = 0
    for fmt in _REGISTERED:
        count = sum(1 for text in sample if fmt.sniff(text))
        if count > best_count:
            best, best_count = fmt, count
    return best


__all__ = ["FORMATS", "Format", "choose_format", "sniff_format"]
