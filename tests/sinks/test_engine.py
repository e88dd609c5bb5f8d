"""The Elasticsearch and OpenSearch sinks against the real engines (worker/sinks/engine.py)."""

from __future__ import annotations

import gzip
import logging
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.engines import build_index_for, index_prefix
from tests.httpserver import free_port
from tests.paths import CORPUS
from tests.sinks.test_sqlite import CONTEXT_HITS, context_documents
from tests.sinks.test_sqlite_query import search_cli
from worker.config import SinkConfig
from worker.documents import Document, build_documents
from worker.errors import QueryError
from worker.events import Event
from worker.job import Job
from worker.sinks import open_sink
from worker.sinks.engine import EngineSink, template_name

OSLO = re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+) (\d+) (\w+) (\S+) (.*)$")


@pytest.fixture(params=["elasticsearch", "opensearch"])
def engine(request: pytest.FixtureRequest) -> Iterator[tuple[EngineSink, str]]:
    base = request.getfixturevalue(f"{request.param}_url")
    prefix = index_prefix("sinktest")
    config = SinkConfig(url=f"{request.param}+{base}", index_prefix=prefix, chunk_documents=500)
    sink = open_sink(config.url, config)
    assert isinstance(sink, EngineSink)
    yield sink, base
    sink.close()


def oslo_events(limit: int) -> list[Event]:
    """Real oslo lines of screen-q-svc, one event per timestamped line."""
    events = []
    path = CORPUS / "os-loganalyze/screen-q-svc.txt.gz"
    with gzip.open(path, "rt", errors="replace") as f:
        for number, text in enumerate(f, 1):
            match = OSLO.match(text.rstrip("\n"))
            if match:
                date, time, pid, level, module, rest = match.groups()
                fields = {"loglevel": level, "module": module, "pid": pid}
                events.append(Event(number, f"{date}T{time}Z", rest, fields))
            if len(events) == limit:
                break
    return events


JOB = Job(
    source_url="http://logs.example.org/1/logs/screen-q-svc.txt.gz",
    fields={"build_uuid": "0123456789abcdef", "filename": "logs/screen-q-svc.txt"},
    tags=("screen", "oslofmt"),
)


def test_template_installed_when_missing(engine: tuple[EngineSink, str]) -> None:
    sink, base = engine
    sink.prepare()
    name = template_name(sink.config.index_prefix)
    with urllib.request.urlopen(f"{base}/_index_template/{name}") as answer:
        templates = orjson.loads(answer.read())["index_templates"]
    patterns = templates[0]["index_template"]["index_patterns"]
    assert patterns == [f"{sink.config.index_prefix}*"]


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as answer:
        body: dict[str, Any] = orjson.loads(answer.read())
    return body


def test_sink_replicas_goes_into_the_template_and_the_build_index(
    engine: tuple[EngineSink, str],
) -> None:
    sink, base = engine
    build_index = build_index_for(sink.config.index_prefix)
    sink.config = replace(sink.config, replicas=1, build_index=build_index)
    sink.prepare()
    name = template_name(sink.config.index_prefix)
    (template,) = get_json(f"{base}/_index_template/{name}")["index_templates"]
    assert template["index_template"]["template"]["settings"]["index"]["number_of_replicas"] == "1"
    settings = get_json(f"{base}/{build_index}/_settings")[build_index]["settings"]["index"]
    assert settings["number_of_replicas"] == "1"


def test_a_url_of_several_nodes_goes_on_to_the_next_when_one_is_unreachable(
    engine: tuple[EngineSink, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The first node refuses connections; every request that reached it was carried to
    the live one by the client: the sink's own retries (which log the first failure at
    WARNING) never ran."""
    sink, base = engine
    kind = sink.config.url.partition("+")[0]
    url = f"{kind}+http://127.0.0.1:{free_port()},{base.removeprefix('http://')}"
    config = replace(sink.config, url=url)
    several = open_sink(url, config)
    caplog.set_level(logging.DEBUG, logger="worker.sinks.retry")
    try:
        several.prepare()
        events = oslo_events(900)
        # Several requests, so that the client's turn comes round to the dead node.
        result = several.write(build_documents(events, JOB, config.index_prefix))
        assert (result.indexed, result.failed) == (len(events), 0)
        several.refresh()
        assert several.count() == len(events)
        assert [r.getMessage() for r in caplog.records if r.name == "worker.sinks.retry"] == []
    finally:
        several.close()


def test_write_twice_keeps_count_and_refusals_are_counted(engine: tuple[EngineSink, str]) -> None:
    sink, _ = engine
    sink.prepare()
    events = oslo_events(1200)
    documents = list(build_documents(events, JOB, sink.config.index_prefix))
    refused = Document(documents[0].index, "refused-doc", {"@timestamp": "not a time"})
    result = sink.write([*documents[:600], refused, *documents[600:]])
    assert result.indexed == len(events)
    assert result.failed == 1
    assert "refused-doc" in result.errors[0]
    sink.refresh()
    assert sink.count() == len(events)

    again = sink.write(build_documents(events, JOB, sink.config.index_prefix))
    assert again.indexed == len(events) and again.failed == 0
    sink.refresh()
    assert sink.count() == len(events)

    debug = sum(1 for e in events if e.fields["loglevel"] == "DEBUG")
    assert sink.count("loglevel:DEBUG") == debug
    result_hits = sink.search('loglevel:INFO AND tags:"screen-q-svc.txt"', size=5)
    assert result_hits.total == sum(1 for e in events if e.fields["loglevel"] == "INFO")
    assert all(hit["_index"] == f"{sink.config.index_prefix}2013.09.27" for hit in result_hits.hits)


# Counted by hand in tests/data/oslo-context.txt: analysed text, as in the historical
# index, so a part of the value between hyphens is a word; .raw holds the whole value.
CONTEXT_TEXT_HITS = [
    ('instance:"3f2a8c1e"', 3),  # lines 1, 2 and 5 (line 6 has it in the message only)
    ('instance.raw:"3f2a8c1e"', 0),
    ('instance.raw:"3f2a8c1e-5b7d-4e2f-9a61-7c0d2e4b9f10"', 3),
    ("request_id:req-0c4d5e6f", 5),  # unquoted: req OR 0c4d5e6f; line 4 has no request id
    ('request_id:"req-0c4d5e6f"', 3),
]


def test_request_context_fields_are_text_with_exact_raw_values(
    engine: tuple[EngineSink, str],
) -> None:
    sink, _ = engine
    sink.prepare()
    assert sink.write(context_documents(sink.config.index_prefix)).indexed == 6
    sink.refresh()
    # Whole values (those CONTEXT_HITS finds) are phrases that match the text field too.
    whole = [(query, hits) for query, hits in CONTEXT_HITS if hits]
    expected = whole + CONTEXT_TEXT_HITS
    assert [(query, sink.count(query)) for query, _ in expected] == expected


@pytest.mark.parametrize("senders", [1, 4])
def test_any_number_of_concurrent_requests_indexes_every_document_once(
    engine: tuple[EngineSink, str], senders: int
) -> None:
    sink, _ = engine
    sink.config = replace(sink.config, concurrent_requests=senders, chunk_documents=37)
    sink.prepare()
    events = oslo_events(1000)
    refused = Document(f"{sink.config.index_prefix}2013.09.27", "refused", {"@timestamp": "x"})
    documents = [*build_documents(events, JOB, sink.config.index_prefix), refused]
    result = sink.write(documents)
    assert (result.indexed, result.failed) == (len(events), 1)
    assert result.errors and "refused" in result.errors[0]
    sink.refresh()
    assert sink.count() == len(events)
    assert sink.count("loglevel:DEBUG") == sum(e.fields["loglevel"] == "DEBUG" for e in events)


def test_a_build_summary_is_written_once_its_documents_are_searchable(
    engine: tuple[EngineSink, str],
) -> None:
    """The template refreshes every 30 s: searchable at once is the summary's doing."""
    sink, _ = engine
    sink.config = replace(sink.config, build_index=build_index_for(sink.config.index_prefix))
    sink.prepare()
    events = oslo_events(20)
    assert sink.write(build_documents(events, JOB, sink.config.index_prefix)).indexed == 20
    sink.put_build({"type": "build", "build_uuid": JOB.fields["build_uuid"]})
    assert sink.count() == len(events)


def test_bad_query_is_a_query_error(engine: tuple[EngineSink, str]) -> None:
    sink, _ = engine
    sink.prepare()
    sink.write(build_documents(oslo_events(3), JOB, sink.config.index_prefix))
    sink.refresh()
    with pytest.raises(QueryError):
        sink.search('message:"unclosed AND (', size=1)


# The template's fields as version 1 (keyword-only, before issue 12) mapped them.
KEYWORD_MAPPING = {
    "dynamic_templates": [
        {"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword"}}}
    ],
    "properties": {"@timestamp": {"type": "date"}, "generation": {"type": "long"}},
}


def put_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=orjson.dumps(body), method="PUT", headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        result: dict[str, Any] = orjson.loads(answer.read())
    return result


@pytest.mark.parametrize("keyword_index", [False, True], ids=["template", "keyword-index"])
def test_delete_file_removes_only_that_file(
    engine: tuple[EngineSink, str], keyword_index: bool
) -> None:
    """Also in a daily index made before the template's version 2, whose fields stay
    keywords: re-indexing one of its files must still find that file's documents."""
    sink, base = engine
    if keyword_index:  # made before the template is installed: a template would apply
        put_json(f"{base}/{sink.config.index_prefix}2013.09.27", {"mappings": KEYWORD_MAPPING})
    sink.prepare()
    events = oslo_events(50)
    other = Job(JOB.source_url, {**JOB.fields, "filename": "logs/other.txt"}, JOB.tags)
    sink.write(build_documents(events, JOB, sink.config.index_prefix))
    sink.write(build_documents(events, other, sink.config.index_prefix))
    sink.refresh()
    assert sink.delete_file("0123456789abcdef", "logs/screen-q-svc.txt") == len(events)
    sink.refresh()
    assert sink.count() == len(events)
    assert sink.count('filename:"logs/other.txt"') == len(events)


def test_a_template_of_an_older_version_is_replaced_and_a_newer_one_kept(
    engine: tuple[EngineSink, str],
) -> None:
    sink, base = engine
    url = f"{base}/_index_template/{template_name(sink.config.index_prefix)}"
    older = {"index_patterns": [f"{sink.config.index_prefix}*"], "priority": 100}
    put_json(url, {**older, "template": {"mappings": KEYWORD_MAPPING}})  # no version: 0
    sink.prepare()
    (installed,) = get_json(url)["index_templates"]
    assert installed["index_template"]["version"] == 2
    build_name = installed["index_template"]["template"]["mappings"]["properties"]["build_name"]
    assert build_name["type"] == "text"

    put_json(url, {**older, "version": 3, "template": {"mappings": KEYWORD_MAPPING}})
    sink.prepare()
    (kept,) = get_json(url)["index_templates"]
    assert kept["index_template"]["version"] == 3
    assert "build_name" not in kept["index_template"]["template"]["mappings"].get("properties", {})


def cli_config(sink: EngineSink, directory: Path) -> list[str]:
    """`log-shipper search` options for `sink`: its URL, and a configuration naming
    its index prefix."""
    config = directory / "worker.yaml"
    prefix = sink.config.index_prefix
    config.write_text(
        f"sink:\n  index_prefix: {prefix}\n  build_index: {build_index_for(prefix)}\n"
    )
    return ["--sink", sink.config.url, "--config", str(config)]


def test_deep_query_is_refused_in_one_line_and_the_engine_keeps_serving(
    engine: tuple[EngineSink, str], tmp_path: Path
) -> None:
    # OpenSearch 3.6 ends its whole process on a StackOverflowError for this query.
    sink, _ = engine
    sink.prepare()
    events = oslo_events(40)
    sink.write(build_documents(events, JOB, sink.config.index_prefix))
    sink.refresh()
    options = cli_config(sink, tmp_path)

    deep = search_cli("(" * 3000 + "loglevel:INFO" + ")" * 3000, *options, cwd=tmp_path)
    assert (deep.returncode, deep.stdout) == (2, "")
    assert deep.stderr == (
        "log-shipper: error: query nested 3000 levels deep (parentheses and NOT, -, + "
        "operators), more than 100\n"
    )

    info = sum(1 for e in events if e.fields["loglevel"] == "INFO")
    assert info > 0
    within = "(" * 100 + "loglevel:INFO" + ")" * 100
    counted = search_cli(within, "--count", *options, cwd=tmp_path)
    assert (counted.returncode, counted.stderr) == (0, "")
    assert int(counted.stdout) == info
    assert sink.count() == len(events)  # the engine still answers


def test_query_errors_keep_the_engines_cause_in_one_line(
    engine: tuple[EngineSink, str], tmp_path: Path
) -> None:
    sink, _ = engine
    sink.prepare()
    sink.write(build_documents(oslo_events(3), JOB, sink.config.index_prefix))
    sink.refresh()
    result = search_cli('message:"unclosed AND (', *cli_config(sink, tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    [line] = result.stderr.splitlines()
    # What both engines answer (the cause is in failed_shards, and for OpenSearch also
    # in caused_by), outermost error first.
    assert line.startswith(
        "log-shipper: error: query refused: search_phase_execution_exception: all shards "
        "failed caused by: query_shard_exception: Failed to parse query "
        '[message:"unclosed AND (] caused by: parse_exception: Cannot parse '
        "'message:\"unclosed AND (': Lexical error at line 1, column 24."
    )
    assert "Traceback" not in result.stderr


# What both engines answer, written out from their error objects: each cause once (the
# date's reason quotes itself, and its cause repeats it; the number's cause repeats it).
QUERY_ERRORS = [
    (
        "line_number:abc",
        'query_shard_exception: failed to create query: For input string: "abc"',
    ),
    (
        "@timestamp:notadate",
        "parse_exception: failed to parse date field [notadate] with format "
        "[strict_date_optional_time||epoch_millis] caused by: date_time_parse_exception: "
        "Failed to parse with all enclosed parsers",
    ),
]


@pytest.mark.parametrize(("query", "cause"), QUERY_ERRORS, ids=["number", "date"])
def test_a_value_of_the_wrong_type_is_refused_with_each_cause_once(
    engine: tuple[EngineSink, str], tmp_path: Path, query: str, cause: str
) -> None:
    sink, _ = engine
    sink.prepare()
    sink.write(build_documents(oslo_events(3), JOB, sink.config.index_prefix))
    sink.refresh()
    result = search_cli(query, *cli_config(sink, tmp_path), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "log-shipper: error: query refused: search_phase_execution_exception: all shards "
        f"failed caused by: {cause}\n"
    )


def test_a_refusal_is_one_bounded_line_keeping_its_cause(engine: tuple[EngineSink, str]) -> None:
    # A keyword of 40,000 bytes (file_key, the one string field kept whole without a
    # limit): the engines refuse it quoting it back whole (a Java dump of 40 KB on
    # Elasticsearch), the cause last.
    sink, _ = engine
    sink.prepare()
    [document] = build_documents(oslo_events(1), JOB, sink.config.index_prefix)
    huge = Document(document.index, "huge-module", {**document.source, "file_key": "m" * 40_000})
    result = sink.write([huge])
    assert (result.indexed, result.failed) == (0, 1)
    [reason] = result.errors
    assert len(reason) <= 500 and "\n" not in reason
    assert reason.startswith("huge-module: ")
    assert "immense term" in reason


def historical_documents(prefix: str) -> list[Document]:
    """Three builds of two lines each, with the values the fingerprint queries were
    written for (see HISTORICAL_HITS)."""
    builds = [
        ("neutron-fullstack-python36", "FAILURE", "openstack/nova-specs"),
        ("tempest-full", "SUCCESS", "openstack/nova"),
        ("tempest-full-py3", "FAILURE", "openstack/neutron"),
    ]
    lines = [
        [
            ({"loglevel": "ERROR"}, "Timed out waiting for a reply to message ID 1"),
            ({"loglevel": "INFO"}, "Starting server"),
        ],
        [
            ({"program": "proxy-server", "host": "node-1", "pid": "42"}, "ERROR Handoff (1)"),
            ({"loglevel": "WARNING"}, "Job status: FAILURE of a dependency"),
        ],
        [
            ({"program": "object-server", "host": "node-2"}, "Object PUT returned 503"),
            ({"loglevel": "ERROR"}, "Nothing went right"),
        ],
    ]
    documents: list[Document] = []
    for number, ((name, status, project), events) in enumerate(zip(builds, lines, strict=True)):
        fields = {"build_uuid": f"build{number}", "build_name": name}
        fields |= {"build_status": status, "project": project, "filename": "logs/x.txt"}
        job = Job(f"http://logs.example.org/{number}/x.txt", fields, ("console",))
        documents += build_documents(
            [
                Event(line, f"2024-05-02T10:0{line}:00Z", message, parsed)
                for line, (parsed, message) in enumerate(events, 1)
            ],
            job,
            prefix,
        )
    return documents


# Counted by hand in historical_documents: builds 0, 1, 2 have two documents each.
HISTORICAL_HITS = [
    ('build_name:"neutron-fullstack"', 2),  # a phrase of words: in neutron-fullstack-python36
    ('build_name:"tempest-full"', 4),  # builds 1 and 2
    ('build_name.raw:"tempest-full"', 2),  # the exact value: build 1 only
    ("build_status:failure", 4),  # builds 0 and 2, lower-cased
    ("build_status.raw:failure", 0),
    ("loglevel:error", 2),
    ("loglevel.raw:ERROR", 2),
    ('project:"openstack/nova"', 4),  # openstack/nova and openstack/nova-specs
    ('project.raw:"openstack/nova"', 2),
    ('program:"proxy-server"', 1),
    ('syslog_program:"proxy-server"', 1),  # the historical name of program
    ('syslog_host:"node-1"', 1),
    ("syslog_pid:42", 1),
    ("failure", 1),  # no field: the message only, not build_status (4 documents)
    ("error", 1),  # the message of build 1's first line, not loglevel
]


def test_fields_have_the_historical_index_semantics(engine: tuple[EngineSink, str]) -> None:
    sink, _ = engine
    sink.prepare()
    assert sink.write(historical_documents(sink.config.index_prefix)).indexed == 6
    sink.refresh()
    assert [(query, sink.count(query)) for query, _ in HISTORICAL_HITS] == HISTORICAL_HITS


# Each word is in one message ("Job status: FAILURE ...", "ERROR Handoff (1)", none has
# 42); build_status, loglevel and pid have it in more documents.
@pytest.mark.parametrize(("query", "hits"), [("failure", 1), ("error", 1), ("42", 0)])
def test_a_query_without_a_field_searches_the_message_for_any_client(
    engine: tuple[EngineSink, str], query: str, hits: int
) -> None:
    """As Kibana sends it: no default_field, so the index's default field applies."""
    sink, base = engine
    sink.prepare()
    assert sink.write(historical_documents(sink.config.index_prefix)).indexed == 6
    sink.refresh()
    body = orjson.dumps({"query": {"query_string": {"query": query}}})
    request = urllib.request.Request(
        f"{base}/{sink.config.index_prefix}*/_count",
        data=body,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        count = orjson.loads(answer.read())["count"]
    assert count == hits
