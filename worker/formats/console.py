"""Zuul and Jenkins console logs: job-output.txt, console.html, devstacklog.txt.

    2018-08-01 00:44:04.804077 | localhost | ok            Zuul v3, task output of a host
    2018-08-01 00:44:04.736863 | TASK [emit-job-header]    Zuul v3, the executor's own lines
    2013-09-27 18:14:10.807 | + [[ ! -e devstack-gate ]]   Jenkins (3-digit fraction)
    2024-01-01T02:30:00.123+00:00 | ...                    ISO 8601: "T", offset (to UTC)

A host column is recognised by its shape: one hostname-like word, or Ansible's
delegation form "ubuntu-xenial -> localhost", followed by " | ". Executor lines such
as "PLAY [all]" or "Job: x" have spaces or brackets before any " | ", so they are not
mistaken for hosts.

console.html (ParseContext.html) is Jenkins' HTML rendering of the same text: <pre>,
<a href> links and entities are removed before the line is parsed.
"""

from __future__ import annotations

import re
from html import unescape

from worker.formats.base import Line, ParseContext, Record
from worker.formats.timestamps import DATE_TIME, utc

NAME = "console"
TAGS: tuple[str, ...] = ("console", "console.html")

# Possessive (*+): a host never gives characters back, so a line whose text merely
# starts like a hostname fails at once instead of backtracking through the word.
_HOST = r"[A-Za-z0-9][\w.:@-]*+(?: -> [A-Za-z0-9][\w.:@-]*+)?"
# Groups: date, time, fraction, offset, host.
_LINE = re.compile(DATE_TIME + r" \|(?: (?:(" + _HOST + r") \|(?: |$))?+|$)", re.ASCII)
_TAG = re.compile(r"<[^>]*>")


def parse_line(line: Line, context: ParseContext) -> Record:
    text = line.text
    if context.html:
        text = clean_html(text)
    match = _LINE.match(text)
    if match is None:
        return Record(line, None, text)
    date, time, fraction, offset, host = match.groups()
    timestamp = utc(date, time, fraction, offset)
    if timestamp is None:
        return Record(line, None, text)
    message = text[match.end() :]
    if host is None:
        return Record(line, timestamp, message)
    return Record(line, timestamp, message, {"host": host})


def clean_html(text: str) -> str:
    """The text of one line of Jenkins' console.html."""
    if "<" in text:
        text = _TAG.sub("", text)
    if "&" in text:
        text = unescape(text)
    return text


def sniff(text: str) -> bool:
    return _LINE.match(text) is not None
