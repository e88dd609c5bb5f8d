"""How deeply a Lucene query string nests, read before any parser sees it.

Parsers of this syntax recurse once per level: 3,000 nested parentheses raise
RecursionError in the SQLite translator, and a StackOverflowError that ends the whole
OpenSearch 3.6 process (Elasticsearch 8 has a limit of its own). Every sink refuses a
query nested deeper than MAX_QUERY_DEPTH, which no failure-fingerprint query comes near.
"""

from __future__ import annotations

import re

from worker.errors import QueryError

MAX_QUERY_DEPTH = 100

# A query's tokens as far as nesting goes: an escaped character, a quoted phrase (to its
# end if unclosed), a parenthesis, a prefix operator (+ - !) or a word (NOT among them).
_TOKEN = re.compile(r'\\.|"(?:\\.|[^"\\])*"?|[()]|[+!-]|(?:\\.|[^\s()"\\])+|\s+', re.DOTALL)
_PREFIX_WORDS = frozenset({"NOT"})


def query_depth(query: str) -> int:
    """The deepest nesting of `query`: each open parenthesis and each prefix operator
    (NOT, -, +, !) in front of a clause is one level, as in the tree a parser builds
    (`NOT (NOT (a))` is 4 deep)."""
    levels: list[int] = []  # levels each open parenthesis added, innermost last
    depth = deepest = 0
    prefixes = 0  # operators read since the last clause, applying to the next one
    for match in _TOKEN.finditer(query):
        token = match.group()
        if token.isspace():
            continue
        if token == "(":
            levels.append(prefixes + 1)
            depth += prefixes + 1
            prefixes = 0
            deepest = max(deepest, depth)
        elif token == ")":
            depth -= levels.pop() if levels else 0
            prefixes = 0
        elif token in ("+", "-", "!") or token in _PREFIX_WORDS:
            prefixes += 1
            deepest = max(deepest, depth + prefixes)
        else:
            prefixes = 0
    return deepest


def check_query_depth(query: str) -> None:
    """Refuse a query nested deeper than MAX_QUERY_DEPTH, in one line."""
    depth = query_depth(query)
    if depth > MAX_QUERY_DEPTH:
        raise QueryError(
            f"query nested {depth} levels deep (parentheses and NOT, -, + operators), "
            f"more than {MAX_QUERY_DEPTH}"
        )
