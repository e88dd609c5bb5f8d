"""Secrets that must never reach the index, replaced before documents are built.

CI logs routinely echo credentials: URLs with user:password, `password=` options,
HTTP authorization headers, tokens in environment dumps. A cheap substring test
guards the regex so that the vast majority of lines cost one scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from worker.events import Event

MASK = "********"

# Matched against the lower-cased text: the patterns below ignore case, so the guard
# must too ("Password=", "Secret:", "API_KEY=" would otherwise skip redaction).
_TRIGGERS = (
    "://",
    "pass",
    "secret",
    "token",
    "uthorization",
    "api_key",
    "apikey",
    "akia",
)

# Every pattern starts with a literal ("://", a keyword), never with a repeated class:
# a leading "[a-z_]*" is retried at each position of a long word, quadratic on the
# multi-kilobyte lines CI logs have. The match starts at the keyword, so any prefix
# (OS_PASSWORD, admin_password) stays as it is.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host
    (
        re.compile(r"(?P<keep>://[^\s:/@]+:)[^\s@/]+(?=@)"),
        rf"\g<keep>{MASK}",
    ),
    # password=..., "password": "...", admin_password: ..., OS_PASSWORD=...
    (
        re.compile(
            r"(?P<keep>(?i:password|passwd|secret|token|api_key|apikey)"
            r"[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\s\"',;&]+)"
        ),
        rf"\g<keep>{MASK}",
    ),
    # Authorization: Basic/Bearer/Token xxx ; X-Auth-Token: xxx is caught above
    (
        re.compile(r"(?P<keep>(?i:authorization)[\"']?\s*[:=]\s*[\"']?(?:\w+\s+)?)[^\s\"',]+"),
        rf"\g<keep>{MASK}",
    ),
    # AWS access key ids
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), MASK),
)


def redact_text(text: str) -> str:
    lowered = text.lower()
    if not any(trigger in lowered for trigger in _TRIGGERS):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_events(events: Iterable[Event]) -> Iterator[Event]:
    for event in events:
        event.message = redact_text(event.message)
        yield event
