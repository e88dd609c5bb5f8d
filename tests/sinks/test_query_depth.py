"""worker/sinks/query_depth.py: how deeply a query nests, and the limit every sink keeps."""

from __future__ import annotations

import pytest

from worker.errors import QueryError
from worker.sinks.query_depth import MAX_QUERY_DEPTH, check_query_depth, query_depth

DEPTHS = [
    ("a", 0),
    ('message:"No more mirrors to try" AND tags:"console"', 0),
    ("(a)", 1),
    ("a AND (b OR (c))", 2),
    ("f:(a OR f:(b))", 2),
    ("((a) (b) (c))", 2),  # siblings are not nested
    ("NOT (NOT (a))", 4),
    ("-a -b -c", 1),  # each operator applies to its own clause
    ("NOT NOT a", 2),
    ("devstack-precise AND -x", 1),  # a dash inside a word is no operator
    ('"((((" AND x', 0),  # parentheses in a phrase
    (r"\(\(\( a", 0),  # escaped parentheses
    ('"unclosed ((((', 0),
    ("(a))))((b)", 2),  # a stray ")" closes nothing
    ("(" * 3000 + "a" + ")" * 3000, 3000),
    ("NOT " * 3000 + "a", 3000),
    ("-" * 3000 + "a", 3000),
]


@pytest.mark.parametrize(("query", "depth"), DEPTHS, ids=[q[:24] for q, _ in DEPTHS])
def test_query_depth(query: str, depth: int) -> None:
    assert query_depth(query) == depth


def test_the_limit_is_100_and_its_refusal_one_line() -> None:
    assert MAX_QUERY_DEPTH == 100
    check_query_depth("(" * 100 + "a" + ")" * 100)
    with pytest.raises(QueryError) as info:
        check_query_depth("(" * 101 + "a" + ")" * 101)
    assert str(info.value) == (
        "query nested 101 levels deep (parentheses and NOT, -, + operators), more than 100"
    )
