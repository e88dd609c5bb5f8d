"""syslog (rsyslog's traditional and RFC 3339 file formats) and journald exports
(`journalctl -o short-precise`):

    Jun  9 15:41:36 devstack-precise-hpcloud-b3-227769 object-server: Started child 32090
    Mar 28 12:20:44.172534 ubuntu-xenial cinder-api[8526]: DEBUG oslo_concurrency.lockutils [-] ...
    2024-01-01T02:30:00.123456+00:00 ubuntu-noble sshd[812]: Accepted publickey for zuul
    <13>Jan  1 02:30:00 ubuntu-noble zuul: a message as a relay received it, priority first

The priority "<PRI>" a relay keeps in front is skipped. RFC 3339 lines carry their
year and offset (converted to UTC). The traditional ones have no year, and their
time is taken as UTC: the year is the latest that puts the line no later than two days
after the reference time (the build's end, in UTC), so a log that began in December
and was collected in January gets both years right, and a line stamped a little after
the reference (clock skew, a build end time given before the last lines were written)
stays in the reference's year. The host is empty in rsyslog's "last message repeated"
lines. Messages keep their leading whitespace, which is how traceback frames are told
apart; oslo.log's head in a message (level, module, request context) is read as the
oslo format reads it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from worker.formats.base import Line, ParseContext, Record
from worker.formats.oslo import LEVEL_MODULE, add_context, continues_traceback
from worker.formats.timestamps import DATE, MONTHS, OFFSET, TIME, utc

NAME = "syslog"
TAGS: tuple[str, ...] = ("syslog",)

# How far after the reference time a year-less line may lie and keep its year.
AHEAD = timedelta(days=2)
# Groups: month name, day, time, fraction (traditional); date, time, fraction, offset
# (RFC 3339, always with its "T"). Possessive: a head never gives characters back.
_TRADITIONAL = r"([A-Z][a-z]{2}) {1,2}(\d{1,2}) " + TIME
_RFC3339 = DATE + "T" + TIME + OFFSET
_HEAD = r"(?:<\d{1,3}>)?+(?:" + _TRADITIONAL + "|" + _RFC3339 + ") "
# Then host (empty in "last message repeated"; never a console's "|"), program, pid,
# bounded as timestamps.py says why.
_LINE = re.compile(
    _HEAD + r"([\w.:-]{0,255}+) ([^\s\[:]{1,255}+)(?:\[(\d{1,10}+)\])?+:(?: |$)", re.ASCII
)
_TIMESTAMP = re.compile(_HEAD, re.ASCII)


def parse_line(line: Line, context: ParseContext) -> Record:
    text = line.text
    match = _LINE.match(text)
    if match is None:
        # A syslog timestamp without the "program:" part still dates the line.
        match = _TIMESTAMP.match(text)
        if match is None:
            return Record(line, None, text)
        timestamp = _timestamp(context, match, *match.groups())
        if timestamp is None:
            return Record(line, None, text)
        return Record(line, timestamp, text[match.end() :])
    month, day, time, fraction, date, iso_time, iso_fraction, offset, host, program, pid = (
        match.groups()
    )
    timestamp = _timestamp(
        context, match, month, day, time, fraction, date, iso_time, iso_fraction, offset
    )
    if timestamp is None:
        return Record(line, None, text)
    fields = {"program": program}
    if host:
        fields["host"] = host
    if pid is not None:
        fields["pid"] = pid
    start = match.end()
    oslo = LEVEL_MODULE.match(text, start)
    if oslo is None:
        return Record(line, timestamp, text[start:], fields)
    level, module = oslo.group(1, 2)
    fields["loglevel"] = level
    fields["module"] = module
    if level == "TRACE":
        return Record(line, timestamp, text[oslo.end(2) + 1 :], fields, True)
    message = text[oslo.end() :]
    if oslo.group(3) is not None:
        add_context(fields, *oslo.group(4, 5, 6))
        return Record(line, timestamp, message, fields)
    instance = oslo.group(6)
    if instance is not None:
        fields["instance"] = instance
    # The host, program and pid with oslo.log's exception prefix: every line of one
    # traceback repeats them, while the timestamps differ.
    head = text[match.start(9) : oslo.end()]
    return Record(line, timestamp, message, fields, continues_traceback(context, head, message))


def _timestamp(
    context: ParseContext,
    match: re.Match[str],
    month: str | None,
    day: str,
    time: str,
    fraction: str | None,
    date: str,
    iso_time: str,
    iso_fraction: str | None,
    offset: str | None,
) -> str | None:
    """The timestamp of _HEAD's groups in `match`: traditional (year-less) or RFC 3339
    (the groups of the form a line does not have are None)."""
    if month is None:
        return utc(date, iso_time, iso_fraction, offset)
    # Lines come many to a second: what their second reads as is worked out once.
    seconds = context.seconds
    head = match.string[: match.end(3)]
    if head in seconds:
        second = seconds[head]
    else:
        if len(seconds) >= _MAX_SECONDS:
            seconds.clear()
        second = seconds[head] = _second(month, day, time, context.reference_time)
    if second is None:
        return None
    return f"{second}Z" if fraction is None else f"{second}.{fraction}Z"


# Bounds ParseContext.seconds: lines choose what is put in it.
_MAX_SECONDS = 4096


def _second(month: str, day: str, time: str, reference: datetime) -> str | None:
    """ "YYYY-MM-DDTHH:MM:SS" of a year-less line's month, day and time, or None."""
    dates = _dates(month, day, reference)
    if dates is None:
        return None
    on_or_before, after, limit = dates
    # utc refuses an impossible date or time; with no offset and no fraction, it
    # answers the second itself and "Z".
    stamp = utc(on_or_before if time <= limit else after, time, None)
    return None if stamp is None else stamp[:-1]


@lru_cache(maxsize=256)
def _dates(month: str, day: str, reference: datetime) -> tuple[str, str, str] | None:
    """The dates a year-less line of `month` and `day` has when its time is at most
    `limit`, and when it is later: the same unless the day is the last one a line may
    have. None when `month` is no month name."""
    number = MONTHS.get(month)
    if number is None:
        return None
    # A reference without a zone is UTC, as every time here (astimezone would take it
    # for the worker's local time).
    utc_reference = reference.replace(tzinfo=UTC) if reference.tzinfo is None else reference
    latest = utc_reference.astimezone(UTC) + AHEAD
    year = latest.year
    if (number, int(day)) > (latest.month, latest.day):
        year -= 1
    date = f"{year:04d}-{number:02d}-{int(day):02d}"
    if (number, int(day)) != (latest.month, latest.day):
        return date, date, "24"  # every time of day is before "24"
    return date, f"{year - 1:04d}-{number:02d}-{int(day):02d}", latest.strftime("%H:%M:%S")


def sniff(text: str) -> bool:
    return _LINE.match(text) is not None
