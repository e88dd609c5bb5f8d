"""Lucene query_string syntax to a small typed query model, as Elasticsearch reads it.

The grammar is Lucene's classic query parser (the one Elasticsearch's query_string runs):
its tokens (`AND`/`&&`, `OR`/`||`, `NOT`/`!`, `+`, `-`, terms, quoted phrases, `*`,
prefix and wildcard terms, `/regex/`, `[a TO b]`, `{a TO b}`, `~` and `^` suffixes, with
the longest token winning, as in its generated lexer) and its rules for combining
clauses: the default operator is OR, `AND` makes both neighbours required, a SHOULD
clause stops mattering once a clause is required, a group of only negated clauses means
"everything except" (Elasticsearch adds a match-all to it).

Values are analyzed per field as the index template (worker.fields) maps it: a text
field's value becomes the standard analyzer's tokens (worker.analysis): a quoted value
a phrase of them, an unquoted one those terms joined by OR (the default operator);
prefix, wildcard and fuzzy terms on text are lower-cased, not split. A keyword field's
value is exact; numbers, dates and booleans are parsed; `>`, `>=`, `<`, `<=` prefixes
and `[a TO b]` are ranges. The model is the sink-independent result; a sink compiles it
(worker/sinks/sqlite_query.py). What the model cannot express is refused by name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from worker.analysis import tokens
from worker.errors import QueryError
from worker.fields import Catalogue, Field, FieldMapping, Kind, catalogue
from worker.sinks.query_depth import check_query_depth

UNSUPPORTED_HINT = "(use an Elasticsearch or OpenSearch sink for full query_string syntax)"
# Elasticsearch's query_string defaults.
FUZZY_MAX_EXPANSIONS = 50
MAX_EDITS = 2

# Elasticsearch's metadata fields that a query may name.
_META_FIELDS = {
    "_id": Field("_id", FieldMapping(Kind.KEYWORD)),
    "_index": Field("_index", FieldMapping(Kind.KEYWORD)),
}


# -- the model ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MatchAll:
    pass


@dataclass(frozen=True, slots=True)
class MatchNone:
    pass


@dataclass(frozen=True, slots=True)
class Bool:
    """Lucene's BooleanQuery: every `must`, none of `must_not`, and at least one `should`
    when there is no `must` (a group of only `must_not` has a MatchAll `must`)."""

    must: tuple[Query, ...] = ()
    should: tuple[Query, ...] = ()
    must_not: tuple[Query, ...] = ()


@dataclass(frozen=True, slots=True)
class Term:
    """On text: a token among the value's tokens; else the exact value."""

    field: Field
    value: str | int | float | bool


@dataclass(frozen=True, slots=True)
class Phrase:
    """Text only: the tokens in a row within one value; with a slop, in at most that many
    moves of a token (Lucene's sloppy phrase: the query's positions of the tokens found
    stray from each other by `slop` at most)."""

    field: Field
    terms: tuple[str, ...]
    slop: int = 0


@dataclass(frozen=True, slots=True)
class Regexp:
    """A token (text) or value (keyword) matching all of `pattern`, Lucene's regular
    expression written as a Python one."""

    field: Field
    pattern: str


@dataclass(frozen=True, slots=True)
class Prefix:
    """On text: a token starting with `prefix`; else a value starting with it."""

    field: Field
    prefix: str


@dataclass(frozen=True, slots=True)
class Wildcard:
    """A token (text) or value (keyword) matching the pattern, all of it. `parts`
    alternate literal text and a wildcard ("*" any characters, "?" one): even indices
    are literals (maybe empty), odd ones wildcards."""

    field: Field
    parts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Fuzzy:
    """A token (text) or value (keyword) within `max_edits` edits of `term` (Damerau:
    a swap of neighbours is one edit), of the FUZZY_MAX_EXPANSIONS closest in the index."""

    field: Field
    term: str
    max_edits: int


@dataclass(frozen=True, slots=True)
class Range:
    """Bounds are numbers on numeric fields, epoch milliseconds on dates (both bounds
    inclusive then, already rounded as Elasticsearch rounds them), text on keywords."""

    field: Field
    low: str | int | float | None
    high: str | int | float | None
    include_low: bool = True
    include_high: bool = True


@dataclass(frozen=True, slots=True)
class Exists:
    field: Field


# The queries on one field's values.
FieldQuery = Term | Phrase | Prefix | Wildcard | Regexp | Fuzzy | Range
Query = MatchAll | MatchNone | Bool | Exists | FieldQuery


# -- the lexer ---------------------------------------------------------------------------


class _T(Enum):
    AND = "AND"
    OR = "OR"
    NOT = "NOT"
    PLUS = "+"
    MINUS = "-"
    BAREOPER = "bare operator"
    LPAREN = "("
    RPAREN = ")"
    COLON = ":"
    STAR = "*"
    CARAT = "^"
    QUOTED = "quoted"
    TERM = "term"
    FUZZY_SLOP = "~"
    PREFIXTERM = "prefix"
    WILDTERM = "wildcard"
    REGEXPTERM = "regexp"
    RANGEIN_START = "["
    RANGEEX_START = "{"
    NUMBER = "number"
    RANGE_TO = "TO"
    RANGEIN_END = "]"
    RANGEEX_END = "}"
    RANGE_QUOTED = "range quoted"
    RANGE_GOOP = "range value"
    EOF = "end of query"


_WS = " \t\n\r\u3000"
_ESCAPED = r"\\."
_START = rf"(?:[^{_WS}+\-!():^\[\]\"{{}}~*?\\/]|{_ESCAPED})"
_CHAR = rf"(?:[^{_WS}!():^\[\]\"{{}}~*?\\/]|{_ESCAPED})"

# In each lexer state, the token kinds in the grammar's order (a tie in length goes to the
# earlier one); the longest match wins.
_DEFAULT = [
    (_T.AND, r"AND|&&"),
    (_T.OR, r"OR|\|\|"),
    (_T.NOT, r"NOT|!"),
    (_T.PLUS, r"\+"),
    (_T.MINUS, r"-"),
    (_T.BAREOPER, rf"[+\-!][{_WS}]"),
    (_T.LPAREN, r"\("),
    (_T.RPAREN, r"\)"),
    (_T.COLON, r":"),
    (_T.STAR, r"\*"),
    (_T.CARAT, r"\^"),
    (_T.QUOTED, rf'"(?:[^"\\]|{_ESCAPED})*"'),
    (_T.TERM, rf"{_START}{_CHAR}*"),
    (_T.FUZZY_SLOP, rf"~{_CHAR}*"),
    (_T.PREFIXTERM, rf"\*|{_START}{_CHAR}*\*"),
    (_T.WILDTERM, rf"(?:{_START}|[*?])(?:{_CHAR}|[*?])*"),
    (_T.REGEXPTERM, r"/(?:\\/|[^/])*/"),
    (_T.RANGEIN_START, r"\["),
    (_T.RANGEEX_START, r"\{"),
]
_BOOST = [(_T.NUMBER, r"[0-9]+(?:\.[0-9]+)?")]
_RANGE = [
    (_T.RANGE_TO, r"TO"),
    (_T.RANGEIN_END, r"\]"),
    (_T.RANGEEX_END, r"\}"),
    (_T.RANGE_QUOTED, r'"(?:[^"]|\\")+"'),
    (_T.RANGE_GOOP, r"[^ \]}]+"),
]
_STATES = {
    name: [(kind, re.compile(pattern, re.DOTALL)) for kind, pattern in rules]
    for name, rules in (("default", _DEFAULT), ("boost", _BOOST), ("range", _RANGE))
}
_NEXT_STATE = {
    _T.CARAT: "boost",
    _T.NUMBER: "default",
    _T.RANGEIN_START: "range",
    _T.RANGEEX_START: "range",
    _T.RANGEIN_END: "default",
    _T.RANGEEX_END: "default",
}
_SKIP = re.compile(f"[{_WS}]+")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: _T
    text: str
    position: int


def _lex(query: str) -> list[_Token]:
    found: list[_Token] = []
    state = "default"
    position = 0
    while True:
        skipped = _SKIP.match(query, position)
        if skipped:
            position = skipped.end()
        if position >= len(query):
            found.append(_Token(_T.EOF, "", position))
            return found
        best: tuple[int, _T] | None = None
        for kind, pattern in _STATES[state]:
            match = pattern.match(query, position)
            if match and match.end() > position and (best is None or match.end() > best[0]):
                best = (match.end(), kind)
        if best is None:
            raise QueryError(
                f"query syntax error: unexpected {query[position]!r} at position {position}"
            )
        end, kind = best
        found.append(_Token(kind, query[position:end], position))
        state = _NEXT_STATE.get(kind, state)
        position = end


# -- the parser --------------------------------------------------------------------------


class _Occur(Enum):
    MUST = "must"
    SHOULD = "should"
    MUST_NOT = "must_not"


_CLAUSE_START = {
    _T.TERM,
    _T.STAR,
    _T.PREFIXTERM,
    _T.WILDTERM,
    _T.REGEXPTERM,
    _T.BAREOPER,
    _T.QUOTED,
    _T.RANGEIN_START,
    _T.RANGEEX_START,
    _T.LPAREN,
}
# Lucene's escapes: \uXXXX is a character by its code, \ before any other its character.
_UNESCAPE = re.compile(r"\\u([0-9A-Fa-f]{4})|\\(.)", re.DOTALL)


def unescape(text: str) -> str:
    return _UNESCAPE.sub(lambda m: chr(int(m[1], 16)) if m[1] else m[2], text)


def unsupported(what: str, text: str, position: int | None = None) -> QueryError:
    quoted = f"'{text}'" if '"' in text else f'"{text}"'
    at = "" if position is None else f" at position {position}"
    return QueryError(f"unsupported on SQLite: {what} {quoted}{at} {UNSUPPORTED_HINT}")


def parse(query: str, fields: Catalogue | None = None) -> Query:
    """The model of `query`; QueryError for a syntax error or what the model lacks."""
    if not query.strip():
        raise QueryError("empty query (use * to match every document)")
    check_query_depth(query)  # the parser below recurses once per level
    parser = _Parser(query, _lex(query), fields or catalogue())
    result = parser.query(None)
    parser.expect(_T.EOF)
    return MatchNone() if result is None else result


class _Parser:
    def __init__(self, query: str, found: list[_Token], fields: Catalogue) -> None:
        self.text = query
        self.tokens = found
        self.index = 0
        self.fields = fields

    # -- token access

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.index += 1
        return token

    def expect(self, kind: _T) -> _Token:
        token = self.peek()
        if token.kind is not kind:
            raise self.syntax(token, f"expected {kind.value}")
        return self.take()

    def syntax(self, token: _Token, wanted: str) -> QueryError:
        got = "the end of the query" if token.kind is _T.EOF else f"{token.text!r}"
        return QueryError(f"query syntax error: {wanted}, got {got} at position {token.position}")

    # -- grammar

    def query(self, field: str | None) -> Query | None:
        """Query ::= Modifiers Clause (Conjunction Modifiers Clause)*"""
        clauses: list[tuple[_Occur, Query]] = []
        first: Query | None = None
        conj: _T | None = None
        read = 0
        while True:
            modifier = self.modifier()
            clause = self.clause(field)
            self.add(clauses, conj, modifier, clause)
            if read == 0 and modifier is None:
                first = clause  # a lone unmodified clause is itself, not a group of one
            read += 1
            if self.peek().kind in (_T.EOF, _T.RPAREN):
                break
            conj = self.take().kind if self.peek().kind in (_T.AND, _T.OR) else None
        if len(clauses) == 1 and first is not None:
            return first
        return _boolean(clauses)

    def modifier(self) -> _T | None:
        if self.peek().kind in (_T.PLUS, _T.MINUS, _T.NOT):
            return self.take().kind
        return None

    @staticmethod
    def add(
        clauses: list[tuple[_Occur, Query]], conj: _T | None, modifier: _T | None, q: Query | None
    ) -> None:
        # As Lucene's QueryParserBase.addClause with the default operator OR.
        if clauses and conj is _T.AND and clauses[-1][0] is not _Occur.MUST_NOT:
            clauses[-1] = (_Occur.MUST, clauses[-1][1])
        if q is None:
            return  # analyzed away
        if modifier in (_T.MINUS, _T.NOT):
            clauses.append((_Occur.MUST_NOT, q))
        elif modifier is _T.PLUS or conj is _T.AND:
            clauses.append((_Occur.MUST, q))
        else:
            clauses.append((_Occur.SHOULD, q))

    def clause(self, field: str | None) -> Query | None:
        """Clause ::= [field ":"] (Term | "(" Query ")" ["^" boost])"""
        token = self.peek()
        if token.kind not in _CLAUSE_START:
            raise self.syntax(token, "expected a term, a phrase or (")
        if self.peek(1).kind is _T.COLON and token.kind in (_T.TERM, _T.STAR):
            self.index += 2
            field = "*" if token.kind is _T.STAR else unescape(token.text)
            if self.peek().kind is _T.COLON or (
                self.peek(1).kind is _T.COLON and self.peek().kind is _T.TERM
            ):
                # Lucene rejects `a:b:c`; it is nearly always an unescaped colon in a value.
                raise QueryError(
                    f"query syntax error: field inside field at position {self.peek().position}"
                    ' (escape ":" in a value as "\\:" or quote the value)'
                )
        if self.peek().kind is _T.LPAREN:
            self.take()
            inner = self.query(field)
            self.expect(_T.RPAREN)
            self.boost()
            return inner
        return self.term(field)

    def boost(self) -> None:
        # Boosts change scores only, never which documents match.
        if self.peek().kind is _T.CARAT:
            self.take()
            self.expect(_T.NUMBER)

    def suffixes(self) -> _Token | None:
        """["^" boost ["~" slop] | "~" slop ["^" boost]]: the slop, if any."""
        slop = None
        if self.peek().kind is _T.CARAT:
            self.boost()
            if self.peek().kind is _T.FUZZY_SLOP:
                slop = self.take()
        elif self.peek().kind is _T.FUZZY_SLOP:
            slop = self.take()
            self.boost()
        return slop

    def term(self, field: str | None) -> Query | None:
        token = self.take()
        if token.kind not in _CLAUSE_START or token.kind is _T.LPAREN:
            raise self.syntax(token, "expected a term, a phrase or (")
        if token.kind in (_T.RANGEIN_START, _T.RANGEEX_START):
            return self.range(field, token)
        slop = self.suffixes()
        name = field if field is not None else self.fields.default_field
        if token.kind is _T.QUOTED:
            text = unescape(token.text[1:-1])
            phrase = self.value(name, text, True, token)
            if slop is not None and isinstance(phrase, Phrase):
                return Phrase(phrase.field, phrase.terms, _slop(slop, self, token))
            return phrase
        if token.kind is _T.REGEXPTERM:
            resolved = self.resolve(name, token)
            if resolved is None:
                return MatchNone()
            return _regexp(resolved, token.text[1:-1], self.span(token), token.position)
        if token.kind is _T.STAR or (token.kind is _T.WILDTERM and token.text == "*"):
            if field is None or field == "*":
                return MatchAll()
            return self.exists(field)
        text = token.text[0] if token.kind is _T.BAREOPER else unescape(token.text)
        if token.kind not in (_T.PREFIXTERM, _T.WILDTERM) and slop is None:
            return self.value(name, text, False, token)
        resolved = self.resolve(name, token)
        if resolved is None:
            return MatchNone()  # no such field (`message.raw`): Elasticsearch matches none
        if token.kind is _T.PREFIXTERM:
            return _prefix(resolved, unescape(token.text[:-1]))
        if token.kind is _T.WILDTERM:
            return _wildcard(resolved, token.text, token)
        assert slop is not None
        return self.fuzzy(resolved, text, slop, token)

    def span(self, token: _Token) -> str:
        """The query's text from `token` to the current position."""
        return self.text[token.position : self.peek().position].strip()

    def resolve(self, name: str, token: _Token) -> Field | None:
        if name == "*" or "*" in name or "?" in name:
            raise unsupported("field name pattern", f"{name}:{self.span(token)}", token.position)
        if name in _META_FIELDS:
            return _META_FIELDS[name]
        return self.fields.lookup(name)

    def exists(self, name: str) -> Query:
        if name in _META_FIELDS:
            return MatchAll()
        resolved = self.fields.lookup(name)
        return MatchNone() if resolved is None else Exists(resolved)

    def value(self, name: str, text: str, quoted: bool, token: _Token) -> Query | None:
        """Elasticsearch's getFieldQuery: `_exists_`, range prefixes, then analysis."""
        if name == "_exists_":
            return self.exists(text)
        if not quoted and len(text) > 1 and text[0] in "<>":
            inclusive = len(text) > 2 and text[1] == "="
            bound = text[2:] if inclusive else text[1:]
            field = self.resolve(name, token)
            if field is None:
                return MatchNone()
            if text[0] == ">":
                return _range(field, bound, None, inclusive, True, self, token)
            return _range(field, None, bound, True, inclusive, self, token)
        field = self.resolve(name, token)
        if field is None:
            return MatchNone()
        return analyze(field, text, quoted, self.span(token))

    def fuzzy(self, field: Field, text: str, slop: _Token, token: _Token) -> Query:
        distance = slop.text[1:]
        if not distance:
            # Elasticsearch's default fuzziness, AUTO: by the term's length.
            length = len(text)
            edits = 0 if length < 3 else 1 if length < 6 else 2
        elif re.fullmatch(r"[0-2](?:\.0+)?", distance):
            edits = int(float(distance))
        else:
            raise unsupported("fuzzy edit distance", self.span(token), token.position)
        kind = field.mapping.kind
        if kind is not Kind.TEXT and kind is not Kind.KEYWORD:
            raise unsupported(f"fuzzy term on {kind.value} field {field.path}", self.span(token))
        term = text.lower() if kind is Kind.TEXT else text
        if edits == 0:
            return Term(field, term)
        return Fuzzy(field, term, edits)

    def range(self, field: str | None, start: _Token) -> Query | None:
        low = self.take()
        if low.kind not in (_T.RANGE_GOOP, _T.RANGE_QUOTED, _T.RANGE_TO):
            raise self.syntax(low, "expected a range's lower bound")
        if self.peek().kind is _T.RANGE_TO:
            self.take()
        high = self.take()
        if high.kind not in (_T.RANGE_GOOP, _T.RANGE_QUOTED, _T.RANGE_TO):
            raise self.syntax(high, "expected a range's upper bound")
        end = self.take()
        if end.kind not in (_T.RANGEIN_END, _T.RANGEEX_END):
            raise self.syntax(end, "expected ] or }")
        self.boost()
        name = field if field is not None else self.fields.default_field
        resolved = self.resolve(name, start)
        if resolved is None:
            return MatchNone()
        return _range(
            resolved,
            _bound(low),
            _bound(high),
            start.kind is _T.RANGEIN_START,
            end.kind is _T.RANGEIN_END,
            self,
            start,
        )


def _slop(token: _Token, parser: _Parser, start: _Token) -> int:
    try:
        # Lucene takes the whole part of a slop such as ~2.5.
        return int(float(token.text[1:] or 0))
    except ValueError:
        raise unsupported("phrase slop", parser.span(start), start.position) from None


def _bound(token: _Token) -> str | None:
    if token.kind is _T.RANGE_QUOTED:
        return unescape(token.text[1:-1])
    return None if token.text == "*" else unescape(token.text)


def _boolean(clauses: list[tuple[_Occur, Query]]) -> Query | None:
    if not clauses:
        return None
    must = tuple(q for o, q in clauses if o is _Occur.MUST)
    should = tuple(q for o, q in clauses if o is _Occur.SHOULD)
    must_not = tuple(q for o, q in clauses if o is _Occur.MUST_NOT)
    if not must and not should:
        must = (MatchAll(),)  # Elasticsearch's fix for a purely negative group
    return Bool(must, should, must_not)


# -- analysis per field kind -------------------------------------------------------------


def analyze(field: Field, text: str, quoted: bool, shown: str) -> Query | None:
    """A value on `field`, as Elasticsearch's query_string analyzes it there."""
    kind = field.mapping.kind
    if kind is Kind.TEXT:
        terms = tokens(text)
        if not terms:
            return None
        if len(terms) == 1:
            return Term(field, terms[0])
        if quoted:
            return Phrase(field, tuple(terms))
        return Bool(should=tuple(Term(field, term) for term in terms))
    if kind is Kind.KEYWORD:
        return Term(field, text)
    if kind is Kind.BOOLEAN:
        if text not in ("true", "false"):
            raise QueryError(f"{field.path}: {text!r} is not a boolean (true or false)")
        return Term(field, text == "true")
    if kind is Kind.DATE:
        return Range(field, _millis(text, False, field), _millis(text, True, field))
    number = _number(text, field)
    if kind is not Kind.FLOAT and number != int(number):
        return MatchNone()  # an integer field holds no value with a fraction
    return Term(field, int(number) if kind is not Kind.FLOAT else number)


def _number(text: str, field: Field) -> float:
    try:
        number = float(text)
    except ValueError:
        raise QueryError(f"{field.path}: {text!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise QueryError(f"{field.path}: {text!r} is not a number")
    return number


def _prefix(field: Field, prefix: str) -> Query:
    kind = field.mapping.kind
    if kind is Kind.TEXT:
        return Prefix(field, prefix.lower())
    if kind is Kind.KEYWORD:
        return Prefix(field, prefix)
    raise unsupported(f"prefix term on {kind.value} field {field.path}", f"{prefix}*")


def _wildcard(field: Field, text: str, token: _Token) -> Query:
    kind = field.mapping.kind
    if kind is not Kind.TEXT and kind is not Kind.KEYWORD:
        raise unsupported(f"wildcard on {kind.value} field {field.path}", text, token.position)
    parts: list[str] = [""]
    index = 0
    while index < len(text):
        character = text[index]
        if character == "\\" and index + 1 < len(text):
            parts[-1] += text[index + 1]
            index += 2
            continue
        if character in "*?":
            parts.extend([character, ""])
        else:
            parts[-1] += character
        index += 1
    if kind is Kind.TEXT:
        parts = [part.lower() for part in parts]
    if len(parts) == 3 and parts[1] == "*" and not parts[2]:
        return Prefix(field, parts[0])
    return Wildcard(field, tuple(parts))


def _range(
    field: Field,
    low: str | None,
    high: str | None,
    include_low: bool,
    include_high: bool,
    parser: _Parser,
    token: _Token,
) -> Query:
    kind = field.mapping.kind
    if kind is Kind.KEYWORD:
        return Range(field, low, high, include_low, include_high)
    if field.dynamic and kind is Kind.TEXT:
        # A field the template does not name is numeric where its values are numbers.
        field = Field(field.path, FieldMapping(Kind.FLOAT), dynamic=True)
        kind = Kind.FLOAT
    if kind.numeric:
        low_number = None if low is None else _number(low, field)
        high_number = None if high is None else _number(high, field)
        if kind is not Kind.FLOAT:
            # Integer fields hold whole numbers: a bound steps inwards to the nearest one.
            if low_number is not None:
                whole = low_number == int(low_number) and include_low
                low_number = int(low_number) if whole else math.floor(low_number) + 1
                include_low = True
            if high_number is not None:
                whole = high_number == int(high_number) and include_high
                high_number = int(high_number) if whole else math.ceil(high_number) - 1
                include_high = True
        return Range(field, low_number, high_number, include_low, include_high)
    if kind is Kind.DATE:
        # Elasticsearch rounds a bound up (missing parts at their largest) for > and <=.
        low_ms = None if low is None else _millis(low, not include_low, field)
        high_ms = None if high is None else _millis(high, include_high, field)
        if low_ms is not None and not include_low:
            low_ms += 1
        if high_ms is not None and not include_high:
            high_ms -= 1
        return Range(field, low_ms, high_ms)
    if kind is Kind.TEXT:
        # A range of the tokens themselves, its bounds lower-cased.
        return Range(
            field,
            None if low is None else low.lower(),
            None if high is None else high.lower(),
            include_low,
            include_high,
        )
    what = f"range on {kind.value} field {field.path}"
    raise unsupported(what, parser.span(token), token.position)


# strict_date_optional_time: a date, optionally a time, optionally a zone.
_DATE = re.compile(
    r"(?P<year>[0-9]{4})(?:-(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2})"
    r"(?:T(?P<hour>[0-9]{2})(?::(?P<minute>[0-9]{2})(?::(?P<second>[0-9]{2})"
    r"(?:[.,](?P<fraction>[0-9]{1,9}))?)?)?"
    r"(?P<zone>Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?)?)?"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# Date math: `now` or `<date>||`, then steps such as +1d, -2h, /d (y M w d h H m s).
_MATH_STEP = re.compile(r"([+-])([0-9]+)([yMwdhHms])|/([yMwdhHms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}


def _millis(text: str, round_up: bool, field: Field) -> int:
    """`text` as epoch milliseconds, as Elasticsearch's date field parses a query value,
    date math included (in UTC; `now` is the time of the call)."""
    if text.startswith("now"):
        anchor, math = None, text[3:]
    elif "||" in text:
        anchor, _, math = text.partition("||")
    else:
        return _plain_millis(text, round_up, field)
    steps = list(_MATH_STEP.finditer(math))
    if "".join(step[0] for step in steps) != math:
        raise QueryError(f"{field.path}: {text!r}: date math steps are +N, -N or / and a unit")
    if anchor is None:
        now = datetime.now(UTC)
        moment = now.replace(microsecond=now.microsecond // 1000 * 1000)
    else:
        # The anchor is rounded up only when no step follows it.
        anchored = _plain_millis(anchor, round_up and not math, field)
        moment = _EPOCH + timedelta(milliseconds=anchored)
    rounded = False
    for step in steps:
        if step[4] is None:
            moment = _shift(moment, int(step[2]) * (1 if step[1] == "+" else -1), step[3])
        else:
            moment = _round_down(moment, step[4])
            if round_up:
                moment = _shift(moment, 1, step[4])
            rounded = True
    millis = (moment - _EPOCH) // timedelta(milliseconds=1)
    # Rounding up ends a unit at its last millisecond.
    return millis - 1 if rounded and round_up else millis


def _shift(moment: datetime, count: int, unit: str) -> datetime:
    if unit in ("y", "M"):
        months = moment.month - 1 + count * (12 if unit == "y" else 1)
        year, month = moment.year + months // 12, months % 12 + 1
        following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        last_day = (following - timedelta(days=1)).day
        return moment.replace(year=year, month=month, day=min(moment.day, last_day))
    return moment + timedelta(seconds=count * _UNIT_SECONDS[unit])


def _round_down(moment: datetime, unit: str) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "y":
        return day.replace(month=1, day=1)
    if unit == "M":
        return day.replace(day=1)
    if unit == "w":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if unit == "d":
        return day
    if unit in ("h", "H"):
        return moment.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    return moment.replace(microsecond=0)


def _plain_millis(text: str, round_up: bool, field: Field) -> int:
    # strict_date_optional_time||epoch_millis: "2018" is a year, other numbers milliseconds.
    match = _DATE.fullmatch(text)
    if match is None and re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    if match is None:
        raise QueryError(
            f"{field.path}: {text!r} is not a date (yyyy-MM-dd'T'HH:mm:ss.SSSZ or a part)"
        )
    parts = match.groupdict()
    # Rounding up fills a missing time of day with its largest value; a missing month or
    # day is the first either way (Elasticsearch's "missing date components").
    largest = {"hour": 23, "minute": 59, "second": 59}
    hour, minute, second = (
        int(parts[name]) if parts[name] is not None else (largest[name] if round_up else 0)
        for name in ("hour", "minute", "second")
    )
    try:
        moment = datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            hour,
            minute,
            second,
            tzinfo=UTC,
        )
    except ValueError:
        raise QueryError(f"{field.path}: {text!r} is not a date") from None
    fraction = parts["fraction"]
    millis = (999 if round_up else 0) if fraction is None else int(fraction[:3].ljust(3, "0"))
    zone = parts["zone"]
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        moment -= sign * offset
    return (moment - _EPOCH) // timedelta(seconds=1) * 1000 + millis


# Lucene's regular expressions (RegExp with its default syntax): these are plain
# characters in Python's engine only when escaped; Lucene's own operators beyond
# Python's are refused by name.
_REGEX_OPERATORS = {
    "@": "any string (@)",
    "#": "empty language (#)",
    "<": "numeric range (<>)",
    "&": "intersection (&)",
    "~": "complement (~)",
}


def _regexp(field: Field, text: str, shown: str, position: int) -> Query:
    kind = field.mapping.kind
    if kind is not Kind.TEXT and kind is not Kind.KEYWORD:
        raise unsupported(f"regular expression on {kind.value} field {field.path}", shown, position)
    # Unlike a wildcard, Elasticsearch does not lower-case an expression: /FO+/ finds no
    # token of a text field.
    out: list[str] = []
    index = 0
    in_class = False
    while index < len(text):
        character = text[index]
        if character == "\\" and index + 1 < len(text):
            out.append(re.escape(text[index + 1]))
            index += 2
            continue
        if in_class:
            if character == "]":
                in_class = False
                out.append("]")
            elif character in "[&~\\":
                out.append("\\" + character)
            else:
                out.append(character)
        elif character == "[":
            in_class = True
            out.append("[")
            if text[index + 1 : index + 2] == "^":
                out.append("^")
                index += 1
        elif character == '"':
            end = text.find('"', index + 1)
            if end < 0:
                raise unsupported("regular expression with an unclosed string", shown, position)
            out.append(re.escape(text[index + 1 : end]))
            index = end + 1
            continue
        elif character in _REGEX_OPERATORS:
            raise unsupported(
                f"regular expression operator {_REGEX_OPERATORS[character]}", shown, position
            )
        elif character in ".*+?|(){},":
            out.append(character)
        else:
            out.append(re.escape(character))
        index += 1
    pattern = "".join(out)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise QueryError(f"query syntax error: regular expression {shown}: {exc}") from None
    return Regexp(field, pattern)
