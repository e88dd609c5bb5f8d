"""Lucene query_string syntax to an SQLite WHERE clause, for the SQLite sink.

The subset is what failure-fingerprint queries use: field:value, quoted phrases, bare terms,
AND / OR / NOT / + / -, parentheses, field:(...) groups, `*`, `field:*` and `_exists_:field`.

Boolean semantics follow Lucene's classic query parser as Elasticsearch runs it, not
textbook precedence: the default operator is OR, `AND` makes both neighbours required,
SHOULD clauses stop mattering once a clause is required, and a group holding only negated
clauses means "everything except" (Elasticsearch adds a match-all to such groups).

`message` is full text, matched through the FTS5 index as a phrase. Every other field is a
keyword: exact, case-sensitive equality (for `tags`: the document has that tag). Fields
without a column are looked up in the stored JSON source.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum

from luqum.exceptions import ParseError
from luqum.parser import lexer as _shared_lexer
from luqum.parser import parser as _parser
from luqum.tree import (
    AndOperation,
    BaseGroup,
    Boost,
    From,
    Fuzzy,
    Item,
    Not,
    OrOperation,
    Phrase,
    Plus,
    Prohibit,
    Proximity,
    Range,
    Regex,
    SearchField,
    To,
    UnknownOperation,
    Word,
)

from worker.errors import QueryError
from worker.sinks.query_depth import check_query_depth

DEFAULT_FIELD = "message"

# Keyword fields stored in their own TEXT column (exact match, indexable).
KEYWORD_COLUMNS: tuple[str, ...] = (
    "filename",
    "log_url",
    "loglevel",
    "module",
    "pid",
    "request_id",
    "global_request_id",
    "instance",
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
    "host",
    "program",
)
# INTEGER affinity makes `line_number:12` (a text parameter) compare as a number.
INTEGER_COLUMNS: tuple[str, ...] = ("line_number", "line_count", "generation")
# Document fields whose column name differs from the field name.
RENAMED_COLUMNS: dict[str, str] = {"@timestamp": "timestamp", "_id": "id", "_index": "idx"}

_COLUMN_OF: dict[str, str] = {
    **{name: name for name in KEYWORD_COLUMNS + INTEGER_COLUMNS},
    **RENAMED_COLUMNS,
}

_HINT = "(use an Elasticsearch or OpenSearch sink for full query_string syntax)"
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
# Elasticsearch's analyzer drops punctuation-only text entirely; such a clause vanishes.
_HAS_TOKEN = re.compile(r"\w")

Param = str | int | float | None


@dataclass(frozen=True, slots=True)
class SqlCondition:
    """A boolean SQL expression over table `documents`, never NULL, with its parameters."""

    sql: str
    params: tuple[Param, ...] = ()


MATCH_ALL = SqlCondition("1")
MATCH_NONE = SqlCondition("0")


def fts_phrase(text: str) -> str:
    """Quote `text` as one FTS5 phrase: FTS5 tokenizes inside quotes, so no other escaping."""
    return '"' + text.replace('"', '""') + '"'


# PLY keeps parse state in its lexer and parser objects; parsing is quick, so one lock
# serialises it for the worker threads and searches that share this module.
_parse_lock = threading.Lock()
_lexer = _shared_lexer.clone()


def parse_query(query: str) -> Item:
    """Parse a Lucene query string with luqum; syntax errors become QueryError."""
    if not query.strip():
        raise QueryError("empty query (use * to match every document)")
    check_query_depth(query)  # luqum parses deep queries, but translating them recurses
    try:
        with _parse_lock:
            return _parser.parse(query, lexer=_lexer)
    except ParseError as exc:
        reason = str(exc).removeprefix("Syntax error in input : ").rstrip("!")
        raise QueryError(f"query syntax error: {reason}") from None


def translate(query: str) -> SqlCondition:
    """The WHERE condition selecting the documents `query` matches."""
    condition = _Translator().compile(parse_query(query), None)
    # A query whose every term was analyzed away matches nothing, as in Elasticsearch.
    return MATCH_NONE if condition is None else condition


class _Occur(Enum):
    MUST = "must"
    SHOULD = "should"
    MUST_NOT = "must_not"


class _Conj(Enum):
    NONE = "none"
    AND = "AND"
    OR = "OR"


def _unsupported(what: str, node: Item) -> QueryError:
    return QueryError(f"unsupported on SQLite: {what} {_quoted(node)}{_at(node)} {_HINT}")


def _text(node: Item) -> str:
    return str(node).strip()


def _quoted(node: Item) -> str:
    text = _text(node)
    return f"'{text}'" if '"' in text else f'"{text}"'


def _at(node: Item) -> str:
    return f" at position {node.pos}" if node.pos is not None else ""


def _unescape(text: str) -> str:
    return _ESCAPED.sub(r"\1", text)


def _and(conditions: Sequence[SqlCondition]) -> SqlCondition:
    useful = [c for c in conditions if c != MATCH_ALL]
    if not useful:
        return MATCH_ALL
    if len(useful) == 1:
        return useful[0]
    return SqlCondition(
        " AND ".join(f"({c.sql})" for c in useful),
        tuple(p for c in useful for p in c.params),
    )


def _or(conditions: Sequence[SqlCondition]) -> SqlCondition:
    if MATCH_ALL in conditions:
        return MATCH_ALL
    if len(conditions) == 1:
        return conditions[0]
    return SqlCondition(
        " OR ".join(f"({c.sql})" for c in conditions),
        tuple(p for c in conditions for p in c.params),
    )


def _not(condition: SqlCondition) -> SqlCondition:
    return SqlCondition(f"NOT ({condition.sql})", condition.params)


class _Translator:
    def compile(self, node: Item, field: str | None) -> SqlCondition | None:
        """None means the clause was analyzed away and its parent must ignore it."""
        if isinstance(node, SearchField):
            return self._search_field(node, field)
        if isinstance(node, BaseGroup):
            return self._boolean(node.expr, field)
        if isinstance(node, AndOperation | OrOperation | UnknownOperation | Not | Prohibit | Plus):
            return self._boolean(node, field)
        if isinstance(node, Word):
            return self._word(node, field)
        if isinstance(node, Phrase):
            return self._value(field or DEFAULT_FIELD, _unescape(node.value[1:-1]))
        if isinstance(node, Regex):
            raise _unsupported("regular expression", node)
        if isinstance(node, Fuzzy):
            raise _unsupported("fuzzy term", node)
        if isinstance(node, Proximity):
            raise _unsupported("proximity search", node)
        if isinstance(node, Boost):
            raise _unsupported("boost", node)
        if isinstance(node, Range | From | To):
            raise _unsupported("range", node)
        raise _unsupported(type(node).__name__, node)

    def _search_field(self, node: SearchField, outer: str | None) -> SqlCondition | None:
        name = _unescape(node.name)
        if isinstance(node.expr, SearchField):
            # Lucene rejects `a:b:c`; it is nearly always an unescaped colon in a value.
            raise QueryError(
                f"query syntax error: field inside field {_quoted(node)}{_at(node.expr)} "
                '(escape ":" in a value as "\\:" or quote the value)'
            )
        if "*" in name or "?" in name:
            raise _unsupported("field name pattern", node)
        if name == "_exists_":
            if not isinstance(node.expr, Word | Phrase):
                raise _unsupported("_exists_ of an expression", node)
            target = _unescape(node.expr.value.strip('"'))
            return _exists(target)
        return self.compile(node.expr, name)

    def _word(self, node: Word, field: str | None) -> SqlCondition | None:
        if node.value == "*":
            # Bare `*` is match-all; `field:*` asks whether the field has a value.
            return MATCH_ALL if field is None else _exists(field)
        if node.has_wildcard():
            raise _unsupported("wildcard", node)
        return self._value(field or DEFAULT_FIELD, node.unescaped_value)

    def _value(self, field: str, value: str) -> SqlCondition | None:
        if field == DEFAULT_FIELD:
            if not _HAS_TOKEN.search(value):
                return None
            # Unquoted multi-token words also become a phrase: unicode61 splits dotted names
            # (nova.compute.manager) that Elasticsearch keeps as one token, and a phrase of the
            # pieces is the closest equivalent of that single token.
            return SqlCondition(
                "documents.seq IN (SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?)",
                (fts_phrase(value),),
            )
        if field == "tags":
            return SqlCondition(
                "EXISTS (SELECT 1 FROM json_each(documents.tags) WHERE value = ?)", (value,)
            )
        column = _COLUMN_OF.get(field)
        if column is not None:
            # IS rather than = so a missing value compares false, not NULL, under NOT.
            return SqlCondition(f"documents.{column} IS ?", (value,))
        number: float | None
        try:
            number = float(value)
        except ValueError:
            number = None
        return SqlCondition(
            "EXISTS (SELECT 1 FROM json_each(documents.source, ?) WHERE "
            "(type = 'text' AND value = ?) OR (type IN ('integer', 'real') AND value = ?) "
            "OR type = ?)",
            (_json_path(field), value, number, value if value in ("true", "false") else None),
        )

    def _boolean(self, node: Item, field: str | None) -> SqlCondition | None:
        clauses: list[tuple[_Occur, SqlCondition]] = []
        for conj, clause in _flatten(node, _Conj.NONE):
            if clauses and conj is _Conj.AND and clauses[-1][0] is not _Occur.MUST_NOT:
                clauses[-1] = (_Occur.MUST, clauses[-1][1])
            prohibited = isinstance(clause, Not | Prohibit)
            required = isinstance(clause, Plus) or (conj is _Conj.AND and not prohibited)
            inner = clause.a if isinstance(clause, Not | Prohibit | Plus) else clause
            condition = self.compile(inner, field)
            if condition is None:
                continue
            if prohibited:
                occur = _Occur.MUST_NOT
            elif required:
                occur = _Occur.MUST
            else:
                occur = _Occur.SHOULD
            clauses.append((occur, condition))
        if not clauses:
            return None
        musts = [c for o, c in clauses if o is _Occur.MUST]
        shoulds = [c for o, c in clauses if o is _Occur.SHOULD]
        must_nots = [c for o, c in clauses if o is _Occur.MUST_NOT]
        if musts:
            positive = _and(musts)  # optional clauses only affect scoring then
        elif shoulds:
            positive = _or(shoulds)
        else:
            positive = MATCH_ALL
        if must_nots:
            return _and([positive, _not(_or(must_nots))])
        return positive


def _flatten(node: Item, first: _Conj) -> Iterator[tuple[_Conj, Item]]:
    """The clauses of one parenthesis level in query order, each with the operator before it.

    luqum nests AND under OR by precedence; Lucene reads a level as a flat clause list, so the
    in-order walk restores what Lucene sees.
    """
    conj = {AndOperation: _Conj.AND, OrOperation: _Conj.OR, UnknownOperation: _Conj.NONE}.get(
        type(node)
    )
    if conj is None:
        yield first, node
        return
    for position, child in enumerate(node.children):
        yield from _flatten(child, first if position == 0 else conj)


def _json_path(field: str) -> str:
    # Elasticsearch reads dots in field names as object nesting.
    parts = field.split(".")
    if any('"' in part or not part for part in parts):
        raise QueryError(f'field name "{field}" cannot be looked up on SQLite')
    return "$" + "".join(f'."{part}"' for part in parts)


def _exists(field: str) -> SqlCondition:
    if field == DEFAULT_FIELD:
        return SqlCondition("documents.message IS NOT NULL")
    if field == "tags":
        return SqlCondition("json_array_length(documents.tags) > 0")
    column = _COLUMN_OF.get(field)
    if column is not None:
        return SqlCondition(f"documents.{column} IS NOT NULL")
    return SqlCondition(
        "coalesce(json_type(documents.source, ?), 'null') != 'null'", (_json_path(field),)
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
