"""Lucene query_string on the SQLite sink, checked against Python-side filtering.

Each query's hits must be exactly the documents a plain Python predicate picks from the
same documents: real corpus lines plus a few console lines carrying the messages the
failure-fingerprint queries in er-queries/ look for.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.engines import index_prefix
from tests.paths import CORPUS, REPO
from tests.sinks.test_sqlite import corpus_documents
from worker.config import SinkConfig
from worker.documents import Document, build_documents
from worker.errors import QueryError
from worker.events import Event
from worker.job import Job
from worker.sinks import open_sink
from worker.sinks.sqlite import SqliteSink
from worker.sinks.sqlite_query import MATCH_ALL, edits_within, translate

ER_QUERIES = sorted((CORPUS.parent / "er-queries").glob("*.yaml"))


def _console_job(build_uuid: str, name: str, branch: str, queue: str) -> Job:
    return Job(
        source_url=f"https://logs.example.org/{build_uuid[:2]}/{build_uuid}/job-output.txt",
        fields={
            "build_uuid": build_uuid,
            "build_name": name,
            "build_branch": branch,
            "build_queue": queue,
            "project": "openstack/neutron",
            "voting": 1,
        },
        tags=("console", "console.html"),
    )


def _events(start: str, lines: list[str]) -> list[Event]:
    return [Event(n, f"{start}{n:02d}.000000+00:00", line) for n, line in enumerate(lines, 1)]


FULLSTACK = _console_job("a1b2c3d4e5f60718293a4b5c6d7e8f90", "neutron-fullstack", "master", "gate")
FULLSTACK_LINES = [
    "ubuntu-bionic | 1 packets transmitted, 0 received, 100% packet loss, time 0ms",
    "ubuntu-bionic | RUN END RESULT_TIMED_OUT: [untrusted : git.openstack.org/openstack/"
    "neutron/playbooks/run.yaml@master]",
    "ubuntu-bionic | POST-RUN END RESULT_TIMED_OUT: [trusted : git.openstack.org/"
    "openstack-infra/project-config/playbooks/base/post.yaml@master]",
    "ubuntu-bionic | http://mirror.dfw.rax.example.org/epel/7/x86_64/repodata/repomd.xml: "
    "[Errno 256] No more mirrors to try.",
    "ubuntu-bionic | Task devstack FAILED with status: 143",
    "ubuntu-bionic | Details: Timeout while verifying metadata on server.",
    "ubuntu-bionic | ERROR: Requirement oslo.config>=4.0 does not match "
    "openstack/requirements value oslo.config>=5.1.0",
    'ubuntu-bionic | msg: say "hi" to the mirror',
]
PY36 = _console_job(
    "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "neutron-fullstack-python36", "stable/rocky", "check"
)
PY36_LINES = [
    "ubuntu-bionic | 1 packets transmitted, 0 received, 100% packet loss, time 0ms",
    "ubuntu-bionic | Task devstack FAILED with status: 137",
    "ubuntu-bionic | 1 packets transmitted, 1 received, 0% packet loss, time 0ms",
]
BACKUP = Job(
    source_url="https://logs.example.org/a1/a1b2c3d/logs/screen-c-bak.txt",
    fields={"build_uuid": "a1b2c3d4e5f60718293a4b5c6d7e8f90", "filename": "logs/screen-c-bak.txt"},
    tags=("screen", "oslofmt"),
)
BACKUP_EVENTS = [
    Event(
        1,
        "2018-10-02T10:00:01.000000+00:00",
        "[req-1] Could not execute operation on all records: encountered iSCSI database failure",
        {"loglevel": "ERROR", "module": "cinder.backup.manager", "pid": "811"},
    ),
    Event(
        2,
        "2018-10-02T10:00:02.000000+00:00",
        'Traceback (most recent call last):\n  File "manager.py", line 1\nValueError: bad value',
        {"loglevel": "ERROR", "module": "cinder.backup.manager", "pid": "811"},
        line_count=3,
        truncated=True,
    ),
]


def synthetic_documents() -> list[Document]:
    return [
        *build_documents(_events("2018-10-02T09:00:", FULLSTACK_LINES), FULLSTACK, "logstash-"),
        *build_documents(_events("2018-10-01T08:00:", PY36_LINES), PY36, "logstash-"),
        *build_documents(BACKUP_EVENTS, BACKUP, "logstash-"),
    ]


DOCUMENTS = [*corpus_documents(), *synthetic_documents()]


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteSink]:
    path: Path = tmp_path_factory.mktemp("query") / "logs.db"
    sink = SqliteSink(str(path), SinkConfig(chunk_documents=1000))
    result = sink.write(DOCUMENTS)
    assert result.indexed == len(DOCUMENTS)
    yield sink
    sink.close()


Source = dict[str, Any]
Predicate = Callable[[Source], bool]


def msg(text: str) -> Predicate:
    return lambda s: text in s["message"]


def field(name: str, value: Any) -> Predicate:
    return lambda s: s.get(name) == value


def tag(name: str) -> Predicate:
    return lambda s: name in s["tags"]


def both(*predicates: Predicate) -> Predicate:
    return lambda s: all(p(s) for p in predicates)


def either(*predicates: Predicate) -> Predicate:
    return lambda s: any(p(s) for p in predicates)


def no(predicate: Predicate) -> Predicate:
    return lambda s: not predicate(s)


def matching(predicate: Predicate) -> set[str]:
    return {d.id for d in DOCUMENTS if predicate(d.source)}


def hits(sink: SqliteSink, query: str) -> set[str]:
    result = sink.search(query, size=len(DOCUMENTS) + 1)
    ids = {hit["_id"] for hit in result.hits}
    assert result.total == len(result.hits) == len(ids) == sink.count(query)
    return ids


LOADING = msg("Loading extension")
CALLING = msg("Calling extension factory")
DEBUG = field("loglevel", "DEBUG")
WARNING = field("loglevel", "WARNING")
AUDIT = field("loglevel", "AUDIT")
EXTENSIONS = field("module", "cinder.api.extensions")

CASES: list[tuple[str, Predicate]] = [
    # phrases: same lines as a Python substring search
    ('message:"Loading extension"', LOADING),
    ('"Loading extension"', LOADING),  # default field is message
    ('message:"loading EXTENSION"', LOADING),  # text is case-insensitive
    ('message:"Calling extension factory"', CALLING),
    ('message:"TASK [add-build-sshkey : Create Temp SSH key]"', msg("Create Temp SSH key")),
    ("message:Ansible", msg("Ansible")),
    ('message:"[Errno 256] No more mirrors to try"', msg("[Errno 256] No more mirrors to try")),
    (r'message:"say \"hi\" to"', msg('say "hi" to')),
    ('message:"ValueError: bad value"', msg("ValueError: bad value")),  # inside a grouped event
    # boolean logic
    ('message:"Loading extension" AND loglevel:DEBUG', both(LOADING, DEBUG)),
    (
        'message:"Loading extension" OR message:"Calling extension factory"',
        either(LOADING, CALLING),
    ),
    ('message:"Loading extension" message:"Calling extension factory"', either(LOADING, CALLING)),
    ("NOT loglevel:DEBUG", no(DEBUG)),  # documents without a loglevel are included
    ("-loglevel:DEBUG tags:screen", both(tag("screen"), no(DEBUG))),
    (
        "tags:screen AND NOT loglevel:DEBUG AND NOT loglevel:INFO",
        both(tag("screen"), no(DEBUG), no(field("loglevel", "INFO"))),
    ),
    (
        "(loglevel:AUDIT OR loglevel:WARNING) AND module:cinder.api.extensions",
        both(either(AUDIT, WARNING), EXTENSIONS),
    ),
    (
        "loglevel:(AUDIT OR WARNING) AND module:cinder.api.extensions",
        both(either(AUDIT, WARNING), EXTENSIONS),
    ),
    ("loglevel:(AUDIT WARNING)", either(AUDIT, WARNING)),
    # Lucene, not textbook precedence: AND makes both neighbours required, the OR'ed
    # clause before them becomes optional and so irrelevant.
    (
        "loglevel:AUDIT OR loglevel:WARNING AND module:cinder.quota",
        both(WARNING, field("module", "cinder.quota")),
    ),
    ("+loglevel:WARNING module:cinder.api.extensions", WARNING),
    (
        "tags:console OR NOT build_queue:post",
        both(tag("console"), no(field("build_queue", "post"))),
    ),
    ("NOT (NOT tags:console)", tag("console")),
    (
        "(tags:console AND build_queue:post) OR (tags:screen AND loglevel:WARNING)",
        either(both(tag("console"), field("build_queue", "post")), both(tag("screen"), WARNING)),
    ),
    ("*", lambda s: True),
    ("* AND NOT tags:screen", no(tag("screen"))),
    # string fields are analysed text, as in the historical index; .raw is the exact value
    ('tags:"console"', tag("console")),
    ("tags:console.html", tag("console.html")),
    ('tags:"console.htm"', tag("console.htm")),
    ("loglevel:debug", field("loglevel", "DEBUG")),  # lower-cased: every DEBUG line
    ("loglevel.raw:debug", field("loglevel", "debug")),  # exact: none
    ("loglevel.raw:DEBUG", field("loglevel", "DEBUG")),
    # "job-output.txt" is the words job and output.txt: no word "output"
    ('filename:"job-output"', lambda s: False),
    ('filename:"job-output.txt"', field("filename", "job-output.txt")),
    # unquoted: job OR output.txt
    (r"filename:job\-output.txt", field("filename", "job-output.txt")),
    ("filename.raw:job-output", field("filename", "job-output")),
    # a phrase of words: neutron-fullstack-python36 starts with the two
    (
        'build_name:"neutron-fullstack"',
        either(
            field("build_name", "neutron-fullstack"),
            field("build_name", "neutron-fullstack-python36"),
        ),
    ),
    ('build_name.raw:"neutron-fullstack"', field("build_name", "neutron-fullstack")),
    ("build_name.raw:neutron-fullstack*", lambda s: s.get("build_name", "").startswith("neu")),
    ("build_name:fullstack*", lambda s: s.get("build_name", "").startswith("neutron-full")),
    ("project:cinder", field("project", "openstack/cinder")),
    ("build_change:135639 AND build_patchset:3", field("build_change", "135639")),
    ("voting:1", field("voting", 1)),
    ("voting:0", field("voting", "0")),
    ("line_number:12", field("line_number", 12)),
    ("line_count:3", field("line_count", 3)),
    (
        '@timestamp:"2018-08-01T00:43:51.328884+00:00"',
        field("@timestamp", "2018-08-01T00:43:51.328884+00:00"),
    ),
    ("_index:logstash-2013.09.27", lambda s: s["@timestamp"].startswith("2013-09-27")),
    # fields without a column, read from the stored source
    ("zuul_tenant:openstack", field("zuul_tenant", "openstack")),
    ("truncated:true", field("truncated", True)),
    ("NOT zuul_tenant:openstack", no(field("zuul_tenant", "openstack"))),
    # existence
    ("_exists_:loglevel", lambda s: "loglevel" in s),
    ("loglevel:*", lambda s: "loglevel" in s),
    ("_exists_:zuul_tenant", lambda s: "zuul_tenant" in s),
    (
        "_exists_:build_change AND NOT _exists_:pid",
        both(lambda s: "build_change" in s, lambda s: "pid" not in s),
    ),
    # text that analyzes to nothing drops out of the query, as in Elasticsearch
    ('message:"..."', lambda s: False),
    ('message:"..." OR tags:screen', tag("screen")),
]


@pytest.mark.parametrize(("query", "predicate"), CASES, ids=[q for q, _ in CASES])
def test_query_matches_python_filter(sink: SqliteSink, query: str, predicate: Predicate) -> None:
    assert hits(sink, query) == matching(predicate)


def test_cases_are_not_vacuous() -> None:
    selective = [q for q, p in CASES if 0 < len(matching(p)) < len(DOCUMENTS)]
    assert len(selective) >= len(CASES) - 8


ER_EXPECTED: dict[str, Predicate] = {
    "1410969": both(
        msg("Requirement"),
        msg("does not match openstack/requirements value"),
        tag("console"),
        field("build_queue", "gate"),
    ),
    "1635643": both(
        msg("Could not execute operation on all records: encountered iSCSI database failure"),
        tag("screen-c-bak.txt"),
    ),
    "1686542": both(
        either(
            msg("FAILED with status: 137"),
            msg("FAILED with status: 143"),
            msg("RUN END RESULT_TIMED_OUT"),
        ),
        no(msg("POST-RUN END RESULT_TIMED_OUT")),
        tag("console"),
    ),
    "1708704": both(msg("[Errno 256] No more mirrors to try"), tag("console")),
    "1775947": both(msg("Details: Timeout while verifying metadata on server."), tag("console")),
    "1798475": both(
        msg("1 packets transmitted, 0 received, 100% packet loss, time 0ms"),
        either(
            field("build_name", "neutron-fullstack"),
            field("build_name", "neutron-fullstack-python36"),
        ),
        tag("console"),
        field("filename", "job-output.txt"),
        field("build_branch", "master"),
    ),
}


def test_every_er_query_has_an_expectation() -> None:
    assert len(ER_QUERIES) >= 6
    assert {path.stem for path in ER_QUERIES} == set(ER_EXPECTED)


@pytest.mark.parametrize("path", ER_QUERIES, ids=[p.stem for p in ER_QUERIES])
def test_er_query_runs_and_matches(sink: SqliteSink, path: Path) -> None:
    query = yaml.safe_load(path.read_text())["query"]
    expected = matching(ER_EXPECTED[path.stem])
    assert expected  # the synthetic lines give every query something to find
    assert hits(sink, query) == expected


UNSUPPORTED = [
    ("message:/a&b/", 'regular expression operator intersection (&) "/a&b/"'),
    ("message:/@/", 'regular expression operator any string (@) "/@/"'),
    (r"build_\*:x", 'field name pattern "build_*:x"'),
    ("*:x", 'field name pattern "*:x"'),
    ("message:/<1-5>/", 'regular expression operator numeric range (<>) "/<1-5>/"'),
    ("line_number:1*", 'prefix term on integer field line_number "1*"'),
    ("line_number:1?", 'wildcard on integer field line_number "1?"'),
    ("line_number:12~", 'fuzzy term on integer field line_number "12~"'),
    ("message:foo~3", 'fuzzy edit distance "foo~3"'),
]


@pytest.mark.parametrize(("query", "detail"), UNSUPPORTED, ids=[q for q, _ in UNSUPPORTED])
def test_unsupported_syntax_is_a_clear_query_error(
    sink: SqliteSink, query: str, detail: str
) -> None:
    with pytest.raises(QueryError) as caught:
        sink.search(query)
    message = str(caught.value)
    assert message.startswith("unsupported on SQLite: ")
    assert detail in message
    assert "Elasticsearch or OpenSearch" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "query",
    [
        'message:"unclosed',
        "(a OR b",
        "a AND",
        "AND",
        "a)",
        "message:Error:foo",
        "NOT NOT a",  # one operator before a clause, as in Lucene
        "--a",
        "build_*:x",  # a field name pattern needs its * escaped
    ],
)
def test_syntax_errors_are_query_errors(sink: SqliteSink, query: str) -> None:
    with pytest.raises(QueryError, match="query syntax error"):
        sink.count(query)


@pytest.mark.parametrize("query", ["", "   "])
def test_empty_query_is_refused(query: str) -> None:
    with pytest.raises(QueryError, match="empty query"):
        translate(query)


def test_star_is_match_all() -> None:
    assert translate("*") == MATCH_ALL
    assert translate("(*)") == MATCH_ALL


def test_values_travel_as_parameters_not_sql() -> None:
    condition = translate('build_name.raw:"x\'); DROP TABLE documents; --" AND message:"a\'b"')
    assert "DROP" not in condition.sql
    assert "x'); DROP TABLE documents; --" in condition.params


def test_translation_is_thread_safe() -> None:
    queries = [query for query, _ in CASES] * 5
    expected = [translate(query) for query in queries]
    results: dict[int, list[object]] = {}

    def run(worker: int) -> None:
        results[worker] = [translate(query) for query in queries]

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result == expected for result in results.values())
    assert len(results) == 8


def search_cli(query: str, *options: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`log-shipper search` as a user runs it, on this worktree's code."""
    return subprocess.run(
        [sys.executable, "-m", "log_shipper.cli", "search", *options, "--", query],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def sqlite_dir(tmp_path: Path) -> Path:
    """A directory holding logs.db with DOCUMENTS."""
    sink = SqliteSink(str(tmp_path / "logs.db"), SinkConfig())
    assert sink.write(DOCUMENTS).indexed == len(DOCUMENTS)
    sink.close()
    return tmp_path


# Queries nested deeper than 100, each with how deep it is.
DEEP_QUERIES = [
    ("(" * 3000 + "loglevel:ERROR" + ")" * 3000, 3000),
    ("NOT " * 3000 + "loglevel:ERROR", 3000),
    ("-" * 3000 + "loglevel:ERROR", 3000),
    ("NOT (" * 1000 + "a" + ")" * 1000, 2000),
    ("message:(" * 101 + "a" + ")" * 101, 101),
]


@pytest.mark.parametrize(("query", "depth"), DEEP_QUERIES, ids=["(", "NOT", "-", "NOT (", "f:("])
def test_deep_queries_are_refused_in_one_line_by_log_shipper_search(
    sqlite_dir: Path, query: str, depth: int
) -> None:
    result = search_cli(query, "--sink", "sqlite:logs.db", cwd=sqlite_dir)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"log-shipper: error: query nested {depth} levels deep (parentheses and NOT, -, + "
        "operators), more than 100\n"
    )


def test_parentheses_100_deep_still_run(sqlite_dir: Path) -> None:
    errors = sum(1 for d in DOCUMENTS if d.source.get("loglevel") == "ERROR")
    assert errors > 0
    query = "(" * 100 + "loglevel:ERROR" + ")" * 100
    result = search_cli(query, "--count", "--sink", "sqlite:logs.db", cwd=sqlite_dir)
    assert (result.returncode, result.stderr) == (0, "")
    assert int(result.stdout) == errors


def test_nesting_sqlite_cannot_parse_is_one_line_naming_it(sqlite_dir: Path) -> None:
    # 45 NOTs of groups are 90 levels, within every sink's limit of 100, but each one nests
    # the SQL.
    query = "NOT (" * 45 + "loglevel:ERROR" + ")" * 45
    result = search_cli(query, "--sink", "sqlite:logs.db", cwd=sqlite_dir)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "log-shipper: error: query nested too deeply for SQLite's SQL parser: use fewer "
        "levels of parentheses and NOT inside each other (an Elasticsearch or OpenSearch "
        "sink takes up to 100)\n"
    )


# Six handmade documents, and what Elasticsearch's query_string (default_field message,
# the historical mapping of the shipped template) finds among them, counted by hand:
# each query is asked of SQLite and of the real Elasticsearch.
HANDMADE: list[dict[str, Any]] = [
    {  # 0
        "message": "baz c",
        "build_name": "neutron-fullstack",
        "tags": ["console", "console.html"],
        "line_number": 5,
        "loglevel": "ERROR",
        "error_pr": -7.5,
        "truncated": True,
        "project": "openstack/nova",
        "filename": "logs/job-output.txt",
        "@timestamp": "2018-08-01T00:43:51.328884+00:00",
    },
    {  # 1
        "message": "foo c",
        "build_name": "neutron-fullstack-python36",
        "tags": ["screen"],
        "line_number": 10,
        "loglevel": "DEBUG",
        "error_pr": 1.25,
        "truncated": False,
        "project": "openstack/nova-specs",
        "filename": "logs/screen-n-cpu.txt",
        "@timestamp": "2018-08-01T23:59:59.999000+00:00",
    },
    {  # 2
        "message": "bar c tempest.api",
        "build_name": "tempest-full",
        "tags": ["console"],
        "line_number": 15,
        "loglevel": "error",
        "project": "openstack/neutron",
        "filename": "job-output.txt.gz",
        "@timestamp": "2018-08-02T00:00:00.000000+00:00",
    },
    {  # 3
        "message": "Traceback nova.compute.manager foobar fobar",
        "build_name": "Tempest-Full",
        "tags": ["console"],
        "line_number": 20,
        "program": "proxy-server",
        "zuul_tenant": "openstack",
        "voting": 1,
        "@timestamp": "2018-07-31T12:00:00Z",
    },
    {  # 4
        "message": "TRACE nova.compute foo-bar b\u00e4r",
        "tags": ["syslog"],
        "line_number": 25,
        "host": "ubuntu-xenial",
        "@timestamp": "2018-08-01T00:43:51.329000+00:00",
    },
    {  # 5
        "message": "...",
        "tags": ["x.y"],
        "line_number": 30,
        "build_name": "a" * 300,  # longer than .raw's ignore_above (256)
        "@timestamp": "2019-01-01T00:00:00+00:00",
    },
]
HANDMADE_HITS: list[tuple[str, set[int]]] = [
    # operators, Lucene's way
    ("!tags:console AND message:c", {1}),
    ("message:c && tags:screen", {1}),
    ("message:c || tags:syslog", {0, 1, 2, 4}),
    ("NOT tags:console", {1, 4, 5}),
    ("-tags:console +message:c", {1}),
    ("message:(c -foo)", {0, 2}),
    ("message:(-foo)", {0, 2, 3, 5}),
    ("message:(+c foo)", {0, 1, 2}),
    ('"baz" OR "foo" AND c', {1}),  # AND makes foo and c required, baz optional
    ("baz foo-bar AND c", {1, 2}),  # (foo OR bar) AND c
    ("tags:console AND NOT (NOT message:baz)", {0}),
    ("x AND (NOT tags:console)", set()),
    ("c AND (foo OR NOT baz)", {1}),
    ('message:"..." AND tags:console', {0, 2, 3}),  # analysed away: the clause drops out
    ("message:c^2 AND tags:console", {0, 2}),  # a boost changes no hit
    # several terms on one text field: one predicate on SQLite
    ("build_name:(tempest neutron)", {0, 1, 2, 3}),
    ("build_name:(python36 OR full) AND tags:console", {2, 3}),
    ("tags:(screen syslog)", {1, 4}),
    ("project:(specs neutron) -message:foo", {2}),
    ("build_name:(python36 full) OR message:baz", {0, 1, 2, 3}),
    # analysis of message
    ("message:foo-bar", {1, 2, 4}),  # foo OR bar
    ('message:"foo-bar"', {4}),
    ("message:tempest", set()),  # tempest.api is one token
    ('message:"tempest.api"', {2}),
    ("message:B\u00c4R", {4}),
    ("message:?", {0, 1, 2}),  # the one-letter token c
    # wildcards, prefixes, fuzzy, regular expressions, sloppy phrases
    ("tempest*", {2}),
    ("Trace*", {3, 4}),  # lower-cased on a text field
    ("TRAC?", {4}),
    ("*job-output*", set()),  # no token holds a "-"
    ("message:nova.comp*", {3, 4}),
    ("message:*compute*", {3, 4}),
    ("message:fo*ar", {3}),
    ("foo~", {1, 4}),  # AUTO: one edit for 3 to 5 characters
    ("fobar~", {3}),  # two edits from 6 on: foobar and fobar
    ("fo~", set()),  # none under 3
    ("message:/fo+/", {1, 4}),
    ("message:/FO+/", set()),  # expressions are not lower-cased
    ("message:/c|foo/", {0, 1, 2, 4}),
    ('message:"c baz"~1', set()),  # reversed: two moves
    ('message:"c baz"~2', {0}),
    ('message:"nova.compute foo"~3', {4}),
    # other string fields: analysed text with an exact .raw
    ('build_name:"neutron-fullstack"', {0, 1}),
    ('build_name.raw:"neutron-fullstack"', {0}),
    ("build_name:Tempest-Full", {2, 3}),
    ("build_name.raw:Tempest-Full", {3}),
    ("build_name.raw:tempest*", {2}),
    ("build_name.raw:neutron-full?tack", {0}),
    ("build_name.raw:/neutron-.*/", {0, 1}),
    ("build_name:/neutron-.*/", set()),  # tokens hold no "-"
    ("build_name.raw:*", {0, 1, 2, 3}),  # 5's value is too long for .raw
    ("_exists_:build_name", {0, 1, 2, 3, 5}),
    ("loglevel:error", {0, 2}),
    ("loglevel.raw:error", {2}),
    ("loglevel:[debug TO error]", {0, 1, 2}),
    ('project:"openstack/nova"', {0, 1}),
    ("project:nova-specs", {0, 1}),  # nova OR specs
    ("filename:*job-output*", set()),
    ("filename.raw:*job-output*", {0, 2}),
    ("filename:job-output.txt", {0, 2}),
    ("tags:x", set()),
    ("tags:x.y", {5}),
    ("tags.raw:console.html", {0}),
    ('syslog_program:"proxy-server"', {3}),  # aliases of the historical names
    ('syslog_program.raw:"proxy-server"', set()),  # an alias has no sub-field
    ('program.raw:"proxy-server"', {3}),
    ("syslog_host:ubuntu-xenial", {4}),
    ("message.raw:foo", set()),
    ("zuul_tenant:openstack", {3}),  # not in the template: the dynamic mapping
    ("voting:1", {3}),
    # numbers, booleans, dates
    ("line_number:[10 TO 20]", {1, 2, 3}),
    ("line_number:{10 TO 20}", {2}),
    ("line_number:[10 TO *]", {1, 2, 3, 4, 5}),
    ("line_number:>15", {3, 4, 5}),
    ("line_number:<=15", {0, 1, 2}),
    ("line_number:15.5", set()),
    ("line_number:[10.5 TO 20.5]", {2, 3}),
    ("error_pr:<0", {0}),
    ("error_pr:1.25", {1}),
    ("truncated:false", {1}),
    ("@timestamp:2018-08-01", {0, 1, 4}),  # the whole day
    ("@timestamp:[2018-08-01 TO 2018-08-02}", {0, 1, 4}),
    ("@timestamp:{2018-08-01 TO *]", {2, 5}),
    ('@timestamp:"2018-08-01T00:43:51.328884+00:00"', {0}),  # to the millisecond
    ("@timestamp:[2018-07 TO 2018-07]", set()),  # rounded up: 2018-07-01T23:59:59.999
    ("@timestamp:{2018-07 TO 2018-08}", {3}),
    # date math: a step, then rounding to the unit (its end for <=)
    ("@timestamp:[2018-07-31||+1d TO 2018-08-01||+1d]", {0, 1, 2, 4}),
    ("@timestamp:[2018||/y TO 2018||/y]", {0, 1, 2, 3, 4}),
    ("@timestamp:[2018-08-01||/w TO 2018-08-01||/w]", {0, 1, 2, 3, 4}),  # Monday 07-30 on
    ("@timestamp:{2018-08-01||/d TO 2018-08-02||/d}", set()),
    ("@timestamp:[2018-08-01T00:43:51||/m TO 2018-08-01T00:43:51||/h]", {0, 4}),
    ("@timestamp:[now-100y TO now]", {0, 1, 2, 3, 4, 5}),
    ("*:*", {0, 1, 2, 3, 4, 5}),
    ("_id:doc1", {1}),
]


def _handmade(index: str) -> list[Document]:
    return [Document(index, f"doc{n}", source) for n, source in enumerate(HANDMADE)]


@pytest.fixture(scope="module")
def handmade_sinks(
    tmp_path_factory: pytest.TempPathFactory, elasticsearch_url: str
) -> Iterator[dict[str, Any]]:
    sqlite = SqliteSink(str(tmp_path_factory.mktemp("handmade") / "logs.db"), SinkConfig())
    assert sqlite.write(_handmade("logstash-2018.08.01")).indexed == len(HANDMADE)
    prefix = index_prefix()
    engine = open_sink(f"elasticsearch+{elasticsearch_url}", SinkConfig(index_prefix=prefix))
    engine.prepare()
    assert engine.write(_handmade(f"{prefix}2018.08.01")).indexed == len(HANDMADE)
    engine.refresh()
    yield {"sqlite": sqlite, "elasticsearch": engine}
    sqlite.close()
    engine.close()


@pytest.mark.parametrize("sink_name", ["sqlite", "elasticsearch"])
def test_handmade_hits_counted_by_hand(handmade_sinks: dict[str, Any], sink_name: str) -> None:
    sink = handmade_sinks[sink_name]
    found = [
        (query, {int(hit["_id"][3:]) for hit in sink.search(query, size=10).hits})
        for query, _ in HANDMADE_HITS
    ]
    assert found == HANDMADE_HITS


@pytest.mark.parametrize(
    ("a", "b", "edits"),
    [
        ("foo", "foo", 0),
        ("foo", "fo", 1),
        ("ab", "ba", 1),  # a swap
        ("abc", "ca", 3),  # optimal string alignment: no edit of a swapped pair
        ("kitten", "sitting", 3),
        ("", "ab", 2),
    ],
)
def test_edits_count_a_swap_of_neighbours_as_one(a: str, b: str, edits: int) -> None:
    assert edits_within(a, b, edits)
    assert edits == 0 or not edits_within(a, b, edits - 1)
