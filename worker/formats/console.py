"""Zuul and Jenkins console logs: job-output.txt, console.html, devstacklog.txt.

    2018-08-01 00:44:04.804077 | localhost | ok            Zuul v3, task output of a host
    2018-08-01 00:44:04.736863 | TASK [emit-job-header]    Zuul v3, the executor's own lines
    2013-09-27 18:14:10.807 | + [[ ! -e devstack-gate ]]   Jenkins (3-digit fraction)
    2024-01-01T02:30:00.123+00:00 | ...                    ISO 8601: "T", offset (to UTC)

A host column is recognised by its shape: one hostname-like word, or Ansible's
delegation form "ubuntu-xenial -> localhost", followed by " | ". Executor lines such
as "PLAY [all]" or "Job: x" have spaces or brackets before any " | ", so they are not
mistaken for hosts.

console.html (ParseContext.html) is Jenkins' HTML rendering of the same text: its
markup (<pre>, <a href> links, plugins' <span> and <b>) is removed and its entities
(&amp; &lt; &#39; ...) decoded before the line is parsed. A removed tag leaves a word
boundary: a run of tags between two non-space characters becomes one space, so
"details.</a>FATAL:" is "details. FATAL:" and FATAL a word of its own (search engines
keep "details.FATAL" one token). Inline formatting tags (<b>, <span>, <font>, ...)
are the exception: they colour part of a word as often as a whole one, and removing
them joins what a browser shows joined ("<b>x</b>y" is "xy"). Next to a space or at
either end of the line a tag leaves nothing, so no space is doubled. A link glued to
the text before it gets a space a browser does not show ("GIT_REMOTE= https://..."):
the words are the same, which is what a search sees.
"""

from __future__ import annotations

import re
from html import unescape

from worker.formats.base import Line, ParseContext, Record
from worker.formats.timestamps import DATE_TIME, utc

NAME = "console"
TAGS: tuple[str, ...] = ("console", "console.html")

# Possessive and bounded ({0,254}+, a host name's length): a host never gives characters
# back, so a line whose text merely starts like a hostname fails at once instead of
# backtracking through the word, or reading a long one to its end.
_HOST = r"[A-Za-z0-9][\w.:@-]{0,254}+(?: -> [A-Za-z0-9][\w.:@-]{0,254}+)?"
# Groups: date, time, fraction, offset, host.
_LINE = re.compile(DATE_TIME + r" \|(?: (?:(" + _HOST + r") \|(?: |$))?+|$)", re.ASCII)
# A run of adjacent tags. [^<>] ends each attempt at the next "<", so a line of many
# "<" without ">" is scanned once, not once per "<".
_TAG = re.compile(r"(?:</?[A-Za-z][^<>]*>)+")
_TAG_NAME = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)")
# Tags that format text in a line rather than delimit anything.
_INLINE = frozenset(
    {"b", "i", "u", "s", "em", "strong", "span", "font", "code", "tt", "small", "big"}
    | {"sub", "sup", "mark", "strike", "del", "ins", "kbd", "samp", "var", "abbr"}
)


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
    """The text of one line of Jenkins' console.html (see the module's docstring)."""
    if "<" in text:
        text = _TAG.sub(_boundary, text)
    if "&" in text:
        text = _unescape(text)  # after the tags: "&lt;b&gt;" is text, not a tag
    return text


# A decimal reference longer than any code point (7 digits): html.unescape would turn
# thousands of digits into an int and fail (Python's digit limit) instead of answering
# U+FFFD as it does for every other out-of-range reference.
_HUGE_REFERENCE = re.compile(r"&#(?:[xX][0-9a-fA-F]{7,}|[0-9]{8,});?", re.ASCII)


def _unescape(text: str) -> str:
    try:
        return unescape(text)
    except ValueError:
        return unescape(_HUGE_REFERENCE.sub("\ufffd", text))


def _boundary(tags: re.Match[str]) -> str:
    text, start, end = tags.string, tags.start(), tags.end()
    if start == 0 or end == len(text) or text[start - 1].isspace() or text[end].isspace():
        return ""
    names = _TAG_NAME.findall(tags.group())
    return "" if all(name.lower() in _INLINE for name in names) else " "


def sniff(text: str) -> bool:
    return _LINE.match(text) is not None
