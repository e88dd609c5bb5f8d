"""syslog (rsyslog's traditional format) and journald exports (`journalctl -o short-precise`):

    Jun  9 15:41:36 devstack-precise-hpcloud-b3-227769 object-server: Started child 32090
    Mar 28 12:20:44.172534 ubuntu-xenial cinder-api[8526]: DEBUG oslo_concurrency.lockutils [-] ...

The year is not in the line: it is the reference time's year, or the year before when
the line's month lies after the reference month (a log that began in December and was
collected in January). The host is empty in rsyslog's "last message repeated" lines.
Messages keep their leading whitespace, which is how traceback frames are told apart.
"""

from __future__ import annotations

import re
from functools import lru_cache

from worker.formats.base import Line, ParseContext, Record
from worker.formats.oslo import LEVEL_MODULE

NAME = "syslog"
TAGS: tuple[str, ...] = ("syslog",)

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_HEAD = r"([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d:\d\d:\d\d(?:\.\d+)?) "
_LINE = re.compile(_HEAD + r"(\S*) ([^\s\[:]+)(?:\[(\d+)\])?:(?: |$)", re.ASCII)
_TIMESTAMP = re.compile(_HEAD, re.ASCII)


def parse_line(line: Line, context: ParseContext) -> Record:
    text = line.text
    match = _LINE.match(text)
    if match is None:
        # A syslog timestamp without the "program:" part still dates the line.
        match = _TIMESTAMP.match(text)
        if match is None:
            return Record(line, None, text)
        timestamp = _timestamp(context, *match.group(1, 2, 3))
        if timestamp is None:
            return Record(line, None, text)
        return Record(line, timestamp, text[match.end() :])
    month, day, time, host, program, pid = match.groups()
    timestamp = _timestamp(context, month, day, time)
    if timestamp is None:
        return Record(line, None, text)
    fields = {"program": program}
    if host:
        fields["host"] = host
    if pid is not None:
        fields["pid"] = pid
    message = text[match.end() :]
    oslo = LEVEL_MODULE.match(message)
    if oslo is None:
        return Record(line, timestamp, message, fields)
    level, module, request_id = oslo.groups()
    fields["loglevel"] = level
    fields["module"] = module
    if level == "TRACE":
        return Record(line, timestamp, message[oslo.end(2) + 1 :], fields, True)
    if request_id is not None:
        fields["request_id"] = request_id
    return Record(line, timestamp, message[oslo.end() :], fields)


def _timestamp(context: ParseContext, month: str, day: str, time: str) -> str | None:
    reference = context.reference_time
    prefix = _date_prefix(month, reference.year, reference.month)
    if prefix is None:
        return None
    return f"{prefix}{day if len(day) == 2 else '0' + day}T{time}Z"


@lru_cache(maxsize=64)
def _date_prefix(month: str, reference_year: int, reference_month: int) -> str | None:
    """The "YYYY-MM-" of a month name (None when it is not one)."""
    number = _MONTHS.get(month)
    if number is None:
        return None
    year = reference_year - 1 if number > reference_month else reference_year
    return f"{year:04d}-{number:02d}-"


def sniff(text: str) -> bool:
    match = _LINE.match(text)
    return match is not None and match.group(1) in _MONTHS
