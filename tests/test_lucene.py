"""worker.lucene: Lucene's classic syntax read as Elasticsearch's query_string reads it."""

import pytest

from worker.errors import QueryError
from worker.fields import Field, catalogue
from worker.lucene import (
    Bool,
    Exists,
    Fuzzy,
    MatchAll,
    MatchNone,
    Phrase,
    Prefix,
    Range,
    Regexp,
    Term,
    Wildcard,
    parse,
)


def _field(name: str) -> Field:
    found = catalogue().lookup(name)
    assert found is not None
    return found


MESSAGE = _field("message")
TAGS = _field("tags")
TAGS_RAW = _field("tags.raw")
LINE = _field("line_number")
TIME = _field("@timestamp")
PROGRAM = _field("program")


def m(token: str) -> Term:
    return Term(MESSAGE, token)


def t(token: str) -> Term:
    return Term(TAGS, token)


# (query, the model written out by hand)
MODELS = [
    ("a", m("a")),
    ("a b", Bool(should=(m("a"), m("b")))),
    ("a AND b", Bool(must=(m("a"), m("b")))),
    ("a && b", Bool(must=(m("a"), m("b")))),
    ("a || b", Bool(should=(m("a"), m("b")))),
    ("a&&b", Bool(should=(m("a"), m("b")))),  # one term (& is a term character), analysed
    ("!tags:x AND a", Bool(must=(m("a"),), must_not=(t("x"),))),
    ("NOT a", Bool(must=(MatchAll(),), must_not=(m("a"),))),
    ("+a -b c", Bool(must=(m("a"),), should=(m("c"),), must_not=(m("b"),))),
    ("a OR b AND c", Bool(must=(m("b"), m("c")), should=(m("a"),))),
    ("a AND NOT b", Bool(must=(m("a"),), must_not=(m("b"),))),
    ("(a)", m("a")),
    ("tags:(x y)", Bool(should=(t("x"), t("y")))),
    ("a^2", m("a")),
    ("+ a", Bool(should=(m("a"),))),  # a bare operator is a term that analyses away
    # analysis
    ("Nova.Compute", m("nova.compute")),
    ("foo-bar", Bool(should=(m("foo"), m("bar")))),
    ('"foo-bar"', Phrase(MESSAGE, ("foo", "bar"))),
    ('"foo bar"~2', Phrase(MESSAGE, ("foo", "bar"), 2)),
    ('"..."', MatchNone()),
    (r"foo\-bar", Bool(should=(m("foo"), m("bar")))),
    (r"b\u00e4r", m("b\u00e4r")),  # Lucene's \uXXXX escape
    (r"foo\ bar", Bool(should=(m("foo"), m("bar")))),
    ("Tempest*", Prefix(MESSAGE, "tempest")),
    ("*Job-Output*", Wildcard(MESSAGE, ("", "*", "job-output", "*", ""))),
    (r"a\*b?", Wildcard(MESSAGE, ("a*b", "?", ""))),
    ("tags.raw:Con*", Prefix(TAGS_RAW, "Con")),
    ("foo~", Fuzzy(MESSAGE, "foo", 1)),
    ("fo~", m("fo")),
    ("Foobar~", Fuzzy(MESSAGE, "foobar", 2)),
    ("foobar~1", Fuzzy(MESSAGE, "foobar", 1)),
    ("/fo+|x[a-c]/", Regexp(MESSAGE, "fo+|x[a-c]")),
    ("message:*", Exists(MESSAGE)),
    ("_exists_:tags", Exists(TAGS)),
    ("*", MatchAll()),
    ("syslog_program:x", Term(PROGRAM, "x")),
    ("message.raw:x", MatchNone()),
    # numbers and dates
    ("line_number:[10 TO 20}", Range(LINE, 10, 19)),
    ("line_number:{1.5 TO 3.5]", Range(LINE, 2, 3)),
    ("line_number:>=5", Range(LINE, 5, None)),
    ("line_number:<5", Range(LINE, None, 4)),
    ("line_number:7", Term(LINE, 7)),
    ("line_number:7.5", MatchNone()),
    # 2018-08-01T00:00:00Z is 1533081600 s after the epoch.
    ("@timestamp:2018-08-01", Range(TIME, 1533081600000, 1533081600000 + 86399999)),
    ("@timestamp:{2018-08-01 TO *]", Range(TIME, 1533081600000 + 86400000, None)),
    (r"@timestamp:<2018-08-01T02\:00\:00+02\:00", Range(TIME, None, 1533081599999)),
    # date math; 2018-01-31 plus a month is the last day of February
    ("@timestamp:2018-01-31||+1M", Range(TIME, 1519776000000, 1519776000000)),
    ("@timestamp:[2018-08-01||/d TO 2018-08-01||/d]", Range(TIME, 1533081600000, 1533167999999)),
    ("@timestamp:{2018-08-01||-1h TO *]", Range(TIME, 1533078000001, None)),
    ("@timestamp:[2018 TO 2018]", Range(TIME, 1514764800000, 1514851199999)),  # a year
]


@pytest.mark.parametrize(("query", "model"), MODELS, ids=[q for q, _ in MODELS])
def test_the_model_of_a_query(query: str, model: object) -> None:
    assert parse(query) == model


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("a AND", "expected a term, a phrase or (, got the end of the query at position 5"),
        ("NOT NOT a", "expected a term, a phrase or (, got 'NOT' at position 4"),
        ("(a", "expected ), got the end of the query"),
        ("a)", "expected end of query, got ')'"),
        ('"a', "unexpected '\"' at position 0"),
        ("line_number:x", "line_number: 'x' is not a number"),
        ("truncated:yes", "truncated: 'yes' is not a boolean"),
        ("@timestamp:2018-13-01", "@timestamp: '2018-13-01' is not a date"),
        ("message:a:b", "field inside field"),
        ("line_number:-5", "expected a term, a phrase or (, got '-' at position 12"),
    ],
)
def test_errors_are_one_line(query: str, error: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert error in str(caught.value)
    assert "\n" not in str(caught.value)
