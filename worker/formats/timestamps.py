"""The one reader of log timestamps: pattern fragments for the formats' line patterns,
and `utc`, which turns what they captured into the ISO-8601 UTC string a Record holds.

    2013-09-27 18:23:42.923          oslo.log, Zuul consoles
    2013-09-27 18:23:42,923          Python logging's default (a comma before the fraction)
    2024-01-01T02:30:00.123456+00:00 RFC 3339 (rsyslog's file format, `T` separator)
    2013-09-27 18:23:42.923+0200     an offset: converted to UTC

A date that no calendar has (2013-13-45, 25:61:99, Feb 30) is not a timestamp: `utc`
returns None and the format keeps the line's text as it is, so no document is dated
(and indexed) by a day that does not exist.

`utc` runs once per line of every log, so the common case (no offset, the date and
second of the line before, else ones seen before) costs two string comparisons (else
set lookups) and one f-string.
"""

from __future__ import annotations

from datetime import date as Date
from functools import lru_cache

# Groups: date; time to the second; fraction digits or None; offset or None.
DATE = r"(\d{4}-\d\d-\d\d)"
# Bounded repeats here and in the formats' patterns: no real value is longer (a fraction
# of 9 digits is a nanosecond), and a line that only starts like one is given up after
# that many characters instead of being read to its end.
TIME = r"(\d\d:\d\d:\d\d)(?:[.,](\d{1,9}+))?+"
OFFSET = r"(Z|[+-]\d\d(?::?\d\d)?+)?+"
DATE_TIME = DATE + "[ T]" + TIME + OFFSET

# English month abbreviations, as syslog and Apache write them.
MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}

_UTC_OFFSETS = frozenset({"Z", "+00:00", "-00:00", "+0000", "-0000", "+00", "-00"})
_DAY_MINUTES = 24 * 60


def utc(date: str, time: str, fraction: str | None, offset: str | None = None) -> str | None:
    """ "YYYY-MM-DDTHH:MM:SS[.fraction]Z" in UTC, keeping the line's own fraction digits,
    or None when the date or time is impossible. `date` is "YYYY-MM-DD", `time`
    "HH:MM:SS" (ASCII digits, as the fragments above capture them), `offset` "Z",
    "+HH", "+HHMM" or "+HH:MM"."""
    global _last_date, _last_time
    # Compared with the last line's first: equal strings compare without hashing, and
    # lines come many to a date and often several to a second.
    if date != _last_date:
        if date not in _REAL_DATES and not _real(date):
            return None
        _last_date = date
    if time != _last_time:
        if time not in _REAL_TIMES and not _real_time(time):
            return None
        _last_time = time
    if offset is None or offset in _UTC_OFFSETS:
        if fraction is None:
            return f"{date}T{time}Z"
        return f"{date}T{time}.{fraction}Z"
    east = _offset_minutes(offset)
    if east is None:
        return None
    days, minutes = divmod(int(time[:2]) * 60 + int(time[3:5]) - east, _DAY_MINUTES)
    day = _shifted(date, days)
    if day is None:
        return None
    rest = time[5:] if fraction is None else f"{time[5:]}.{fraction}"
    return f"{day}T{minutes // 60:02d}:{minutes % 60:02d}{rest}Z"


# The last real date and time of day utc was given (only real ones are kept here, so a
# thread reading an older value still reads a real one).
_last_date = ""
_last_time = ""

# The real dates seen: a set, not lru_cache, as this is looked up for every line (a
# log spans few dates). Bounded, as lines choose what is put in it.
_REAL_DATES: set[str] = set()
_MAX_DATES = 4096


def _real(date: str) -> bool:
    try:
        Date.fromisoformat(date)
    except ValueError:
        return False
    if len(_REAL_DATES) >= _MAX_DATES:
        _REAL_DATES.clear()
    _REAL_DATES.add(date)
    return True


# The real times of day seen, likewise ("HH:MM:SS": at most 86,400, bounded anyway).
_REAL_TIMES: set[str] = set()
_MAX_TIMES = 16384


def _real_time(time: str) -> bool:
    # "24:00:00" >= "24"; minutes and seconds are two digits, so the first one decides.
    if time >= "24" or time[3] > "5" or time[6] > "5":
        return False
    if len(_REAL_TIMES) >= _MAX_TIMES:
        _REAL_TIMES.clear()
    _REAL_TIMES.add(time)
    return True


@lru_cache(maxsize=64)
def _offset_minutes(offset: str) -> int | None:
    """Minutes east of UTC, or None when the offset is no real one (over 23:59)."""
    hours = int(offset[1:3])
    minutes = int(offset[-2:]) if len(offset) > 3 else 0
    if hours > 23 or minutes > 59:
        return None
    total = hours * 60 + minutes
    return -total if offset[0] == "-" else total


@lru_cache(maxsize=512)
def _shifted(date: str, days: int) -> str | None:
    """The date `days` after `date` (-1, 0 or 1), None beyond year 1 or 9999."""
    if not days:
        return date
    try:
        return Date.fromordinal(Date.fromisoformat(date).toordinal() + days).isoformat()
    except (ValueError, OverflowError):
        return None
