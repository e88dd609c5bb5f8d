"""Apache httpd logs, both kinds (and swift's access lines, which share the combined head):

    access (combined):  127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0"
                        200 2326 "-" "curl/7.1"   (one line)
    error (2.4):        [Wed Oct 11 14:32:52.123456 2017] [core:error] [pid 1234:tid 5678]
                        [client 10.0.0.1:5555] text   (one line; mod_wsgi 4 writes
                        [wsgi:error] and [remote ...], mod_wsgi 3 an empty module, [:error])
    error (2.2):        [Wed Oct 11 14:32:52 2017] [error] [client 10.0.0.1] text

Access lines carry a UTC offset and are converted to UTC. Error lines carry none; they
are taken as UTC like every other CI log. Error levels are named as oslo names them
(error -> ERROR, warn -> WARNING, crit -> CRITICAL) so one query finds both. The client
address is `clientip` on both kinds (the name the historical index's access lines had).
An error line's message is what follows its prefix (time, level, pid, client), so the
frames of a traceback the application wrote keep their indentation.

Every pattern here is linear in the line (tools/bench adversarial), and most of them
read a bounded part of it: each field has a length limit (addresses and user names 255
characters, a module name 64, a level 16, a fraction 9 digits), so a line that is not of
this format fails after a few hundred characters instead of being scanned to its end at
several nanoseconds a character.
"""

from __future__ import annotations

import re

from worker.formats.base import Line, ParseContext, Record
from worker.formats.timestamps import MONTHS, utc

NAME = "apache"
TAGS: tuple[str, ...] = ("apachecombined", "apacheerror")

# The access line up to the request's opening quote. The request itself may hold quotes
# (httpd writes them as \"), so where it ends is found by scans in C (see _status).
# Matching the request inside this pattern either backtracks through it when the closing
# quote is missing (quadratic: 3 s for 64 KiB) or loops once per character or quote, 5
# to 40 times slower than a scan.
_ACCESS = re.compile(
    r"(\S{1,255}+) \S{1,255}+ \S{1,255}+ \["
    r"(\d\d)/([A-Z][a-z]{2})/(\d{4}):(\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?"
    r' ([+-]\d{4})\] "',
    re.ASCII,
)
# Groups: month, day, time, fraction, year, module (empty in "[:error]"; None in 2.2's "[error]"),
# level, pid. The message starts at the end, after one space.
_ERROR = re.compile(
    r"\[[A-Z][a-z]{2} ([A-Z][a-z]{2}) ++(\d\d?) (\d\d:\d\d:\d\d)(?:\.(\d{1,9}))? (\d{4})\]"
    r" \[(?:([\w-]{0,64}+):)?(\w{1,16}+)\](?: \[pid (\d{1,10}+)(?::tid \d{1,20}+)?\])?(?: |$)",
    re.ASCII,
)
# httpd's "[client ADDRESS]", mod_wsgi's "[remote ADDRESS]" for what the application wrote.
_CLIENT = re.compile(r"\[(?:client|remote) ([^\s\]]{1,255}+)\](?: |$)", re.ASCII)
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
    parsed = _access(text)
    if parsed is None:
        return Record(line, None, text)
    timestamp, fields = parsed
    # The whole line is the message: the timestamp sits in its middle, not in a prefix.
    return Record(line, timestamp, text, fields)


def _access(text: str) -> tuple[str, dict[str, str]] | None:
    """The UTC timestamp and fields of an access line, None for any other line."""
    match = _ACCESS.match(text)
    if match is None:
        return None
    start = match.end()
    status = _status(text, start)
    if status is None:
        return None
    close, response = status
    client, day, month, year, time, fraction, offset = match.groups()
    number = MONTHS.get(month)
    if number is None:
        return None
    timestamp = utc(f"{year}-{number:02d}-{day}", time, fraction, offset)
    if timestamp is None:
        return None
    # "GET /path HTTP/1.1", or "-" when httpd read no request line (no verb then).
    verb, _, rest_of_request = text[start:close].partition(" ")
    request = rest_of_request.partition(" ")[0]
    fields = {"clientip": client, "response": response}
    if verb and request:
        fields["verb"] = verb
        fields["request"] = request
    return timestamp, fields


_STATUS = re.compile(r'" (\d{3})', re.ASCII)
# A quoted field's opening. Searched by the regex engine, whose literal scan is about
# four times faster than str.find's for a two-character needle.
_FIELD_OPENING = re.compile(' "')


def _status(text: str, start: int) -> tuple[int, str] | None:
    """Where the request that opens at `start` ends (its closing quote) and the status
    after it, or None when the line has neither.

    httpd writes a quote inside a quoted field (the request, the referer, the agent) as
    \", so a space followed by a quote opens a field and never occurs inside one. After
    the request come fields without quotes (status, size), then, in the combined format,
    the quoted ones: the request's closing quote is the last quote before the first
    space-quote after it (or before the line's end). Two scans in C and one match: no
    quote inside the request is ever a candidate, whatever the request holds.
    """
    opening = _FIELD_OPENING.search(text, start)
    close = text.rfind('"', start, len(text) if opening is None else opening.start())
    if close < 0:
        return None
    status = _STATUS.match(text, close)
    return None if status is None else (close, status[1])


def _error_line(line: Line, text: str) -> Record:
    match = _ERROR.match(text)
    if match is None:
        return Record(line, None, text)
    month, day, time, fraction, year, module, level, pid = match.groups()
    number = MONTHS.get(month)
    # Error lines carry no offset: UTC, like every other CI log without one.
    timestamp = None if number is None else utc(f"{year}-{number:02d}-{day:0>2}", time, fraction)
    if timestamp is None:
        return Record(line, None, text)
    fields = {"loglevel": _LEVELS.get(level) or level.upper()}
    if module:
        fields["module"] = module
    if pid is not None:
        fields["pid"] = pid
    end = match.end()
    client = _CLIENT.match(text, end)
    if client is not None:
        address = client[1]
        # 2.4 (a "module:" before the level) writes the client's port after its
        # address, IPv6 ones too ("::1:5555"); 2.2 writes the address alone ("::1").
        host, colon, port = address.rpartition(":")
        if module is not None and colon and port.isdigit():
            address = host
        fields["clientip"] = address
        end = client.end()
    return Record(line, timestamp, text[end:], fields)


def sniff(text: str) -> bool:
    if text.startswith("["):
        return _ERROR.match(text) is not None
    return _access(text) is not None
