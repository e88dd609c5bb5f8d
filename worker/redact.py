"""Secrets that must never reach the index, replaced before documents are built.

CI logs routinely echo credentials: URLs with user:password, `password=` options,
HTTP authorization headers, tokens in environment dumps, devstack's `iniset` and
`mysql -p` lines, private keys. Redaction is a table of rules (`Rule`): each names a
literal that every match contains (its guard) and a pattern; the pattern runs only on
text that holds the guard. The common line holds none: it costs lower-casing and one
substring search per guard (one for the guards that share it, rare ones behind a
one-character gate), and no regular expression. `BUILTIN_RULES` is the default table;
the worker configuration can add rules (`redact.extra`) or drop the built-in ones.

A rule's pattern may name a group `secret` (and a second, `secret2`): only that part
of a match is replaced, the rest (the option, the key, the quotes) stays as it was;
without one, the whole match is replaced.

Every rule costs time linear in the text, within a small factor of the common line's:
a text may have only so many places where rules are tried one by one (64 and one per
KiB); past that budget, or when a rule's first literal is denser than one per 32
characters, the text is masked from that rule's next possible match to the end of the
line of its last. Such a line is made of would-be secrets (no corpus line comes near);
masking more of it is the safe side.

Private-key blocks span lines, so they are not a table rule: `Redactor` carries
whether a block is open from one line to the next, across the events of one file. So
is the window after a traced devstack iniset call whose option names a secret: the
lines of iniset's own trace that print the value (`local value=...`, the config line
it appends) name no secret themselves (`INISET_LINES`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
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
    # The literal every match starts with, when it is not the guard (a URL's
    # credentials start at "://", before their guard "@"). The built-in rules have one
    # (their guard, or this), and no match of theirs spans lines: what a line dense with
    # would-be secrets is reduced to relies on both (see `_masked_from`).
    start: str = ""

    @property
    def key(self) -> str:
        """The guard as it is looked for in the lower-cased text."""
        return self.guard.lower()

    @property
    def first(self) -> str:
        """The literal every match starts with, as it is looked for in the haystack;
        empty for a rule from the configuration, whose matches may start anywhere."""
        if self.start:
            return self.start
        if not self.anchored:
            return ""
        return self.key if self.ignore_case else self.guard


# Patterns are linear on any line: each starts with its guard, so it is tried only where
# the guard occurs, and no part of it can be retried at each position of a long run (no
# leading repeated class, no nested unbounded repetition over overlapping classes,
# quoted values bounded). tools/bench measures them on adversarial 64 KiB lines.
#
# \s as re.ASCII reads it, spelled out for character sets: a set of characters only is
# a table look-up per character, one with \s in it twice as slow (on a 64 KiB word).
_BLANK = r" \t\n\r\f\v"
# A value: quoted (the opening quote is matched before it) up to the closing quote,
# spaces included ("correct horse battery"), else one word.
_VALUE = (
    r"(?P<secret>(?<=\")[^\"\n]{1,256}(?=\")|(?<=')[^'\n]{1,256}(?=')"
    rf"|[^{_BLANK}\"',;&]++)"
)
# key=value, key: value, "key": "value", key = value. Runs are possessive (`*+`, `++`)
# wherever what follows them cannot start with what they repeat: giving characters
# back could never lead to a match, and on a long run it costs one step per character.
_ASSIGNED = r"[\"']?[ \t]*+[:=][ \t]*+[\"']?"
# --key value, --os-key value: the word before the key ends in "-"
_OPTION = r"[ \t]++[\"']?"
# | key | value |: a row of the tables the openstack and keystone clients print (an EC2
# credential's secret); the value is a cell's one word, so `cat secret | grep x` is not.
_CELL = rf"[ \t]*+\|[ \t]*+(?=[^{_BLANK}\"',;&|]++[ \t]*+\|)"
# A table cell of 32 hex digits (an id, an EC2 access key), quoted or not
_HEX_CELL = r"[ \t']*+[0-9a-f]{32}[ \t']*+"
# A configuration key that names a secret ends in one of these (iniset, sed): one
# look-behind each, as each has one width.
_SECRET_KEY_END = "(?:{})".format(
    "|".join(f"(?<=(?i:{word}))" for word in ("password", "passwd", "token", "secret", "key"))
)


_MYSQL_TOOLS = ("", "admin", "dump", "check", "import", "show", "slap")
# mysql, mysqladmin (named: it alone takes `password NEW`), mysqldump, ...
_MYSQL_TOOL = f"(?:(?P<admin>admin)|{'|'.join(_MYSQL_TOOLS[2:])})?"
# After a word: it does not end in a mysql command (one look-behind per width).
_NOT_AFTER_MYSQL = "".join(rf"(?<!\bmysql{tool})" for tool in _MYSQL_TOOLS)
# The words of a mysql command before its password, as few as can be
_MYSQL_WORDS = rf"(?:[ \t]++[^{_BLANK}|;&]++{_NOT_AFTER_MYSQL}){{0,8}}?"
# devstack's iniset [-sudo] FILE, then its SECTION and OPTION
_INISET_FILE = r"iniset[ \t]++(?:-sudo[ \t]++)?\S++[ \t]++"


def _keyword(guard: str, rest: str) -> str:
    """The word `guard` + `rest` (a pattern) assigned, given as an option, or in a
    table row."""
    words = f"{guard}(?:{rest})"
    return rf"(?:(?<=-){words}{_OPTION}|{words}(?:{_ASSIGNED}|{_CELL})){_VALUE}"


def _keyword_finder(guard: str, rest: str) -> str:
    """Where `_keyword(guard, rest)` can match: the word, then a separator; a blank only
    as an option, after "-" ("keystonemiddleware.auth_token [-]", 13 % of screen-q-svc's
    lines, is no place to try). It starts with the guard (the literal the regex engine
    looks for first), and nothing is tried twice at one place: the "-" is looked at
    behind the guard once, and the word's end is atomic (a shorter word is followed by
    a letter, which no separator starts with). ~90 ns a place where it fails."""
    separator = r"[\"']?[ \t]*+[:=]|[ \t]*+\|"
    word = f"(?>{rest})" if rest else ""
    return (
        rf"{guard}(?:(?<=-{guard})(?P<option>))?+{word}"
        rf"(?(option)(?=[ \t]|{separator})|(?={separator}))"
    )


def _keyword_rule(name: str, guard: str, rest: str) -> Rule:
    return _rule(
        name,
        guard,
        _keyword(guard, rest),
        ignore_case=True,
        finder=_keyword_finder(guard, rest),
    )


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
    Rule(
        "url_credentials",
        "@",
        re.compile(rf"://[^{_BLANK}:/@]++:(?P<secret>[^{_BLANK}@/]++)(?=@)"),
        start="://",
    ),
    # devstack: iniset [-sudo] FILE SECTION admin_password VALUE
    _rule(
        "iniset",
        "iniset",
        _INISET_FILE + r"\S++[ \t]++"
        # the key names a secret, or is one of swift's tempauth users (user_ACCOUNT_USER
        # = KEY GROUP...): the key is read once either way
        r"(?:(?<=filter:tempauth[ \t])(?=user_)(?P<tempauth>))?+"
        rf"[\w.-]*+(?(tempauth)|{_SECRET_KEY_END})[ \t]++[\"']?" + _VALUE,
    ),
    # mysql -uroot -psecret (the password is glued to -p), within the same command, and
    # mysqladmin ... password NEW. A word that ends in another mysql command is not
    # passed over: that command's own match (tried at its occurrence) reaches the same
    # -p, and no word is read again from each of a run of "mysql mysql ...".
    _rule(
        "mysql_password",
        "mysql",
        rf"\bmysql{_MYSQL_TOOL}{_MYSQL_WORDS}"
        # and mysqladmin's own: mysqladmin -u root password NEW
        r"[ \t]++(?:-p|(?(admin)password[ \t]++|(?!)))[\"']?"
        + _VALUE
        # and its NEW after the old one: mysqladmin -pOLD password NEW (the words
        # between are read once: the lazy repeat goes on from where it stopped)
        + rf"(?(admin)(?:[\"']?{_MYSQL_WORDS}[ \t]++password[ \t]++[\"']?"
        + _VALUE.replace("?P<secret>", "?P<secret2>")
        + "))?",
        gate="q",
    ),
    # rabbitmqctl change_password USER PASSWORD, rabbitmqctl add_user USER PASSWORD
    _rule(
        "rabbitmqctl",
        "rabbitmqctl",
        r"rabbitmqctl(?:[ \t]++\S++){0,4}?[ \t]++(?:change_password|add_user)[ \t]++\S++"
        r"[ \t]++[\"']?" + _VALUE,
        gate="q",
    ),
    # devstack's create_userrc.sh: add_entry USER_ID USER TENANT_ID TENANT PASSWORD
    _rule(
        "add_entry",
        "add_entry",
        r"add_entry(?:[ \t]++\S++){4}[ \t]++[\"']?" + _VALUE,
        gate="y",
    ),
    # devstack's iniset as sed: s|^\(admin_password[ \t]*=[ \t]*\).*$|\1secret|
    Rule(
        "sed_iniset",
        "$|\\1",
        re.compile(
            rf"s\|\^\\\([\w.-]*+{_SECRET_KEY_END}\[ \\t\]\*=\[ \\t\]\*\\\)\.\*\$\|\\1"
            r"(?P<secret>[^|\r\n]++)(?=\|)",  # \r too: 3 characters are a table, 2 a list
            re.ASCII,
        ),
        gate="\\",
        start="s|^\\(",
    ),
    # SQL: IDENTIFIED BY 'secret' (a string literal: quoted), also shell-quoted as
    # '\''secret'\''
    _rule(
        "sql_identified_by",
        "identified",
        r"identified[ \t]++by[ \t]++(?:password[ \t]++)?(?:'\\''|')" + _VALUE,
        ignore_case=True,
        gate="'",
    ),
    # password=..., "password": "...", admin_password: ..., --os-password X; "pass"
    # alone after "-" or "_" (keystone user-create --pass X, devstack's USER_PASS=X)
    _keyword_rule("password", "pass", "word|wd|(?<=[_-]pass)"),
    # client_secret: ..., SECRET_KEY=..., aws_secret_access_key = ..., --secret X,
    # | secret | X |
    _keyword_rule("secret", "secret", "(?:[_-]?access)?(?:[_-]?key)?"),
    # X-Auth-Token: ..., OS_TOKEN=..., admin_token=..., --os-token X
    _keyword_rule("token", "token", ""),
    # api_key=..., APIKEY: ..., --api-key X ("api" alone is in every line of a nova-api
    # traceback: found with its finder)
    _keyword_rule("api_key", "api", "[_-]?key"),
    # Authorization: Basic/Bearer/Token xxx (a scheme is a short word: the first word of
    # a long value is read once, as the value)
    _rule(
        "authorization",
        "authorization",
        r"authorization[\"']?[ \t]*+[:=][ \t]*+[\"']?(?:\w{1,32}+[ \t]++)?"
        rf"(?P<secret>[^{_BLANK}\"',]++)",
        ignore_case=True,
        gate="z",
    ),
    # An EC2 credential row of `keystone ec2-credentials-list` (| tenant | access |
    # secret |) as devstack's create_userrc.sh quotes it: `line='| admin | 14cf... |
    # 9e83... |'`, `echo '|' admin '|' 14cf... '|' 9e83... '|'`. The secret is the hex
    # cell after another; the quoted row ends in the guard, and a row printed as a
    # table (with no quote) is not this one (its `| secret | X |` form is, above).
    # Behind the quote gate of the rule above (as it, case aside: lower-case hex is all
    # a client prints): the common line pays no test of its own for it.
    Rule(
        "ec2_credential_row",
        "|'",
        re.compile(
            rf"\|{_HEX_CELL}\|[ \t']*+(?P<secret>[0-9a-f]{{32}})(?=[ \t']*+\|)",
            re.ASCII | re.IGNORECASE,
        ),
        ignore_case=True,
        anchored=True,
        gate="'",
        start="|",
    ),
    # AWS access key ids
    _rule("aws_access_key_id", "AKIA", r"\bAKIA[0-9A-Z]{16}\b", gate="K"),
    # GitHub tokens: ghp_ (personal), gho_, ghu_, ghs_, ghr_, github_pat_ (fine-grained);
    # the guard is what both start with, the finder tells them apart
    _rule(
        "github_token",
        "gh",
        r"(?:gh[pousr]|github_pat)_(?P<secret>[A-Za-z0-9_]{20,})",
        gate="_",
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
    markers: list[re.Match[str]] = []
    if PEM_GUARD in line:
        if line.count(PEM_GUARD) > _budget(line):  # dense: masked from the first on
            kept = "" if open_lines else line[: line.find(PEM_GUARD)]
            return kept + MASK, PEM_MAX_LINES
        markers = list(_PEM_MARKER.finditer(line))
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
        if open_lines or PEM_GUARD in line:  # the other lines of a traceback: as they are
            lines[i], open_lines = _pem_line(line, open_lines)
    return "\n".join(lines), open_lines


# -- devstack's iniset, traced ------------------------------------------------------------

# Old devstack traces iniset's body: `+ local option=admin_password`, then `+ local
# value=secret` (and, for a new option, the config line it appends: `user_x = pw .admin`),
# lines that name no secret themselves. The iniset call traced before them does: it
# opens a window of this many lines where its option's value is masked (iniset's body
# for a new option in a new section is 20 lines).
INISET_LINES = 24
_INISET_CALL = re.compile(_INISET_FILE + r"(?P<section>\S++)[ \t]++(?P<option>[\w.-]++)", re.ASCII)
_SECRET_NAME = re.compile(rf"[\w.-]*+{_SECRET_KEY_END}", re.ASCII)
_LOCAL_OPTION = re.compile(r"\blocal[ \t]++'?option=(?P<option>[\w.-]++)", re.ASCII)
_LOCAL_VALUE = re.compile(r"\blocal[ \t]++(?P<quote>'?)value=", re.ASCII)


def _names_secret(section: str, option: str) -> bool:
    """The iniset rule's test: the option names a secret, or is a swift tempauth user."""
    if section == "filter:tempauth" and option.startswith("user_"):
        return True
    return _SECRET_NAME.fullmatch(option) is not None


@lru_cache(maxsize=64)
def _config_line(option: str) -> re.Pattern[str]:
    """`option = VALUE` as a config file has it: its first word is the secret (a
    tempauth user's password, before the user's groups)."""
    return re.compile(
        rf"(?<![\w.-]){re.escape(option)}[ \t]*+=[ \t]*+(?P<secret>[^{_BLANK}\"']++)", re.ASCII
    )


def _local_value(line: str) -> str:
    """A `local value=...` line with the value masked (quoted by xtrace when it has
    blanks: up to the closing quote)."""
    found = _LOCAL_VALUE.search(line)
    if found is None:
        return line
    value = line[found.end() :].rstrip()
    if found.group("quote") and value.endswith("'"):
        value = value[:-1]
    if not value:
        return line
    return line[: found.end()] + MASK + line[found.end() + len(value) :]


# -- applying a table ---------------------------------------------------------------------

# A line dense with would-be secrets. Each place where a rule is tried costs Python work
# (a match attempt, a replacement: ~1-2 us), where the common line costs a few
# microseconds in all. A text may have CANDIDATES such places over all its rules, and
# one more per CANDIDATE_SPACING characters (a 64 KiB line: 128); each occurrence of a
# rule's first literal costs the regex engine ~50 ns (a finder's search, a URL's), and a
# text may have one per OCCURRENCE_SPACING characters of each. Beyond either, the rule's
# matches are no longer looked for one by one: the text is masked from the next place on
# to the end of the line of the rule's last (`_masked_from`, a few searches done by str
# in C). Only a text built to be dense with keywords comes near (the densest line of
# the corpus has 4 places; a traceback through keystonemiddleware's auth_token says
# "token" a few times a frame, not one per 32 characters). Over-masking such a text is
# the safe side: it never leaves a secret.
CANDIDATES = 64
CANDIDATE_SPACING = 1024
OCCURRENCE_SPACING = 32


def _places(text: str) -> int:
    return CANDIDATES + len(text) // OCCURRENCE_SPACING


def _budget(text: str) -> int:
    return CANDIDATES + len(text) // CANDIDATE_SPACING


# Positions found in the lower-cased text are used in the text itself, so lowering must
# keep every position. str.lower does, except for "İ" (U+0130), the one character whose
# lower case is two: such a text has its ASCII letters only lowered (translate costs ten
# times lower, the cost of any other non-ASCII text). str.lower also lowers a few
# non-ASCII letters to ASCII ones (the Kelvin sign to "k"): a guard may then be found
# where no rule matches, never missed where one does (patterns ignore ASCII case only,
# and lowering maps ASCII letters alike either way).
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_LONGER_LOWER = "\u0130"


def _lower(text: str) -> str:
    return text.translate(_ASCII_LOWER) if _LONGER_LOWER in text else text.lower()


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
        finders: dict[str, Callable[[str], object]] = {}
        for key, found in by_key.items():
            kinds = {rule.finder for rule in found}
            if len(kinds) == 1 and (finder := kinds.pop()) is not None:
                finders[key] = finder.search
        namespace: dict[str, Any] = {f"find{i}": find for i, find in enumerate(finders.values())}
        namespace["finds"] = _found
        exec(_present_source(tests, list(finders), long=False), namespace)
        exec(_present_source(tests, list(finders), long=True), namespace)
        self._present: Callable[[str, str], tuple[str, ...]] = namespace["present"]
        self._present_long: Callable[[str, str], tuple[str, ...]] = namespace["present_long"]
        self._order = {key: i for i, key in enumerate(self._keys)}

    def present(self, text: str, lowered: str) -> tuple[str, ...]:
        """The guards (lower-cased) that occur in `text` (`lowered` is the text
        lower-cased), in table order; for the common text, none."""
        if len(text) < LONG_TEXT:
            return self.ordered(self._present(text, lowered))
        return self.ordered(self._present_long(text, lowered))

    def ordered(self, found: tuple[str, ...]) -> tuple[str, ...]:
        if len(found) > 1:
            found = tuple(sorted(found, key=self._order.__getitem__))
        return found

    def apply(self, text: str, lowered: str, found: Iterable[str]) -> str:
        """`text` with the rules of the guards `found` applied, in table order."""
        budget = _budget(text)
        for key in found:
            for rule in self._by_key.get(key, ()):
                if rule.ignore_case:
                    haystack = lowered
                elif rule.guard in text:
                    haystack = text
                else:
                    continue
                literal = rule.first
                if literal and haystack.count(literal) > _places(text):
                    start = haystack.find(literal)
                    redacted = text[:start] + _masked_from(rule, text, haystack, start)
                else:
                    redacted, budget = _sub(rule, text, haystack, budget)
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


# A text this long has its guards looked for by `present_long` (see `_present_source`).
LONG_TEXT = 512


def _present_source(
    tests: list[tuple[str, str, str, str]], finders: list[str], *, long: bool
) -> str:
    """The code of `present(text, lowered)` (or `present_long`): the guards, in
    lower case, that `tests` (each: the guard's key, the test of its gate, the guard,
    and where it is looked for: "text" or "lowered") find in a text; `finders` names
    the guards whose finder is in the namespace, as find0, find1, ...

    The guard tests run on every line, so they are generated code: one `if` per guard,
    those behind one gate under one `if`. A loop over the table costs 25-55 % more on
    the common short line (2026-12-01, Redactor guard tests alone, ns a line: screen-
    q-svc 1,210 generated vs 1,540 loop vs 1,659 filter over bound __contains__; job-
    output 465 vs 725 vs 920). The code is made of repr()s of the guards only.

    A guard that has a finder must also be found by it (one search; on a long text, see
    `_found`), and on a long text each character of the guard is looked for before it:
    finding a short guard in a run of its own letters ("aaaa..." for "pass", "api")
    takes a step per character instead of a skip of its length, and a character that
    is absent is found so in one memchr."""
    behind: dict[str, list[tuple[str, str]]] = {}
    for key, gate, guard, where in tests:
        test = f"{guard!r} in {where}"
        if key in finders:
            find = f"find{finders.index(key)}"
            if long:
                test = f"{test} and finds({find}, {where}, {guard!r})"
            else:
                test = f"{test} and {find}({where}) is not None"
        if long:
            letters = [f"{c!r} in {where}" for c in dict.fromkeys(guard)]
            test = " and ".join([*letters, test]) if len(letters) > 1 else test
        behind.setdefault(gate, []).append((key, test))
    name = "present_long" if long else "present"
    source = [f"def {name}(text, lowered):", "    found = ()"]
    for gate, found in behind.items():
        indent = "        " if gate else "    "
        if gate:
            source.append(f"    if {gate}:")
        source += [f"{indent}if {test}:\n{indent}    found += ({key!r},)" for key, test in found]
    source.append("    return found")
    return "\n".join(source)


# A long text is searched by a finder in one go up to this length.
FINDER_SPAN = 8192


def _found(find: Callable[..., object], text: str, guard: str) -> bool:
    """Whether `find` (a finder's search) finds a place in a long text `text`, where
    `guard` occurs. Searched at no more occurrences than the rule would try: a finder
    tried at each of thousands costs ~50 ns each, and past `_places` of them the rule
    masks the text without searching (so the guard counts as found)."""
    if find(text, 0, FINDER_SPAN) is not None:
        return True
    if len(text) <= FINDER_SPAN:
        return False
    return text.count(guard) > _places(text) or find(text) is not None


def _test(guard: str, gate: str, *, in_text: bool) -> tuple[str, str, str]:
    """The test of `gate`, `guard` and where both are looked for."""
    where = "text" if in_text else "lowered"
    return (f"{gate!r} in {where}" if gate else "", guard, where)


def _key_test(key: str, rules: list[Rule]) -> tuple[str, str, str]:
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
    return _masked_group(match, rule.replacement)


def _masked_group(match: re.Match[str], replacement: str = MASK) -> str:
    """The match with its `secret` group replaced, and its `secret2` group if the
    pattern has one (a second secret of one command)."""
    whole = match.group()
    base = match.start()
    spans = [match.span("secret")]
    if "secret2" in match.re.groupindex:
        spans.append(match.span("secret2"))
    for start, end in reversed(spans):
        if start >= 0:  # the group took part in this match
            whole = whole[: start - base] + replacement + whole[end - base :]
    return whole


def _sub(rule: Rule, text: str, haystack: str, budget: int) -> tuple[str, int]:
    """`rule.pattern.sub(...)`, trying the pattern at no more than `budget` places, and
    what remains of the budget. The matches of an anchored rule start where its guard
    (or finder) is found in `haystack` (the text, or the text lower-cased position for
    position): the pattern is tried there only. Once the budget is spent, the text is
    masked from the next place on (`_masked_from`)."""
    pieces: list[str] = []
    done = 0
    if rule.anchored:
        match_at = rule.pattern.match
        if rule.finder is None:
            starts: Iterable[int] = _occurrences(haystack, rule.first, lambda: done)
        else:
            starts = (found.start() for found in rule.finder.finditer(haystack))
        for start in starts:
            if start >= done:  # not inside the previous match: sub does not overlap matches
                if not budget:
                    pieces += (text[done:start], _masked_from(rule, text, haystack, start))
                    return "".join(pieces), 0
                budget -= 1
                match = match_at(text, start)
                if match is not None and match.end() > start:
                    pieces += (text[done:start], _replace(rule, match))
                    done = match.end()
    else:
        for match in rule.pattern.finditer(text):
            start = match.start()
            if not budget:
                pieces += (text[done:start], _masked_from(rule, text, haystack, start))
                return "".join(pieces), 0
            budget -= 1
            pieces += (text[done:start], _replace(rule, match))
            done = match.end()
    if not pieces:
        return text, budget
    pieces.append(text[done:])
    return "".join(pieces), budget


def _masked_from(rule: Rule, text: str, haystack: str, start: int) -> str:
    """The text from `start` (where a match of the rule may start) on, when the rule's
    matches are not looked for one by one: masked to the end of the line of the last
    place where one may start (a built-in rule's match never spans lines), or to the
    end of the text for a rule from the configuration."""
    end = haystack.find("\n", haystack.rfind(rule.first, start)) if rule.first else -1
    return MASK + (text[end:] if end >= 0 else "")


def _occurrences(text: str, literal: str, done: Callable[[], int]) -> Iterator[int]:
    """Where `literal` occurs in `text`, from the end of what is `done` on (a match
    that reaches a long line's end is not searched again)."""
    start = text.find(literal)
    while start >= 0:
        yield start
        start = text.find(literal, max(start + 1, done()))


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

    The state kept from event to event: an open private-key block, whose lines may
    each be an event of their own (a console log) or lines of one event, and the
    window after a traced iniset call whose option names a secret (`INISET_LINES`).
    `_carry` says whether either is open: the common line tests that alone.
    """

    # Field values repeat (levels, modules, hosts): each distinct one is redacted once,
    # and remembered when it holds nothing secret.
    CLEAN_SIZE = 8192
    # A long message is mostly a traceback, and a service logs the same traceback again
    # and again (nova-api.log: 8,747 of them, 16 different): each is redacted once.
    # Hashing one costs a tenth of looking for the guards in it.
    LONG = LONG_TEXT
    REPEATED_SIZE = 256

    def __init__(self, rules: RuleSet = DEFAULT_RULES) -> None:
        self.rules = rules
        self._pem_lines = 0
        self._option = ""  # the option of the open iniset window
        self._option_lines = 0  # how many more lines it spans
        self._carry = False
        self._clean: set[Any] = set()
        self._repeated: dict[str, str] = {}

    def events(self, events: Iterable[Event]) -> Iterator[Event]:
        # message() and fields() for the common event, spelled out: this runs on every
        # line, and a call costs as much as several guard tests.
        present = self.rules._present
        ascii_lower = _ASCII_LOWER
        longer = _LONGER_LOWER
        clean = self._clean
        repeated = self._repeated
        long_text = self.LONG
        shared: dict[str, Any] | None = None  # the last dict seen, and what it became
        shared_redacted: dict[str, Any] = {}
        for event in events:
            text = event.message
            if len(text) < long_text:
                lowered = text.translate(ascii_lower) if longer in text else text.lower()
                found = present(text, lowered)
                if found or self._carry:
                    event.message = self._message(text, lowered, self.rules.ordered(found))
            elif self._carry:
                event.message = self.message(text)
            else:
                cached = repeated.get(text)
                if cached is None:
                    cached = self.message(text)
                    if not self._carry and PEM_GUARD not in text:  # as anywhere else
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
        if found:
            text = rules.apply(text, lowered, found)
        # The names are looked for as the rules leave them: they mask values only.
        if self._option_lines or "iniset" in found:
            text = self._iniset_trace(text)
        self._carry = bool(self._pem_lines or self._option_lines)
        return text

    def _iniset_trace(self, text: str) -> str:
        if "\n" not in text:
            return self._iniset_line(text)
        return "\n".join(self._iniset_line(line) for line in text.split("\n"))

    def _iniset_line(self, line: str) -> str:
        """`line` with the value of the open iniset window's option masked; an iniset
        call whose option names a secret opens a window, the trace of another option
        closes it. (Only the call can open one: the trace of its option, the common
        line to look at, holds no guard.)"""
        if "iniset" in line and (call := _INISET_CALL.search(line)) is not None:
            secret = _names_secret(call["section"], call["option"])
            self._option, self._option_lines = call["option"], INISET_LINES if secret else 0
            return line
        if not self._option_lines:
            return line
        if "option=" in line and (local := _LOCAL_OPTION.search(line)) is not None:
            if local["option"] != self._option:  # another function's trace
                self._option_lines = 0
            return line
        self._option_lines -= 1
        if "value=" in line:
            return _local_value(line)
        if self._option in line:
            return _config_line(self._option).sub(_masked_group, line)
        return line

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
