"""oslo.log service logs (devstack screen-*.txt, tempest.txt, /var/log/nova/*.log):

    2013-09-27 18:23:42.923 2820 ERROR neutron.api.v2.resource [-] delete failed
    2013-09-27 18:23:42.923 2820 TRACE neutron.api.v2.resource Traceback (most recent ...
    2013-09-27 18:22:39.743 DEBUG nova.osapi_compute.wsgi.server [req-1 demo demo] text

The pid is absent in some devstack logs. TRACE lines repeat the traceback of the
ERROR line before them, so they are marked as its continuation. Lines of other shapes
(xtrace "+ ..." before the service starts, XML/JSON bodies, blank lines) keep their
text and get no timestamp; a line that starts with a timestamp but is garbled (two
processes writing at once) keeps the timestamp.
"""

from __future__ import annotations

import re

from worker.formats.base import Line, ParseContext, Record

NAME = "oslo"
TAGS: tuple[str, ...] = ("oslofmt",)

LEVELS = ("DEBUG", "INFO", "AUDIT", "WARNING", "ERROR", "CRITICAL", "TRACE")
_LEVEL = "(" + "|".join(LEVELS) + ")"

# The level, the module, then the request context, "[-]" or "[req-... user project]",
# and the request id in it: matched in C, as nearly every line of these files has one.
# Possessive (++, *+) where what follows can never be matched by giving characters back.
_HEAD = _LEVEL + r" (\S++)(?: |$)(?:\[(?:[^\]]*?(req-[^ \]]*+))?[^\]]*+\] ?)?"
_LINE = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d++)?) (?:(\d++) )?" + _HEAD, re.ASCII)
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)(?: |$)", re.ASCII)
# The same head where another format (journald) already took the timestamp and pid:
# groups level, module, request id. On a TRACE line the message starts after the module
# (end of group 2, plus its space): a "[" there is traceback text, not a context.
LEVEL_MODULE = re.compile(_HEAD, re.ASCII)


def parse_line(line: Line, context: ParseContext) -> Record:
    text = line.text
    repeated = context.repeated
    if repeated is not None and text.startswith(repeated[0]):
        prefix, timestamp, fields = repeated
        return Record(line, timestamp, text[len(prefix) :], fields, True)
    match = _LINE.match(text)
    if match is None:
        match = _TIMESTAMP.match(text)
        if match is None:
            return Record(line, None, text)
        date, time = match.groups()
        return Record(line, f"{date}T{time}Z", text[match.end() :])
    date, time, pid, level, module, request_id = match.groups()
    fields = {"loglevel": level, "module": module}
    if pid is not None:
        fields["pid"] = pid
    if level == "TRACE":
        # No request context on TRACE lines: a "[" here is traceback text.
        start = match.end(5) + 1
        timestamp = f"{date}T{time}Z"
        if start <= len(text):
            # Any line that starts with this prefix, space included, parses to the
            # same timestamp and fields: the pattern cannot match it differently.
            context.repeated = (text[:start], timestamp, fields)
        return Record(line, timestamp, text[start:], fields, True)
    if request_id is not None:
        fields["request_id"] = request_id
    return Record(line, f"{date}T{time}Z", text[match.end() :], fields)


def sniff(text: str) -> bool:
    return _LINE.match(text) is not None
