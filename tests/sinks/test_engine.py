"""The Elasticsearch and OpenSearch sinks against the real engines (worker/sinks/engine.py)."""

from __future__ import annotations

import gzip
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import replace

import orjson
import pytest

from tests.engines import index_prefix
from tests.paths import CORPUS
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


def test_bad_query_is_a_query_error(engine: tuple[EngineSink, str]) -> None:
    sink, _ = engine
    sink.prepare()
    sink.write(build_documents(oslo_events(3), JOB, sink.config.index_prefix))
    sink.refresh()
    with pytest.raises(QueryError):
        sink.search('message:"unclosed AND (', size=1)


def test_delete_file_removes_only_that_file(engine: tuple[EngineSink, str]) -> None:
    sink, _ = engine
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
