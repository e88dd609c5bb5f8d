"""Apache httpd logs, both kinds (and swift's access lines, which share the combined head):

    access (combined):  127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0"
                        200 2326 "-" "curl/7.1"   (one line)
    error (2.4):        [Wed Oct 11 14:32:52.123456 2017] [wsgi:error] [pid 1234:tid 5678] text
    error (2.2):        [Wed Oct 11 14:32:52 2017] [error] [client 10.0.0.1] text

Access lines carry a UTC offset and are converted to UTC. Error lines carry none; they
are taken as UTC like every other CI log. Error levels are named as oslo names them
(error -> ERROR, warn -> WARNING, crit -> CRITICAL) so one query finds both.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

from worker.formats.base import Line, ParseContext, Record

NAME = "apache"
TAGS: tuple[str, ...] = ("apachecombined", "apacheerror")

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
        start=1,
    )
}
_ACCESS = re.compile(
    r"(\S+) \S+ \S+ \[(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d)(:\d\d(?:\.\d+)?) ([+-]\d{4})\]"
    r' "(\S+)(?: (\S*))?[^"]*" (\d{3})',
    re.ASCII,
)
_ERROR = re.compile(
    r"\[[A-Z][a-z]{2} ([A-Z][a-z]{2}) +(\d\d?) (\d\d:\d\d:\d\d(?:\.\d+)?) (\d{4})\]"
    r" \[(?:([\w-]+):)?(\w+)\](?: \[pid (\d+)(?::tid \d+)?\])?(?: |$)",
    re.ASCII,
)
_LEVELS = {
    "error": "ERROR",
    "warn": "WARNING",
    "crit": "CRITICAL",
    "info": "INFO",
    "debug": "DEBUG",
    "notice": "NOTICE",
    "alert": "ALERT",
    "emerg": "EMERGENCY",
}


def parse_line(line: Line, context: ParseContext) -> Record:
    text = line.text
    if text.startswith("["):
        return _error_line(line, text)
    match = _ACCESS.match(text)
    if match is None:
        return Record(line, None, text)
    client, day, month, year, hour, minute, rest, offset, verb, request, status = match.groups()
    timestamp = _utc(year, month, day, hour, minute, rest, offset)
    if timestamp is None:
        return Record(line, None, text)
    fields = {"clientip": client, "verb": verb, "response": status}
    if request:
        fields["request"] = request
    # The whole line is the message: the timestamp sits in its middle, not in a prefix.
    return Record(line, timestamp, text, fields)


def _error_line(line: Line, text: str) -> Record:
    match = _ERROR.match(text)
    if match is None:
        return Record(line, None, text)
    month, day, time, year, module, level, pid = match.groups()
    number = _MONTHS.get(month)
    if number is None:
        return Record(line, None, text)
    timestamp = f"{year}-{number:02d}-{int(day):02d}T{time}Z"
    fields = {"loglevel": _LEVELS.get(level) or level.upper()}
    if module:
        fields["module"] = module
    if pid is not None:
        fields["pid"] = pid
    return Record(line, timestamp, text[match.end() :], fields)


def _utc(
    year: str, month: str, day: str, hour: str, minute: str, rest: str, offset: str
) -> str | None:
    number = _MONTHS.get(month)
    if number is None:
        return None
    if offset in ("+0000", "-0000"):
        return f"{year}-{number:02d}-{day}T{hour}:{minute}{rest}Z"
    shift = int(offset[1:3]) * 60 + int(offset[3:5])
    if offset[0] == "+":
        shift = -shift
    days, minutes = divmod(int(hour) * 60 + int(minute) + shift, 24 * 60)
    hour_minute = f"{minutes // 60:02d}:{minutes % 60:02d}"
    return f"{_shifted_date(int(year), number, int(day), days)}T{hour_minute}{rest}Z"


@lru_cache(maxsize=64)
def _shifted_date(year: int, month: int, day: int, days: int) -> str:
    # Cached: a log spans few dates, so few date objects are ever built.
    return date.fromordinal(date(year, month, day).toordinal() + days).isoformat()


def sniff(text: str) -> bool:
    if text.startswith("["):
        return _ERROR.match(text) is not None
    return _ACCESS.match(text) is not None
