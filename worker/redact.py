"""Secrets that must never reach the index, replaced before documents are built.

CI logs routinely echo credentials: URLs with user:password, `password=` options,
HTTP authorization headers, tokens in environment dumps, devstack's `iniset` and
`mysql -p` lines, private keys. Redaction is a table of rules (`Rule`): each names a
literal that every match contains (its guard) and a pattern; the pattern runs only on
text that holds the guard. The common line holds none: it costs lower-casing and one
substring search per guard (one for the guards that share it, rare ones behind a
one-character gate), and no regular expression. `BUILTIN_RULES` is the default table;
the worker configuration can add rules (`redact.extra`) or drop the built-in ones.

A rule's pattern may name a group `secret`: only that part of a match is replaced,
the rest (the option, the key, the quotes) stays as it was; without one, the whole
match is replaced.

Private-key blocks span lines, so they are not a table rule: `Redactor` carries
whether a block is open from one line to the next, across the events of one file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

from worker.errors import ConfigError
from worker.events import Event

MASK = "********"


@dataclass(frozen=True, slots=True)
class Rule:
    """One kind of secret."""

    name: str
    guard: str  # a literal every match contains; text without it is never matched
    pattern: re.Pattern[str]
    replacement: str = MASK  # replaces the `secret` group, or the whole match without one
    ignore_case: bool = False  # the guard (and the pattern) ignore ASCII case
    # Every match starts where the guard occurs: the pattern is tried there only, not at
    # every position of the text (multi-kilobyte tracebacks mention "token" in every
    # auth_token frame, and the regex engine is far slower than a substring search).
    anchored: bool = False
    # A literal every match contains, tested before the guard so that the guard's own
    # search runs on fewer texts: one character (a memchr costs a tenth of a substring
    # search) or a common word found early. Looked for where the guard is (the text, or
    # the text lower-cased for a rule that ignores case).
    gate: str = ""
    # Where matches start, for an anchored rule whose guard is common: searched for in
    # one pass (a regular expression that starts with the guard, so the regex engine
    # looks for that literal first), instead of trying the pattern at every occurrence.
    finder: re.Pattern[str] | None = None

    @property
    def key(self) -> str:
        """The guard as it is looked for in the lower-cased text."""
        return self.guard.lower()


# Patterns are linear on any line: each starts with its guard, so it is tried only where
# the guard occurs, and no part of it can be retried at each position of a long run (no
# leading repeated class, no nested unbounded repetition over overlapping classes,
# quoted values bounded). tools/bench measures them on adversarial 64 KiB lines.
#
# A value: quoted (the opening quote is matched before it) up to the closing quote,
# spaces included ("correct horse battery"), else one word.
_VALUE = r"(?P<secret>(?<=\")[^\"\n]{1,256}(?=\")|(?<=')[^'\n]{1,256}(?=')|[^\s\"',;&]+)"
# key=value, key: value, "key": "value", key = value
_ASSIGNED = r"[\"']?[ \t]*[:=][ \t]*[\"']?"
# --key value, --os-key value: the word before the key ends in "-"
_OPTION = r"[ \t]+[\"']?"


def _keyword(words: str) -> str:
    """`words` (an alternation starting with the guard) assigned or given as an option."""
    return rf"(?:(?<=-)(?:{words}){_OPTION}|(?:{words}){_ASSIGNED}){_VALUE}"


def _keyword_finder(words: str) -> str:
    """Where `_keyword(words)` can match: the words, then a separator."""
    return rf"(?:{words})(?=[ \t]|[\"']?[ \t]*[:=])"


def _keyword_rule(name: str, guard: str, words: str) -> Rule:
    return _rule(name, guard, _keyword(words), ignore_case=True, finder=_keyword_finder(words))


def _rule(
    name: str,
    guard: str,
    pattern: str,
    *,
    ignore_case: bool = False,
    gate: str = "",
    finder: str = "",
) -> Rule:
    flags = re.ASCII | (re.IGNORECASE if ignore_case else 0)
    compiled = re.compile(pattern, flags)
    found = re.compile(finder) if finder else None
    return Rule(
        name, guard, compiled, ignore_case=ignore_case, anchored=True, gate=gate, finder=found
    )


BUILTIN_RULES: tuple[Rule, ...] = (
    # scheme://user:password@host (the URL's own "@" is the rarer guard)
    Rule("url_credentials", "@", re.compile(r"://[^\s:/@]+:(?P<secret>[^\s@/]+)(?=@)")),
    # devstack: iniset [-sudo] FILE SECTION admin_password VALUE
    _rule(
        "iniset",
        "iniset",
        r"iniset[ \t]+(?:-sudo[ \t]+)?\S+[ \t]+\S+[ \t]+[\w.-]*?"
        r"(?i:password|passwd|token|secret|key)[ \t]+[\"']?" + _VALUE,
    ),
    # mysql -uroot -psecret (the password is glued to -p), within the same command
    _rule(
        "mysql_password",
        "mysql",
        r"\bmysql(?:admin|dump|check|import|show|slap)?(?:[ \t]+[^\s|;&]+){0,8}?"
        r"[ \t]+-p[\"']?" + _VALUE,
        gate="q",
    ),
    # SQL: IDENTIFIED BY 'secret' (a string literal: quoted), also shell-quoted as
    # '\''secret'\''
    _rule(
        "sql_identified_by",
        "identified",
        r"identified[ \t]+by[ \t]+(?:password[ \t]+)?(?:'\\''|')" + _VALUE,
        ignore_case=True,
        gate="'",
    ),
    # password=..., "password": "...", admin_password: ..., --os-password X
    _keyword_rule("password", "passw", "passw(?:ord|d)"),
    # client_secret: ..., SECRET_KEY=..., aws_secret_access_key = ..., --secret X
    _keyword_rule("secret", "secret", "secret(?:[_-]?access)?(?:[_-]?key)?"),
    # X-Auth-Token: ..., OS_TOKEN=..., admin_token=..., --os-token X
    _keyword_rule("token", "token", "token"),
    # api_key=..., APIKEY: ..., --api-key X ("api" alone is in every line of a nova-api
    # traceback: found with its finder)
    _keyword_rule("api_key", "api", "api[_-]?key"),
    # Authorization: Basic/Bearer/Token xxx
    _rule(
        "authorization",
        "authorization",
        r"authorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:\w+[ \t]+)?(?P<secret>[^\s\"',]+)",
        ignore_case=True,
        gate="z",
    ),
    # AWS access key ids
    _rule("aws_access_key_id", "AKIA", r"\bAKIA[0-9A-Z]{16}\b", gate="K"),
    # GitHub tokens: ghp_ (personal), gho_, ghu_, ghs_, ghr_, github_pat_ (fine-grained);
    # the guard is what both start with, the finder tells them apart
    _rule(
        "github_token",
        "g",
        r"(?:gh[pousr]|github_pat)_(?P<secret>[A-Za-z0-9_]{20,})",
        finder="gh[pousr]_|github_pat_",
    ),
)


# -- private-key blocks -------------------------------------------------------------------

PEM_GUARD = "PRIVATE KEY"
PEM_KEY = PEM_GUARD.lower()
PEM_GATE = "K"  # an upper-case K is rare in logs: tested before the guard
_PEM_MARKER = re.compile(r"-----(BEGIN|END) (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----")
# A line inside a block: base64 (or an RFC 1421 header such as DEK-Info), as a plain
# line, a quoted YAML/JSON string, or a list item.
_PEM_BODY = re.compile(
    r"[ \t]*[\"']?(?P<secret>[A-Za-z0-9+/=]+|[A-Za-z-]+:[ \t][ -~]*?)(?:\\n)?[\"']?,?[ \t]*"
)
# A block whose END never comes (a truncated log) stops being masked after this many
# lines: a 16384-bit RSA key is about 200 lines of 64 characters.
PEM_MAX_LINES = 400


def _pem_line(line: str, open_lines: int) -> tuple[str, int]:
    """`line` with private-key material masked, given how many more lines the open
    block may span (0: none is open), and that number after this line."""
    markers = list(_PEM_MARKER.finditer(line)) if PEM_GUARD in line else []
    if not markers:
        if not open_lines or not line.strip():
            return line, max(open_lines - 1, 0)
        body = _PEM_BODY.fullmatch(line)
        if body is None:  # not key material: the block ended without its END line
            return line, 0
        return line[: body.start("secret")] + MASK + line[body.end("secret") :], open_lines - 1
    pieces: list[str] = []
    done = 0
    for marker in markers:
        pieces.append(_pem_segment(line[done : marker.start()], open_lines))
        pieces.append(marker.group())
        done = marker.end()
        open_lines = PEM_MAX_LINES if marker.group(1) == "BEGIN" else 0
    pieces.append(_pem_segment(line[done:], open_lines))
    return "".join(pieces), open_lines


def _pem_segment(text: str, open_lines: int) -> str:
    """Text beside a marker: key material (masked) when a block is open, unless it is
    only quoting or an escaped newline (`echo "-----BEGIN ... KEY-----"`)."""
    if open_lines and text.strip(" \t\"',\\n"):
        return MASK
    return text


def _pem(text: str, open_lines: int) -> tuple[str, int]:
    if "\n" not in text:
        return _pem_line(text, open_lines)
    lines = text.split("\n")
    for i, line in enumerate(lines):
        lines[i], open_lines = _pem_line(line, open_lines)
    return "\n".join(lines), open_lines


# -- applying a table ---------------------------------------------------------------------

# Lower-cases ASCII letters only, keeping every position: guards and patterns ignore
# ASCII case, and positions found in the lower-cased text are used in the text itself
# (str.lower can change the length of non-ASCII text: "İ" becomes two characters).
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _lower(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


class RuleSet:
    """A table of rules made ready to apply: its guards, each looked for once a text."""

    def __init__(self, rules: tuple[Rule, ...], pem: bool = True) -> None:
        self.rules = rules
        self.pem = pem  # private-key blocks are masked (part of the built-in set)
        by_key: dict[str, list[Rule]] = {}
        for rule in rules:
            by_key.setdefault(rule.key, []).append(rule)
        self._by_key = {key: tuple(found) for key, found in by_key.items()}
        # In table order (the private-key stage first): rules apply in that order.
        self._keys = ((PEM_KEY,) if pem else ()) + tuple(by_key)
        tests = [(PEM_KEY, *_test(PEM_GUARD, PEM_GATE, in_text=True))] if pem else []
        tests += [(key, *_key_test(key, found)) for key, found in by_key.items()]
        namespace: dict[str, Any] = {}
        for i, (key, gate, test) in enumerate(tests):
            finders = {rule.finder for rule in by_key.get(key, ())}
            if len(finders) == 1 and None not in finders:
                (finder,) = finders
                assert finder is not None
                namespace[f"find{i}"] = finder.search
                where = test.rpartition(" in ")[2]
                # A guard of one or two characters is found faster by the finder
                # itself (which starts with it) than by `in` and then the finder.
                first = f"{test} and " if len(key) > 2 else ""
                tests[i] = (key, gate, f"{first}find{i}({where}) is not None")
        # The guard tests run on every line, so they are generated code: one `if` per
        # guard, those behind one gate under one `if`. A loop over the table (or map
        # over bound __contains__) costs twice the searches again on the common short
        # line. The code is made of repr()s of the guards only.
        behind: dict[str, list[tuple[str, str]]] = {}
        for key, gate, test in tests:
            behind.setdefault(gate, []).append((key, test))
        source = ["def present(text, lowered):", "    found = ()"]
        for gate, found in behind.items():
            indent = "        " if gate else "    "
            if gate:
                source.append(f"    if {gate}:")
            source += [
                f"{indent}if {test}:\n{indent}    found += ({key!r},)" for key, test in found
            ]
        source.append("    return found")
        exec("\n".join(source), namespace)
        self._present: Callable[[str, str], tuple[str, ...]] = namespace["present"]
        self._order = {key: i for i, key in enumerate(self._keys)}

    def present(self, text: str, lowered: str) -> tuple[str, ...]:
        """The guards (lower-cased) that occur in `text` (`lowered` is the text
        lower-cased), in table order; for the common text, none."""
        return self.ordered(self._present(text, lowered))

    def ordered(self, found: tuple[str, ...]) -> tuple[str, ...]:
        if len(found) > 1:
            found = tuple(sorted(found, key=self._order.__getitem__))
        return found

    def apply(self, text: str, lowered: str, found: Iterable[str]) -> str:
        """`text` with the rules of the guards `found` applied, in table order."""
        for key in found:
            for rule in self._by_key.get(key, ()):
                if rule.ignore_case:
                    haystack = lowered
                elif rule.guard in text:
                    haystack = text
                else:
                    continue
                if rule.anchored:
                    redacted = _sub_at(rule, text, haystack)
                else:
                    redacted = rule.pattern.sub(partial(_replace, rule), text)
                if redacted != text:  # most guard hits are prose ("user token"): no re-lowering
                    text = redacted
                    lowered = _lower(text)
        return text

    def redact(self, text: str) -> str:
        """`text` redacted on its own: a private-key block is masked up to the text's
        end, and no state is kept."""
        lowered = _lower(text)
        found = self.present(text, lowered)
        if not found:
            return text
        if found[0] == PEM_KEY:
            masked, _ = _pem(text, 0)
            if masked != text:
                text = masked
                lowered = _lower(text)
        return self.apply(text, lowered, found)


def _test(guard: str, gate: str, *, in_text: bool) -> tuple[str, str]:
    """The expressions that tell whether `gate` and `guard` occur."""
    where = "text" if in_text else "lowered"
    return (f"{gate!r} in {where}" if gate else "", f"{guard!r} in {where}")


def _key_test(key: str, rules: list[Rule]) -> tuple[str, str]:
    """The tests for the rules that share a guard (lower-cased `key`): in the text
    itself when they all match case, behind their gate when they all have one."""
    guards = {rule.guard for rule in rules}
    in_text = len(guards) == 1 and not any(rule.ignore_case for rule in rules)
    gates = {rule.gate for rule in rules}
    gate = gates.pop() if len(gates) == 1 else ""
    if in_text:
        return _test(guards.pop(), gate, in_text=True)
    return _test(key, gate.lower(), in_text=False)


def _replace(rule: Rule, match: re.Match[str]) -> str:
    if "secret" not in rule.pattern.groupindex:
        return rule.replacement
    start, end = match.span("secret")
    whole = match.group()
    if start < 0:  # the group took no part in this match
        return whole
    base = match.start()
    return whole[: start - base] + rule.replacement + whole[end - base :]


def _sub_at(rule: Rule, text: str, haystack: str) -> str:
    """`rule.pattern.sub(...)` for a pattern whose matches start where the guard occurs
    in `haystack` (the text, or the text lower-cased position for position)."""
    pieces: list[str] = []
    done = 0
    match_at = rule.pattern.match
    if rule.finder is None:
        starts: Iterable[int] = _occurrences(haystack, rule.key if rule.ignore_case else rule.guard)
    else:
        starts = (found.start() for found in rule.finder.finditer(haystack))
    for start in starts:
        if start >= done:  # not inside the previous match: sub does not overlap matches
            match = match_at(text, start)
            if match is not None and match.end() > start:
                pieces.append(text[done:start])
                pieces.append(_replace(rule, match))
                done = match.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def _occurrences(text: str, literal: str) -> Iterator[int]:
    start = text.find(literal)
    while start >= 0:
        yield start
        start = text.find(literal, start + 1)


@lru_cache(maxsize=16)
def rule_set(rules: tuple[Rule, ...], pem: bool = True) -> RuleSet:
    """The compiled form of a table, made once per table (a configuration's)."""
    return RuleSet(rules, pem)


DEFAULT_RULES = rule_set(BUILTIN_RULES)


def redact_text(text: str, rules: RuleSet = DEFAULT_RULES) -> str:
    """`text` with every secret the rules know masked (a message, a field, an error)."""
    return rules.redact(text)


class Redactor:
    """Redacts the events of one file in order: the message and every string field.

    The one state kept from event to event is an open private-key block, whose lines
    may each be an event of their own (a console log) or lines of one event.
    """

    # Field values repeat (levels, modules, hosts): each distinct one is redacted once,
    # and remembered when it holds nothing secret.
    CLEAN_SIZE = 8192
    # A long message is mostly a traceback, and a service logs the same traceback again
    # and again (nova-api.log: 8,747 of them, 16 different): each is redacted once.
    # Hashing one costs a tenth of looking for the guards in it.
    LONG = 512
    REPEATED_SIZE = 256

    def __init__(self, rules: RuleSet = DEFAULT_RULES) -> None:
        self.rules = rules
        self._pem_lines = 0
        self._clean: set[Any] = set()
        self._repeated: dict[str, str] = {}

    def events(self, events: Iterable[Event]) -> Iterator[Event]:
        # message() and fields() for the common event, spelled out: this runs on every
        # line, and a call costs as much as several guard tests.
        present = self.rules._present
        ascii_lower = _ASCII_LOWER
        clean = self._clean
        repeated = self._repeated
        long_text = self.LONG
        shared: dict[str, Any] | None = None  # the last dict seen, and what it became
        shared_redacted: dict[str, Any] = {}
        for event in events:
            text = event.message
            if len(text) < long_text:
                lowered = text.lower() if text.isascii() else text.translate(ascii_lower)
                found = present(text, lowered)
                if found or self._pem_lines:
                    event.message = self._message(text, lowered, self.rules.ordered(found))
            elif self._pem_lines:
                event.message = self.message(text)
            else:
                cached = repeated.get(text)
                if cached is None:
                    cached = self.message(text)
                    if not self._pem_lines and PEM_GUARD not in text:  # as anywhere else
                        if len(repeated) >= self.REPEATED_SIZE:
                            repeated.clear()
                        repeated[text] = cached
                event.message = cached
            fields = event.fields
            if fields:
                # Formats may hand one dict to the lines that repeat a prefix.
                if fields is not shared:
                    try:
                        seen = clean.issuperset(fields.values())
                    except TypeError:  # an unhashable value (a list)
                        seen = False
                    shared, shared_redacted = fields, fields if seen else self.fields(fields)
                event.fields = shared_redacted
            yield event

    def message(self, text: str) -> str:
        lowered = _lower(text)
        return self._message(text, lowered, self.rules.present(text, lowered))

    def _message(self, text: str, lowered: str, found: tuple[str, ...]) -> str:
        rules = self.rules
        if self._pem_lines or (found and found[0] == PEM_KEY):
            masked, self._pem_lines = _pem(text, self._pem_lines)
            if masked != text:
                text = masked
                lowered = _lower(text)
        if not found:
            return text
        return rules.apply(text, lowered, found)

    def fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        """`fields` with every string value redacted; the same dict when nothing
        changed (formats may share one dict between lines: it is never modified)."""
        clean = self._clean
        changed: dict[str, Any] | None = None
        for name, value in fields.items():
            if isinstance(value, str):
                if value in clean:
                    continue
                redacted = self.rules.redact(value)
                if redacted is not value:
                    if changed is None:
                        changed = dict(fields)
                    changed[name] = redacted
                    continue
            elif not isinstance(value, int | float | bool | None):
                continue  # a list, a dict: not a string field, and maybe not hashable
            if len(clean) >= self.CLEAN_SIZE:
                clean.clear()
            clean.add(value)
        return fields if changed is None else changed


def redact_events(events: Iterable[Event], rules: RuleSet = DEFAULT_RULES) -> Iterator[Event]:
    return Redactor(rules).events(events)


# -- configuration ------------------------------------------------------------------------

_RULE_KEYS = ("name", "guard", "pattern", "ignore_case", "replacement")


@dataclass(frozen=True, slots=True)
class RedactConfig:
    builtin: bool = True  # the built-in rules (and private-key blocks) apply
    extra: tuple[Rule, ...] = ()  # rules from the configuration, applied after them

    @property
    def rules(self) -> RuleSet:
        return rule_set((BUILTIN_RULES if self.builtin else ()) + self.extra, self.builtin)


def parse_redact_config(raw: Any, where: str = "redact") -> RedactConfig:
    """The `redact:` section: `builtin: true|false`, `extra: [{name, guard, pattern,
    ignore_case, replacement}]`. Every pattern is compiled now; a mistake is a
    ConfigError naming the key."""
    if raw is None:
        return RedactConfig()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping")
    for key in raw:
        if key not in ("builtin", "extra"):
            raise ConfigError(f"{where}.{key}: unknown key")
    builtin = raw.get("builtin", True)
    if not isinstance(builtin, bool):
        raise ConfigError(f"{where}.builtin must be true or false")
    extra = raw.get("extra") or []
    if not isinstance(extra, list):
        raise ConfigError(f"{where}.extra must be a list of rules")
    rules: list[Rule] = []
    for i, item in enumerate(extra):
        rule = _parse_rule(item, f"{where}.extra[{i}]")
        if any(rule.name == other.name for other in (*BUILTIN_RULES, *rules)):
            raise ConfigError(f"{where}.extra[{i}].name: {rule.name!r} is already a rule's name")
        rules.append(rule)
    return RedactConfig(builtin, tuple(rules))


def _parse_rule(item: Any, where: str) -> Rule:
    if not isinstance(item, dict):
        raise ConfigError(f"{where} must be a mapping with name, guard and pattern")
    for key in item:
        if key not in _RULE_KEYS:
            raise ConfigError(f"{where}.{key}: unknown key (expected {', '.join(_RULE_KEYS)})")
    text: dict[str, str] = {}
    for key in ("name", "guard", "pattern"):
        value = item.get(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}.{key} must be a non-empty string")
        text[key] = value
    replacement = item.get("replacement", MASK)
    if not isinstance(replacement, str):
        raise ConfigError(f"{where}.replacement must be a string")
    ignore_case = item.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        raise ConfigError(f"{where}.ignore_case must be true or false")
    flags = re.ASCII | (re.IGNORECASE if ignore_case else 0)
    try:
        pattern = re.compile(text["pattern"], flags)
    except re.error as exc:
        raise ConfigError(f"{where}.pattern: {text['pattern']!r} does not compile: {exc}") from None
    if pattern.search("") is not None:
        raise ConfigError(f"{where}.pattern: {text['pattern']!r} matches the empty string")
    return Rule(text["name"], text["guard"], pattern, replacement, ignore_case)


# -- URLs from configuration and jobs -----------------------------------------------------

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
