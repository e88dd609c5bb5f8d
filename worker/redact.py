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


_URL, _KEYWORD, _AUTHORIZATION, _AWS = _PATTERNS


def redact_text(text: str) -> str:
    # The guard: what every pattern needs, tested on the lower-cased text where the
    # pattern ignores case ("Password=", "API_KEY="). Each multi-character test scans
    # the whole line (~0.5 ns a character), a single character is a memchr (~20x
    # faster), so a rare character required by a pattern is tested first: "@" for
    # URL credentials, "z" for authorization, "K" for AWS key ids (case-sensitive).
    # Spelled out rather than loops over tuples: this runs on every line.
    lowered = text.lower()
    # The keyword pattern's words that occur, each found by the shortest literal it
    # needs; only these are searched for again below (tracebacks of several kilobytes
    # mention "token" in every auth_token frame and nothing else).
    words: tuple[str, ...] = ()
    if "pass" in lowered:
        words += ("password", "passwd")
    if "secret" in lowered:
        words += ("secret",)
    if "token" in lowered:
        words += ("token",)
    if "api" in lowered and ("api_key" in lowered or "apikey" in lowered):
        words += ("api_key", "apikey")
    url = "@" in text and "://" in text
    authorization = "z" in lowered and "uthorization" in lowered
    aws = "K" in text and "AKIA" in text
    if not (words or url or authorization or aws):
        return text
    if not text.isascii():
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text
    # ASCII text (nearly every line): case-insensitive matching is matching the
    # lower-cased text, positions are shared, and each pattern needs a literal that a
    # substring test finds far faster than the regex engine, which tries the ignore-case
    # alternation at every position of multi-kilobyte tracebacks. Same result as above.
    # Replacements only mask text: a literal absent before is absent after, and one
    # that a replacement masked leaves its pattern nothing to match.
    if url:
        pattern, replacement = _URL
        text = pattern.sub(replacement, text)
        lowered = text.lower()
    if words:
        pattern, replacement = _KEYWORD
        starts = _occurrences(lowered, words)
        starts.sort()
        redacted = _sub_from(pattern, replacement, text, starts)
        # Most keyword hits are prose ("user token"), not secrets: nothing to re-lower.
        if redacted is not text:
            text = redacted
            lowered = text.lower()
    if authorization:
        pattern, replacement = _AUTHORIZATION
        text = pattern.sub(replacement, text)
    if aws:
        pattern, replacement = _AWS
        text = pattern.sub(replacement, text)
    return text


def _occurrences(text: str, words: tuple[str, ...]) -> list[int]:
    """Start positions of every occurrence of each of `words` in `text`, unsorted."""
    starts: list[int] = []
    for word in words:
        start = text.find(word)
        while start >= 0:
            starts.append(start)
            start = text.find(word, start + 1)
    return starts


def _sub_from(pattern: re.Pattern[str], replacement: str, text: str, starts: list[int]) -> str:
    """`pattern.sub(replacement, text)` for a pattern that can only match at `starts`
    (sorted) and never matches the empty string."""
    pieces: list[str] = []
    done = 0
    for start in starts:
        if start < done:
            continue  # inside the previous match: sub does not overlap matches
        match = pattern.match(text, start)
        if match is None:
            continue
        pieces.append(text[done:start])
        pieces.append(match.expand(replacement))
        done = match.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


# The userinfo of a URL: everything between "://" and the last "@" before the host's
# end. Greedy, so that an unencoded "@" in a password ("u:p@ss@host") is masked whole;
# it stops at what cannot be in an authority, quotes included (URLs in reprs).
_USERINFO = re.compile(r"(?<=://)[^\s/?#\\'\"<>]*@")
USERINFO_MASK = "***@"


def mask_url(text: str) -> str:
    """`text` with the userinfo of every URL in it replaced by ***, user name included
    (a token is often the user name: https://TOKEN@host/).

    For a URL on its own and for any message that may embed one (an exception's text):
    whatever prints, logs or stores a URL that came from configuration or a job passes
    it through here first."""
    if "@" not in text or "://" not in text:
        return text
    return _USERINFO.sub(USERINFO_MASK, text)


def redact_events(events: Iterable[Event]) -> Iterator[Event]:
    for event in events:
        event.message = redact_text(event.message)
        yield event
