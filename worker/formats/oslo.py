"""oslo.log service logs (devstack screen-*.txt, tempest.txt, /var/log/nova/*.log):

    2013-09-27 18:23:42.923 2820 ERROR neutron.api.v2.resource [-] delete failed
    2013-09-27 18:23:42.923 2820 TRACE neutron.api.v2.resource Traceback (most recent ...
    2013-09-27 18:22:39.743 DEBUG nova.osapi_compute.wsgi.server [req-1 demo demo] text
    2024-05-02 10:01:02.345 812 INFO nova.compute.manager [None req-9 admin admin - - - -] \
        [instance: 3f2a...] Took 1.2 seconds to spawn the instance on the hypervisor.

The pid is absent in some devstack logs. After the module comes the request context,
read with its grammar (anything else in brackets is message text):

    [-]                                   logging_default_format_string: no request
    [req-R user project ...]              logging_context_format_string before oslo.log 3.22
    [None req-R user project - - - -]     since: "[global_request_id request_id user_identity]",
    [req-G req-R user project - - - -]    the global id "None" when the request has none

then the instance (instance_format, "[instance: <uuid>] "). They become request_id,
global_request_id and instance.

Tracebacks. Up to oslo.log 1.1 every traceback line was written as a TRACE line
(logging_exception_prefix "<ts> <pid> TRACE <module> <instance>"); since, the default
prefix says ERROR, so a traceback is a run of "<ts> <pid> ERROR <module> [instance: ...]"
lines, its message line before them. Both are marked as continuations of the event
before them. An exception-prefix line is told from a log line by its missing request
context: a log line always has one ("[-]" at least), the prefix never.

Lines of other shapes (xtrace "+ ..." before the service starts, XML/JSON bodies,
blank lines) keep their text and get no timestamp; a line that starts with a
timestamp but is garbled (two processes writing at once) keeps the timestamp.
"""

from __future__ import annotations

import re

from worker.formats.base import TRACEBACK, Line, ParseContext, Record
from worker.formats.timestamps import DATE_TIME, utc

NAME = "oslo"
TAGS: tuple[str, ...] = ("oslofmt",)

LEVELS = ("DEBUG", "INFO", "AUDIT", "WARNING", "ERROR", "CRITICAL", "TRACE")
_LEVEL = "(" + "|".join(LEVELS) + ")"

# Possessive (++, {m,n}+) everywhere: no part of a head gives characters back, so each
# line is read in one pass whatever it holds (an unclosed "[req- req- ..." included);
# bounded (ids of 64 characters, a module or user identity of 255 and 1024) so that a
# line that only starts like a head costs what a short one does.
_REQUEST = r"req-[\w-]{1,64}+"
_CONTEXT = rf"(\[(?:-|(?:None )?({_REQUEST})(?: ({_REQUEST}))?+(?: [^\]]{{0,1024}}+)?+)\](?: |$))?+"
_INSTANCE = r"\[instance: ([\w-]{1,64}+)\](?: |$)"
# Groups: level, module, context (set when there is one), its first request id, its
# second (then the first is the global one), instance. Matched in C, as nearly every
# line of these files has one.
_HEAD = _LEVEL + r" (\S{1,255}+)(?: |$)" + _CONTEXT + "(?:" + _INSTANCE + ")?+"
# Groups: date, time, fraction, offset, pid, then _HEAD's.
_LINE = re.compile(DATE_TIME + r" (?:(\d{1,10}+) )?+" + _HEAD, re.ASCII)
_TIMESTAMP = re.compile(DATE_TIME + "(?: |$)", re.ASCII)
_TRACE_INSTANCE = re.compile(_INSTANCE, re.ASCII)
# The same head where another format (journald) already took the timestamp and pid.
LEVEL_MODULE = re.compile(_HEAD, re.ASCII)


def parse_line(line: Line, context: ParseContext) -> Record:
    text = line.text
    repeated = context.repeated
    if repeated is not None and text.startswith(repeated[0]):
        prefix, timestamp, fields = repeated
        message = text[len(prefix) :]
        # A "[" after the prefix may open a context or an instance: read such a line anew.
        if message[:1] != "[":
            return Record(line, timestamp, message, fields, True)
    match = _LINE.match(text)
    if match is None:
        return _other_line(line, text)
    (
        date,
        time,
        fraction,
        offset,
        pid,
        level,
        module,
        has_context,
        first,
        second,
        instance,
    ) = match.groups()
    stamp = utc(date, time, fraction, offset)
    if stamp is None:
        return Record(line, None, text)
    fields = {"loglevel": level, "module": module}
    if pid is not None:
        fields["pid"] = pid
    if level == "TRACE":
        # The old exception prefix: no request context, so a "[" here is traceback
        # text, unless it is the prefix's instance.
        start = match.end(7) + 1
        found = _TRACE_INSTANCE.match(text, start)
        if found is not None:
            fields["instance"] = found.group(1)
            start = found.end()
        if text[start - 1 : start] == " ":
            # Any line that starts with this prefix (space included) and no "[" after
            # it parses to the same timestamp and fields.
            context.repeated = (text[:start], stamp, fields)
        return Record(line, stamp, text[start:], fields, True)
    start = match.end()
    if has_context is not None:
        if first is not None or instance is not None:
            add_context(fields, first, second, instance)
        return Record(line, stamp, text[start:], fields)
    if instance is not None:
        fields["instance"] = instance
    message = text[start:]
    if not continues_traceback(context, text[:start], message):
        return Record(line, stamp, message, fields)
    if message.startswith(TRACEBACK):
        # Its next lines repeat this head, timestamp included: compare, do not parse.
        context.repeated = (text[:start], stamp, fields)
    return Record(line, stamp, message, fields, True)


def add_context(
    fields: dict[str, str], first: str | None, second: str | None, instance: str | None
) -> None:
    """The fields of the request ids and instance that _HEAD matched: a context with
    two ids names the global request's first."""
    if first is not None:
        if second is None:
            fields["request_id"] = first
        else:
            fields["global_request_id"] = first
            fields["request_id"] = second
    if instance is not None:
        fields["instance"] = instance


def continues_traceback(context: ParseContext, head: str, message: str) -> bool:
    """Whether a line with a level and module but no request context, whose text before
    `message` is `head` (less any timestamp that differs line by line), is part of a
    traceback oslo.log wrote with its exception prefix: the traceback's first line, or a
    line repeating that first line's head (its frames, its exception, a last empty line
    without the trailing space). Other such lines are log lines of a context-less format."""
    if message.startswith(TRACEBACK):
        context.exception_head = head.rstrip(" ")
        return True
    opened = context.exception_head
    return opened is not None and head.rstrip(" ") == opened


def _other_line(line: Line, text: str) -> Record:
    match = _TIMESTAMP.match(text)
    if match is not None:
        timestamp = utc(*match.group(1, 2, 3, 4))
        if timestamp is not None:
            return Record(line, timestamp, text[match.end() :])
    return Record(line, None, text)


def sniff(text: str) -> bool:
    return _LINE.match(text) is not None
