"""The differential test of search (issue 12): five real builds indexed with
`log-shipper index` into SQLite, Elasticsearch and OpenSearch, every query of
tests/data/differential/queries.txt asked of each. The engines are the reference and
must agree with each other; SQLite must agree with them on 99% of the queries, and every
query where it does not is listed, with its reason, in known-differences.txt.

`tools/differential run` prints the same comparison by hand (see tests/differential.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.differential import (
    KNOWN,
    QUERIES,
    REQUIRED,
    Comparison,
    Dataset,
    ask_all,
    compare,
    load_known,
    load_queries,
    report,
    table,
)
from tests.engines import index_prefix


@pytest.fixture(scope="module")
def comparison(
    elasticsearch_url: str, opensearch_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Comparison:
    work: Path = tmp_path_factory.mktemp("differential")
    urls = {
        "sqlite": f"sqlite:{work / 'logs.db'}",
        "elasticsearch": f"elasticsearch+{elasticsearch_url}",
        "opensearch": f"opensearch+{opensearch_url}",
    }
    data = Dataset(work, urls, index_prefix())
    data.index()
    counts = data.counts()
    # Every sink holds the same documents before any query is compared.
    assert len(set(counts.values())) == 1 and counts["sqlite"] > 10_000, counts
    queries = load_queries()
    return compare(queries, ask_all(data.searchers(), queries))


def test_the_query_corpus_has_the_shapes_asked_for() -> None:
    queries = load_queries()
    assert len(queries) >= 400
    assert len({q.text for q in queries}) == len(queries)
    categories = {q.category for q in queries}
    for category in ("fingerprint", "clause", "boolean", "field", "wildcard", "range"):
        assert category in categories
    for category in ("dotted", "path", "hyphen", "colon", "apostrophe", "number", "case"):
        assert category in categories
    # Every known difference is a query of the corpus.
    texts = {q.text for q in queries}
    assert [q for q in load_known() if q not in texts] == []


def test_elasticsearch_and_opensearch_agree_on_every_query(comparison: Comparison) -> None:
    assert comparison.reference_differences == [], table(comparison.reference_differences)


def test_every_difference_is_known_with_its_reason(comparison: Comparison) -> None:
    known = load_known()
    new = [d for d in comparison.differences if d.query.text not in known]
    assert new == [], f"not in {KNOWN}:\n{table(new)}"


def test_every_known_difference_still_differs(comparison: Comparison) -> None:
    differing = {d.query.text for d in comparison.differences}
    agreeing = [query for query in load_known() if query not in differing]
    assert agreeing == [], f"these agree now: remove them from {KNOWN}"


def test_sqlite_agrees_with_the_engines_on_99_percent(comparison: Comparison) -> None:
    assert comparison.compared == len(load_queries()), QUERIES
    agreement = comparison.agreement
    assert agreement >= REQUIRED, report(comparison, load_known())
