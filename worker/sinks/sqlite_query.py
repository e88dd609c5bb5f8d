"""The query model (worker.lucene) as an SQLite WHERE clause, for the SQLite sink.

Queries run against the view `documents` and the FTS5 index `documents_fts` (rowid =
documents.mid: each distinct message once, as worker.analysis.index_text(message)), with
its two vocabulary tables. `message` is matched through the FTS index; another analyzed field by
`text_match`, which the sink registers on each connection as SQL function
`lucene_text(spec, value)` and which holds the one evaluation of analyzed predicates on a
value; exact, numeric and date conditions are plain SQL on the columns, or on the stored
JSON source for fields without one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from worker.analysis import fts_term, tokens
from worker.errors import QueryError
from worker.fields import Field, Kind
from worker.lucene import (
    FUZZY_MAX_EXPANSIONS,
    Bool,
    Exists,
    FieldQuery,
    Fuzzy,
    MatchAll,
    MatchNone,
    Phrase,
    Prefix,
    Query,
    Range,
    Regexp,
    Term,
    Wildcard,
    parse,
)

# Keyword fields stored in their own TEXT column (exact match, indexable): those a job
# sets for its whole file (log_shipper/metadata.py), which the storage keeps, with tags,
# once per file in table `fieldsets` (worker/sinks/sqlite_schema.py; documents.fs is its
# row), so that a condition on one is evaluated on each file's values once, not on
# every document; and those a line's parser sets.
FILE_KEYWORD_COLUMNS: tuple[str, ...] = (
    "filename",
    "log_url",
    "build_uuid",
    "build_short_uuid",
    "build_name",
    "build_status",
    "build_queue",
    "build_change",
    "build_patchset",
    "build_ref",
    "build_branch",
    "build_newrev",
    "project",
    "voting",
    "node_provider",
    "build_node",
    "zuul_executor",
)
LINE_KEYWORD_COLUMNS: tuple[str, ...] = (
    "loglevel",
    "module",
    "pid",
    "request_id",
    "global_request_id",
    "instance",
    "host",
    "program",
)
KEYWORD_COLUMNS = FILE_KEYWORD_COLUMNS + LINE_KEYWORD_COLUMNS
FILE_COLUMNS = frozenset(FILE_KEYWORD_COLUMNS)
# INTEGER affinity makes `line_number:12` (a text parameter) compare as a number.
INTEGER_COLUMNS: tuple[str, ...] = ("line_number", "line_count", "generation")
# Document fields whose column name differs from the field name.
RENAMED_COLUMNS: dict[str, str] = {"@timestamp": "timestamp", "_id": "id", "_index": "idx"}

_COLUMN_OF: dict[str, str] = {
    **{name: name for name in KEYWORD_COLUMNS + INTEGER_COLUMNS},
    **RENAMED_COLUMNS,
}
FTS_FIELD = "message"  # the field documents_fts indexes
# fts5vocab tables over documents_fts (worker/sinks/sqlite.py creates them).
VOCABULARY = "documents_fts_vocab"  # one row per term
INSTANCES = "documents_fts_instance"  # one row per term and document

Param = str | int | float | None


@dataclass(frozen=True, slots=True)
class SqlCondition:
    """A boolean SQL expression over table `documents`, never NULL, with its parameters."""

    sql: str
    params: tuple[Param, ...] = ()
    # When the condition is on the file fields alone: the same over table fieldsets
    # (then sql is "documents.fs IN (SELECT fs FROM fieldsets WHERE <files>)").
    files: str | None = None


MATCH_ALL = SqlCondition("1")
MATCH_NONE = SqlCondition("0")


def fts_phrase(terms: Sequence[str]) -> str:
    """Tokens as one FTS5 phrase: FTS5 tokenizes inside quotes, so no other escaping."""
    return '"' + " ".join(fts_term(term) for term in terms).replace('"', '""') + '"'


def translate(query: str) -> SqlCondition:
    """The WHERE condition selecting the documents `query` matches."""
    return compile_query(parse(query))


def compile_query(query: Query | AnyTerm) -> SqlCondition:
    if isinstance(query, AnyTerm):
        spec = orjson.dumps(_text_spec(query)).decode()
        return _on_strings(query.field, "lucene_text(?, {v})", (spec,))
    if isinstance(query, MatchAll):
        return MATCH_ALL
    if isinstance(query, MatchNone):
        return MATCH_NONE
    if isinstance(query, Bool):
        return _boolean(query)
    if isinstance(query, Exists):
        return _exists(query.field)
    return _on_field(query)


def _on_field(query: FieldQuery) -> SqlCondition:
    field = query.field
    kind = field.mapping.kind
    if field.path == FTS_FIELD and kind is Kind.TEXT and not field.dynamic:
        return _fts(query)
    if kind is Kind.TEXT:
        spec = orjson.dumps(_text_spec(query)).decode()
        return _on_strings(field, "lucene_text(?, {v})", (spec,))
    if kind is Kind.KEYWORD:
        return _keyword(query)
    if kind is Kind.DATE:
        return _date(query)
    return _scalar(query)


# -- boolean -----------------------------------------------------------------------------


def _boolean(query: Bool) -> SqlCondition:
    if query.must:
        positive = _and([compile_query(q) for q in query.must])
    elif query.should:
        positive = _or([compile_query(q) for q in _terms_merged(query.should)])
    else:
        positive = MATCH_ALL
    if not query.must_not:
        return positive
    excluded = _or([compile_query(q) for q in query.must_not])
    if excluded == MATCH_NONE:
        return positive
    if excluded.files is not None:
        # Every document has a fieldsets row: not in these files is in the others.
        return _and([positive, _of_files(f"NOT ({excluded.files})", excluded.params)])
    return _and([positive, SqlCondition(f"NOT ({excluded.sql})", excluded.params)])


def _terms_merged(clauses: Sequence[Query]) -> list[Query | AnyTerm]:
    """Alternative terms on one text field (`build_uuid:(a b c ...)`) as one predicate
    of several terms: one call of lucene_text a value, not one per term (a report
    restricts its queries to 250 builds at a time)."""
    by_field: dict[Field, list[Term]] = {}
    others: list[Query | AnyTerm] = []
    for clause in clauses:
        if (
            isinstance(clause, Term)
            and clause.field.mapping.kind is Kind.TEXT
            and clause.field.path != FTS_FIELD
        ):
            by_field.setdefault(clause.field, []).append(clause)
        else:
            others.append(clause)
    merged: list[Query | AnyTerm] = [
        terms[0] if len(terms) == 1 else AnyTerm(field, tuple(str(t.value) for t in terms))
        for field, terms in by_field.items()
    ]
    return [*others, *merged]


@dataclass(frozen=True, slots=True)
class AnyTerm:
    """Any of several tokens on one text field (other than message)."""

    field: Field
    values: tuple[str, ...]


def _joined(operator: str, conditions: Sequence[SqlCondition]) -> SqlCondition:
    """Conditions joined by AND or OR; those on file fields become one test of the
    fieldsets rows, so that SQLite seeks the index of lines by each file it selects."""
    files = [c for c in conditions if c.files is not None]
    if len(files) > 1:
        merged = _of_files(
            f" {operator} ".join(f"({c.files})" for c in files),
            tuple(p for c in files for p in c.params),
        )
        conditions = [merged, *(c for c in conditions if c.files is None)]
    if len(conditions) == 1:
        return conditions[0]
    return SqlCondition(
        f" {operator} ".join(f"({c.sql})" for c in conditions),
        tuple(p for c in conditions for p in c.params),
    )


def _and(conditions: Sequence[SqlCondition]) -> SqlCondition:
    if MATCH_NONE in conditions:
        return MATCH_NONE
    useful = [c for c in conditions if c != MATCH_ALL]
    if not useful:
        return MATCH_ALL
    return _joined("AND", useful)


def _or(conditions: Sequence[SqlCondition]) -> SqlCondition:
    if MATCH_ALL in conditions:
        return MATCH_ALL
    useful = [c for c in conditions if c != MATCH_NONE]
    if not useful:
        return MATCH_NONE
    return _joined("OR", useful)


# -- message: the FTS index --------------------------------------------------------------

_IN_FTS = "documents.mid IN (SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?)"
_IN_INSTANCES = f"documents.mid IN (SELECT doc FROM {INSTANCES} WHERE {{}})"


def _fts(query: FieldQuery) -> SqlCondition:
    if isinstance(query, Term):
        return SqlCondition(_IN_FTS, (fts_phrase([str(query.value)]),))
    if isinstance(query, Phrase):
        if not query.slop:
            return SqlCondition(_IN_FTS, (fts_phrase(query.terms),))
        # FTS5's NEAR finds every sloppy match and some more (either order, the same
        # distance); the tokens of those messages decide.
        near = " ".join(fts_phrase([term]) for term in query.terms)
        spec = orjson.dumps(_text_spec(query)).decode()
        return SqlCondition(
            f"{_IN_FTS} AND lucene_text(?, documents.message)",
            (f"NEAR({near}, {query.slop})", spec),
        )
    if isinstance(query, Regexp):
        terms = f"SELECT term FROM {VOCABULARY} WHERE lucene_text(?, term)"
        spec = orjson.dumps(["value_regexp", query.pattern]).decode()
        return SqlCondition(_IN_INSTANCES.format(f"term IN ({terms})"), (spec,))
    if isinstance(query, Range):
        where, bounds = _bounds(query, "term")
        return SqlCondition(_IN_INSTANCES.format(where), bounds)
    if isinstance(query, Prefix):
        if not query.prefix:
            return _exists(query.field)
        return SqlCondition(_IN_FTS, (fts_phrase([query.prefix]) + " *",))
    if isinstance(query, Wildcard):
        glob, literal = _glob(query.parts)
        where = "term GLOB ?"
        params: tuple[Param, ...] = (glob,)
        if literal:
            # The literal start bounds the terms to scan (fts5vocab seeks on them).
            where += " AND term >= ? AND term < ?"
            params += (literal, literal + "\U0010ffff")
        terms = f"SELECT term FROM {VOCABULARY} WHERE {where}"
        return SqlCondition(_IN_INSTANCES.format(f"term IN ({terms})"), params)
    if isinstance(query, Fuzzy):
        # The closest FUZZY_MAX_EXPANSIONS terms of the index, as Lucene's fuzzy query
        # rewrites itself (best similarity first, then term order).
        expansions = (
            f"SELECT term FROM {VOCABULARY} WHERE length(term) BETWEEN ? AND ?"
            " AND lucene_similarity(?, term, ?) IS NOT NULL"
            " ORDER BY lucene_similarity(?, term, ?) DESC, term LIMIT ?"
        )
        size = len(query.term)
        fuzzy = (query.term, query.max_edits)
        return SqlCondition(
            _IN_INSTANCES.format(f"term IN ({expansions})"),
            (
                size - query.max_edits,
                size + query.max_edits,
                *fuzzy,
                *fuzzy,
                FUZZY_MAX_EXPANSIONS,
            ),
        )
    raise QueryError(f"unsupported on SQLite: {type(query).__name__} on {query}")


def _glob(parts: Sequence[str]) -> tuple[str, str]:
    """A Wildcard's parts as an SQLite GLOB pattern, and its literal start."""
    pattern = "".join(
        part if index % 2 else re.sub(r"([*?\[])", r"[\1]", part)
        for index, part in enumerate(parts)
    )
    return pattern, parts[0]


# -- other analyzed fields: one Python evaluation ----------------------------------------


def _text_spec(query: FieldQuery | AnyTerm) -> list[object]:
    if isinstance(query, Term):
        return ["term", query.value]
    if isinstance(query, AnyTerm):
        return ["terms", sorted(set(query.values))]
    if isinstance(query, Phrase):
        return ["phrase", list(query.terms), query.slop]
    if isinstance(query, Prefix):
        return ["prefix", query.prefix]
    if isinstance(query, Wildcard):
        return ["regexp", _regex(query.parts)]
    if isinstance(query, Regexp):
        return ["regexp", query.pattern]
    if isinstance(query, Fuzzy):
        return ["fuzzy", query.term, query.max_edits]
    return ["range", query.low, query.high, query.include_low, query.include_high]


def _regex(parts: Sequence[str]) -> str:
    return "".join(
        (".*" if part == "*" else ".") if index % 2 else re.escape(part)
        for index, part in enumerate(parts)
    )


@lru_cache(maxsize=65536)
def _value_tokens(value: str) -> tuple[str, ...]:
    return tuple(tokens(value))


@lru_cache(maxsize=1024)
def _parsed_spec(spec: str) -> list[Any]:
    operator, *arguments = orjson.loads(spec)
    if operator == "terms":
        arguments = [frozenset(arguments[0])]
    return [operator, *arguments]


@lru_cache(maxsize=65536)
def text_match(spec: str, value: str | None) -> bool:
    """Whether an analyzed predicate (`spec`, from _text_spec) matches one value of a
    text field: SQL function lucene_text. Values repeat across a build's documents, so
    answers are cached."""
    if value is None:
        return False
    operator, *arguments = _parsed_spec(spec)
    if operator == "value_regexp":
        return _regexp(arguments[0]).fullmatch(value) is not None
    terms = _value_tokens(value)
    if operator == "term":
        return arguments[0] in terms
    if operator == "terms":
        return not arguments[0].isdisjoint(terms)
    if operator == "phrase":
        return _phrase_in(terms, tuple(arguments[0]), arguments[1])
    if operator == "prefix":
        return any(term.startswith(arguments[0]) for term in terms)
    if operator == "regexp":
        pattern = _regexp(arguments[0])
        return any(pattern.fullmatch(term) for term in terms)
    if operator == "fuzzy":
        return any(edits_within(arguments[0], term, arguments[1]) for term in terms)
    if operator == "range":
        low, high, include_low, include_high = arguments
        return any(
            (low is None or term > low or (include_low and term == low))
            and (high is None or term < high or (include_high and term == high))
            for term in terms
        )
    raise QueryError(f"unknown text predicate {operator!r}")


@lru_cache(maxsize=256)
def _regexp(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.DOTALL)


def _phrase_in(terms: tuple[str, ...], phrase: tuple[str, ...], slop: int) -> bool:
    """Whether the phrase's tokens are in `terms` within `slop` (Lucene's sloppy phrase:
    each found position less its place in the phrase stays within `slop` of the
    others; each position used once)."""
    width = len(phrase)
    if not slop:
        return any(terms[i : i + width] == phrase for i in range(len(terms) - width + 1))
    where: dict[str, list[int]] = {}
    for position, term in enumerate(terms):
        where.setdefault(term, []).append(position)
    choices = [where.get(term, []) for term in phrase]
    if not all(choices):
        return False

    def fits(place: int, used: tuple[int, ...], low: int, high: int) -> bool:
        if place == width:
            return True
        for position in choices[place]:
            shifted = position - place
            new_low, new_high = min(low, shifted), max(high, shifted)
            if (
                new_high - new_low <= slop
                and position not in used
                and fits(place + 1, (*used, position), new_low, new_high)
            ):
                return True
        return False

    return any(fits(1, (first,), first, first) for first in choices[0])


def edits_within(a: str, b: str, limit: int) -> bool:
    """Whether `a` becomes `b` in at most `limit` insertions, deletions, substitutions or
    swaps of neighbours (optimal string alignment, as Lucene's fuzzy query counts)."""
    return _distance(a, b, limit) <= limit


def _distance(a: str, b: str, limit: int) -> int:
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return previous[len(b)]


def similarity(term: str, candidate: str, limit: int) -> float | None:
    """Lucene's fuzzy similarity of an index term to the query term (1 - edits / the
    shorter length), None beyond `limit` edits: SQL function lucene_similarity."""
    edits = _distance(term, candidate, limit)
    if edits > limit:
        return None
    shorter = min(len(term), len(candidate))
    return 1.0 - edits / shorter if shorter else 0.0


# -- exact values ------------------------------------------------------------------------

# A json_each row's value as the text a keyword or text field indexes.
_JSON_TEXT = (
    "CASE type WHEN 'text' THEN value WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'"
    " WHEN 'integer' THEN CAST(value AS TEXT) WHEN 'real' THEN CAST(value AS TEXT) END"
)


def _json_path(field: str) -> str:
    # Elasticsearch reads dots in field names as object nesting.
    parts = field.split(".")
    if any('"' in part or not part for part in parts):
        raise QueryError(f'field name "{field}" cannot be looked up on SQLite')
    return "$" + "".join(f'."{part}"' for part in parts)


def _of_files(condition: str, params: tuple[Param, ...] = ()) -> SqlCondition:
    """The documents of the files (fieldsets rows) that `condition` holds for."""
    return SqlCondition(
        f"documents.fs IN (SELECT fs FROM fieldsets WHERE {condition})", params, condition
    )


def _on_strings(field: Field, predicate: str, params: tuple[Param, ...]) -> SqlCondition:
    """`predicate` (with {v} for the value) true of a string value of `field`."""
    column = _COLUMN_OF.get(field.path)
    if column in FILE_COLUMNS:
        return _of_files(f"({predicate.format(v=f'fieldsets.{column}')}) IS TRUE", params)
    if column is not None and field.path not in INTEGER_COLUMNS:
        # IS TRUE so that a missing value is false, not NULL, under NOT.
        return SqlCondition(f"({predicate.format(v=f'documents.{column}')}) IS TRUE", params)
    if field.path == "tags":
        where = predicate.format(v=_JSON_TEXT)
        return _of_files(f"EXISTS (SELECT 1 FROM json_each(fieldsets.tags) WHERE {where})", params)
    source, path_params = "json_each(documents.source, ?)", (_json_path(field.path),)
    return SqlCondition(
        f"EXISTS (SELECT 1 FROM {source} WHERE {predicate.format(v=_JSON_TEXT)})",
        (*path_params, *params),
    )


def _keyword(query: FieldQuery) -> SqlCondition:
    field = query.field
    limit = field.mapping.ignore_above
    # A value longer than ignore_above is not indexed: no query on the field finds it.
    guard = "" if limit is None else f" AND length({{v}}) <= {int(limit)}"
    if isinstance(query, Term):
        return _on_strings(field, "{v} = ?" + guard, (str(query.value),))
    if isinstance(query, Prefix):
        return _on_strings(
            field, "substr({v}, 1, ?) = ?" + guard, (len(query.prefix), query.prefix)
        )
    if isinstance(query, Wildcard):
        return _on_strings(field, "{v} GLOB ?" + guard, (_glob(query.parts)[0],))
    if isinstance(query, Regexp):
        spec = orjson.dumps(["value_regexp", query.pattern]).decode()
        return _on_strings(field, "lucene_text(?, {v})" + guard, (spec,))
    if isinstance(query, Fuzzy):
        # Within the edits of the query term; Lucene's limit on expansions is not applied.
        return _on_strings(
            field,
            "lucene_similarity(?, {v}, ?) IS NOT NULL" + guard,
            (query.term, query.max_edits),
        )
    if isinstance(query, Range):
        predicate, params = _bounds(query)
        return _on_strings(field, predicate + guard, params)
    raise QueryError(f"unsupported on SQLite: a phrase on the keyword field {field.path}")


def _bounds(query: Range, value: str = "{v}") -> tuple[str, tuple[Param, ...]]:
    conditions = ["1"]
    params: list[Param] = []
    if query.low is not None:
        conditions.append(f"{value} {'>=' if query.include_low else '>'} ?")
        params.append(query.low)
    if query.high is not None:
        conditions.append(f"{value} {'<=' if query.include_high else '<'} ?")
        params.append(query.high)
    return " AND ".join(conditions), tuple(params)


def _scalar(query: FieldQuery) -> SqlCondition:
    """Numbers and booleans."""
    field = query.field
    if isinstance(query, Term):
        value = query.value
        query = Range(field, value if not isinstance(value, str) else None, value)
    if not isinstance(query, Range):
        raise QueryError(f"unsupported on SQLite: {type(query).__name__} on {field.path}")
    column = _COLUMN_OF.get(field.path)
    if column is not None:
        predicate, params = _bounds(query, f"documents.{column}")
        return SqlCondition(f"documents.{column} IS NOT NULL AND {predicate}", params)
    if field.mapping.kind is Kind.BOOLEAN:
        wanted = "true" if query.low else "false"
        return SqlCondition(
            f"EXISTS (SELECT 1 FROM json_each(documents.source, ?) WHERE type = '{wanted}')",
            (_json_path(field.path),),
        )
    predicate, params = _bounds(query, "value")
    return SqlCondition(
        "EXISTS (SELECT 1 FROM json_each(documents.source, ?)"
        f" WHERE type IN ('integer', 'real') AND {predicate})",
        (_json_path(field.path), *params),
    )


def _date(query: FieldQuery) -> SqlCondition:
    if not isinstance(query, Range) or query.field.path != "@timestamp":
        raise QueryError(f"unsupported on SQLite: {query} on a date field")
    conditions: list[str] = []
    params: list[Param] = []
    # Stored timestamps are UTC and start "YYYY-MM-DDTHH:MM:SS": whole-second bounds on the
    # indexed column narrow the rows, the milliseconds decide.
    if query.low is not None:
        conditions.append("documents.timestamp >= ?")
        params.append(_second(int(query.low) // 1000))
        conditions.append("lucene_millis(documents.timestamp) >= ?")
        params.append(int(query.low))
    if query.high is not None:
        conditions.append("documents.timestamp < ?")
        params.append(_second(int(query.high) // 1000 + 1))
        conditions.append("lucene_millis(documents.timestamp) <= ?")
        params.append(int(query.high))
    if not conditions:
        return SqlCondition("documents.timestamp IS NOT NULL")
    return SqlCondition(" AND ".join(conditions), tuple(params))


def _second(seconds: int) -> str:
    seconds = min(max(seconds, -62135596800), 253402300799)  # years 1 to 9999
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")


_TIMESTAMP = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]+))?")
_EPOCH_DAY = datetime(1970, 1, 1).toordinal()


def timestamp_millis(timestamp: str | None) -> int | None:
    """A stored @timestamp (UTC) as epoch milliseconds, cut to the millisecond as
    Elasticsearch's date field keeps it: SQL function lucene_millis."""
    if timestamp is None:
        return None
    match = _TIMESTAMP.match(timestamp)
    if match is None:
        return None
    moment = datetime.fromisoformat(match.group(1))
    seconds = (moment.toordinal() - _EPOCH_DAY) * 86400 + moment.hour * 3600
    seconds += moment.minute * 60 + moment.second
    fraction = (match.group(2) or "")[:3].ljust(3, "0")
    return seconds * 1000 + int(fraction)


# -- existence ---------------------------------------------------------------------------


def _exists(field: Field) -> SqlCondition:
    limit = field.mapping.ignore_above
    if field.mapping.kind is Kind.KEYWORD and limit is not None:
        # A value longer than ignore_above is not indexed: the field is absent then.
        return _on_strings(field, f"length({{v}}) <= {int(limit)}", ())
    if field.path == FTS_FIELD:
        return SqlCondition("documents.message IS NOT NULL")
    if field.path == "tags":
        return _of_files("json_array_length(tags) > 0")
    column = _COLUMN_OF.get(field.path)
    if column in FILE_COLUMNS:
        return _of_files(f"{column} IS NOT NULL")
    if column is not None:
        return SqlCondition(f"documents.{column} IS NOT NULL")
    return SqlCondition(
        "coalesce(json_type(documents.source, ?), 'null') != 'null'", (_json_path(field.path),)
    )


@dataclass(frozen=True, slots=True)
class FieldValues:
    """How a query over `documents` reads one field's exact values, one row per value:
    `joins` to append to `FROM documents` (with `params`), `value` the value (NULL when
    it has none a keyword field would index), and `repeats` when one document may
    give a value more than once (a list), so that documents are counted distinct."""

    joins: str
    value: str
    params: tuple[Param, ...] = ()
    repeats: bool = False


def field_values(field: str) -> FieldValues:
    """The exact values of `field` per document, as a keyword or number field holds
    them (see translate's matching of a field:value clause)."""
    if field == "tags":
        return FieldValues(
            ", json_each(documents.tags) AS field_value", "field_value.value", (), True
        )
    column = _COLUMN_OF.get(field)
    if column is not None:
        return FieldValues("", f"documents.{column}")
    return FieldValues(
        ", json_each(documents.source, ?) AS field_value",
        "CASE field_value.type WHEN 'text' THEN field_value.value"
        " WHEN 'integer' THEN field_value.value WHEN 'real' THEN field_value.value"
        " WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END",
        (_json_path(field),),
        True,
    )


# SQL functions the sink registers on every connection: name -> (arguments, function).
SQL_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {
    "lucene_text": (2, text_match),
    "lucene_similarity": (3, similarity),
    "lucene_millis": (1, timestamp_millis),
}
