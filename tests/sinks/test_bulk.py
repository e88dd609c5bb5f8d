"""The `_bulk` body: chunking, NDJSON serialisation, per-item results.

Documents are built by the real document builder from real lines of screen-c-api.txt
(split here with a regular expression, independent of the format parsers). The `_bulk`
responses are written by hand after Elasticsearch's documented response shape:
{"took", "errors", "items": [{"index": {"_index", "_id", "status", "error"?}}, ...]}.
"""

from __future__ import annotations

import json
import math
import re
from functools import cache
from typing import Any

import pytest

from tests.paths import CORPUS
from worker.documents import Document, build_documents
from worker.events import Event
from worker.job import Job
from worker.sinks.bulk import Chunk, chunk_documents, read_items, serialize

SCREEN_C_API = CORPUS / "os-loganalyze" / "screen-c-api.txt"
_OSLO = re.compile(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) (\d+) ([A-Z]+) (\S+) (.*)")
JOB = Job(
    source_url="https://logs.example.org/4f/4f440b7/logs/screen-c-api.txt",
    fields={"build_uuid": "4f440b7e8c4b493c81ddf709d8a54076", "project": "openstack/cinder"},
    tags=("screen", "oslofmt"),
)
BIG = 1 << 40


@cache
def corpus_documents() -> tuple[Document, ...]:
    events = []
    for number, line in enumerate(SCREEN_C_API.read_text().splitlines(), start=1):
        match = _OSLO.fullmatch(line)
        if match:
            date, time, pid, level, module, text = match.groups()
            fields = {"pid": pid, "loglevel": level, "module": module}
            events.append(Event(number, f"{date}T{time}Z", text, fields))
    return tuple(build_documents(events, JOB, "logstash-"))


def documents() -> list[Document]:
    docs = list(corpus_documents())
    assert len(docs) > 3000
    return docs


def encoded_size(document: Document) -> int:
    """Bytes of one action line plus one source line, computed independently."""
    compact = (",", ":")
    action = json.dumps(
        {"index": {"_index": document.index, "_id": document.id}}, separators=compact
    )
    source = json.dumps(document.source, ensure_ascii=False, separators=compact)
    return len(action.encode()) + len(source.encode()) + 2


def parse_body(body: bytes) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(action, source) pairs of an NDJSON body; fails on anything that is not NDJSON."""
    assert body.endswith(b"\n")
    lines = body.decode().split("\n")
    assert lines.pop() == ""
    assert len(lines) % 2 == 0
    parsed = [json.loads(line) for line in lines]
    return list(zip(parsed[::2], parsed[1::2], strict=True))


def test_serialised_lines_are_ndjson_with_index_and_id() -> None:
    for document in documents()[:200]:
        action, source = serialize(document)
        assert action.endswith(b"\n") and action.count(b"\n") == 1
        assert source.endswith(b"\n") and source.count(b"\n") == 1
        assert json.loads(action) == {"index": {"_index": document.index, "_id": document.id}}
        assert json.loads(source) == document.source
        assert json.loads(action)["index"]["_index"] == "logstash-2013.09.27"


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), f"duplicate keys in {names}"
    return dict(pairs)


def test_serialised_source_holds_job_and_line_fields_once() -> None:
    lines = SCREEN_C_API.read_text().splitlines()
    for document in documents()[:200]:
        _, source = serialize(document)
        parsed = json.loads(source, object_pairs_hook=no_duplicate_keys)
        line = lines[parsed["line_number"] - 1]
        assert parsed["message"] in line
        assert line.startswith(parsed["@timestamp"][:10])
        assert f" {parsed['pid']} {parsed['loglevel']} {parsed['module']} " in line
        for name, value in JOB.fields.items():
            assert parsed[name] == value
        assert parsed["tags"][:2] == list(JOB.tags)
        assert parsed == document.source


def test_a_line_field_named_like_a_job_field_wins_and_appears_once() -> None:
    # job-output.txt's host column and a submitter that also sent "host" (and, by
    # mistake, "message"): the line's own values are the ones indexed.
    line = "2018-08-01 00:44:04.804077 | ubuntu-xenial | ok: Runtime: 0:00:00.014"
    match = re.fullmatch(r"(\S+) (\S+) \| (\S+) \| (.*)", line)
    assert match
    date, time, host, text = match.groups()
    job = Job(
        source_url="https://logs.example.org/job-output.txt",
        fields={"build_uuid": "b" * 32, "host": "executor-1", "message": "from the job"},
        tags=("console",),
    )
    # A parsed "tags" would clash too, yet the tags stay the job's.
    clash = {"host": host, "tags": "parsed"}
    events = [Event(1, f"{date}T{time}Z", text, clash), Event(2, f"{date}T{time}Z", "x")]
    clashing, plain = build_documents(events, job, "logstash-")
    for document, expected_host in ((clashing, host), (plain, "executor-1")):
        _, source = serialize(document)
        parsed = json.loads(source, object_pairs_hook=no_duplicate_keys)
        assert parsed["host"] == expected_host
        assert parsed["build_uuid"] == "b" * 32
        assert parsed == document.source
    assert json.loads(serialize(clashing)[1])["message"] == text
    assert json.loads(serialize(clashing)[1])["tags"][0] == "console"
    assert json.loads(serialize(plain)[1])["message"] == "x"


def test_multi_line_and_unicode_messages_stay_one_line() -> None:
    document = Document(
        "logstash-2013.09.27",
        "abc",
        {"message": 'Traceback\n  File "x"\n\tü "quoted" \\ end', "tags": ["a"]},
    )
    action, source = serialize(document)
    assert source.count(b"\n") == 1
    assert json.loads(source) == document.source
    assert json.loads(action) == {"index": {"_index": "logstash-2013.09.27", "_id": "abc"}}


@pytest.mark.parametrize("max_documents", [1, 7, 500, 2000])
def test_chunking_by_count(max_documents: int) -> None:
    docs = documents()
    chunks = list(chunk_documents(docs, max_documents=max_documents, max_bytes=BIG))
    assert len(chunks) == math.ceil(len(docs) / max_documents)
    assert all(len(c.ids) == max_documents for c in chunks[:-1])
    assert 1 <= len(chunks[-1].ids) <= max_documents
    assert [i for c in chunks for i in c.ids] == [d.id for d in docs]


@pytest.mark.parametrize("max_bytes", [4096, 20_000, 250_000])
def test_chunking_by_bytes(max_bytes: int) -> None:
    docs = documents()
    sizes = {d.id: encoded_size(d) for d in docs}
    chunks = list(chunk_documents(docs, max_documents=BIG, max_bytes=max_bytes))
    assert [i for c in chunks for i in c.ids] == [d.id for d in docs]
    for number, chunk in enumerate(chunks):
        assert chunk.size == len(chunk.body) == sum(sizes[i] for i in chunk.ids)
        assert chunk.size <= max_bytes or len(chunk.ids) == 1
        if number + 1 < len(chunks):
            # Greedy: the next document would not have fitted.
            assert chunk.size + sizes[chunks[number + 1].ids[0]] > max_bytes
    assert len(chunks) >= math.ceil(sum(sizes.values()) / max_bytes)


def test_chunking_by_count_and_bytes_together() -> None:
    docs = documents()
    chunks = list(chunk_documents(docs, max_documents=50, max_bytes=40_000))
    assert all(len(c.ids) <= 50 and c.size <= 40_000 for c in chunks)
    assert any(len(c.ids) == 50 for c in chunks)  # some chunks are cut by count...
    assert any(len(c.ids) < 50 for c in chunks[:-1])  # ...others by bytes
    assert [i for c in chunks for i in c.ids] == [d.id for d in docs]


def test_a_document_bigger_than_max_bytes_gets_a_chunk_of_its_own() -> None:
    docs = documents()[:30]
    lines = SCREEN_C_API.read_text().splitlines()
    big = Document(docs[0].index, "big", {**docs[0].source, "message": "\n".join(lines[:400])})
    assert encoded_size(big) > 20_000
    stream = [*docs[:10], big, *docs[10:]]
    chunks = list(chunk_documents(stream, max_documents=BIG, max_bytes=20_000))
    (alone,) = [c for c in chunks if "big" in c.ids]
    assert alone.ids == ["big"]
    assert alone.size == encoded_size(big)
    assert [i for c in chunks for i in c.ids] == [d.id for d in stream]
    assert all(c.size <= 20_000 for c in chunks if c is not alone)


def test_no_documents_no_chunks() -> None:
    assert list(chunk_documents([], max_documents=10, max_bytes=100)) == []


def test_chunk_body_is_ndjson_of_its_documents() -> None:
    docs = documents()[:250]
    (chunk,) = chunk_documents(docs, max_documents=1000, max_bytes=BIG)
    pairs = parse_body(chunk.body)
    assert len(pairs) == len(docs)
    for (action, source), document in zip(pairs, docs, strict=True):
        assert action == {"index": {"_index": "logstash-2013.09.27", "_id": document.id}}
        assert source["message"] == document.source["message"]
        assert source["line_number"] == document.source["line_number"]


def test_select_picks_the_pairs_at_the_positions() -> None:
    docs = documents()[:20]
    (chunk,) = chunk_documents(docs, max_documents=1000, max_bytes=BIG)
    sub = chunk.select([2, 5, 19])
    assert sub.ids == [docs[2].id, docs[5].id, docs[19].id]
    pairs = parse_body(sub.body)
    assert [action["index"]["_id"] for action, _ in pairs] == sub.ids
    assert [source["line_number"] for _, source in pairs] == [
        docs[i].source["line_number"] for i in (2, 5, 19)
    ]
    assert sub.size == len(sub.body)
    assert chunk.select([]) == Chunk([], [], 0)


def bulk_item(document_id: str, status: int, error: Any = None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "_index": "logstash-2013.09.27",
        "_id": document_id,
        "status": status,
    }
    if status < 300:
        result.update(
            _version=1,
            result="created",
            _shards={"total": 2, "successful": 1, "failed": 0},
            _seq_no=0,
            _primary_term=1,
        )
    if error is not None:
        result["error"] = error
    return {"index": result}


REJECTED = {
    "type": "es_rejected_execution_exception",
    "reason": "rejected execution of coordinating operation [shard_detail=[logstash-"
    "2013.09.27][0][P], shard_coordinating_and_primary_bytes=0, "
    "shard_operation_bytes=98764, shard_max_coordinating_and_primary_bytes=0]",
}
MAPPING = {
    "type": "mapper_parsing_exception",
    "reason": "failed to parse field [pid] of type [long] in document with id 'x'",
    "caused_by": {"type": "illegal_argument_exception", "reason": "For input string"},
}


def test_read_items_separates_load_rejections_from_refusals() -> None:
    docs = documents()[:6]
    (chunk,) = chunk_documents(docs, max_documents=1000, max_bytes=BIG)
    response = {
        "took": 30,
        "errors": True,
        "items": [
            bulk_item(docs[0].id, 201),
            bulk_item(docs[1].id, 429, REJECTED),
            bulk_item(docs[2].id, 400, MAPPING),
            bulk_item(docs[3].id, 200),
            bulk_item(docs[4].id, 429, REJECTED),
            bulk_item(docs[5].id, 409, {"type": "version_conflict_engine_exception"}),
        ],
    }
    outcome = read_items(response, chunk.ids)
    assert outcome.retry == [1, 4]
    assert [position for position, _ in outcome.failed] == [2]
    reason = outcome.failed[0][1]
    assert docs[2].id in reason
    assert "mapper_parsing_exception" in reason
    assert "failed to parse field [pid]" in reason
    # A version conflict: a newer run of the file wrote that id already; not a refusal.
    assert outcome.superseded == 1
    assert chunk.select(outcome.retry).ids == [docs[1].id, docs[4].id]


def test_read_items_without_errors_is_empty() -> None:
    docs = documents()[:3]
    response = {
        "took": 3,
        "errors": False,
        "items": [bulk_item(d.id, 201) for d in docs],
    }
    outcome = read_items(response, [d.id for d in docs])
    assert outcome.retry == []
    assert outcome.failed == []


def test_read_items_other_action_names_and_string_errors() -> None:
    response = {
        "errors": True,
        "items": [
            {"create": {"_index": "i", "_id": "a", "status": 201}},
            {"create": {"_index": "i", "_id": "b", "status": 500, "error": "broken"}},
            {"update": {"_index": "i", "_id": "c", "status": 429, "error": REJECTED}},
        ],
    }
    outcome = read_items(response, ["a", "b", "c"])
    assert outcome.retry == [2]
    assert outcome.failed == [(1, "b: broken")]


# An item whose shard lost its primary's node, shaped as Elasticsearch's answer once the
# bulk's one-minute timeout has passed with no copy of the shard to promote.
UNAVAILABLE = {
    "type": "unavailable_shards_exception",
    "reason": "[logstash-2024.01.01][0] primary shard is not active Timeout: [1m], "
    "request: [BulkShardRequest [[logstash-2024.01.01][0]] containing [500] requests]",
}
NO_MASTER = {
    "type": "cluster_block_exception",
    "reason": "blocked by: [SERVICE_UNAVAILABLE/2/no master];",
}


def test_read_items_sends_again_what_a_lost_node_or_a_lost_master_held_up() -> None:
    response = {
        "errors": True,
        "items": [
            {"index": {"status": 503, "error": UNAVAILABLE}},
            {"index": {"status": 201}},
            {"index": {"status": 503, "error": NO_MASTER}},
            {"index": {"status": 502, "error": "bad gateway"}},
            {"index": {"status": 504, "error": "gateway timeout"}},
            {"index": {"status": 400, "error": MAPPING}},
        ],
    }
    outcome = read_items(response, ["a", "b", "c", "d", "e", "f"])
    assert outcome.retry == [0, 2, 3, 4]
    assert [position for position, _ in outcome.failed] == [5]


def test_read_items_of_an_answer_cut_to_status_and_error() -> None:
    # The sink asks for filter_path=errors,items.*.status,items.*.error: no _id comes
    # back, so refusals are named from the chunk's ids, by position.
    docs = documents()[:3]
    response = {
        "errors": True,
        "items": [
            {"index": {"status": 201}},
            {"index": {"status": 400, "error": MAPPING}},
            {"index": {"status": 429, "error": REJECTED}},
        ],
    }
    outcome = read_items(response, [d.id for d in docs])
    assert outcome.retry == [2]
    expected = (
        f"{docs[1].id}: {MAPPING['type']}: {MAPPING['reason']} "
        "caused by: illegal_argument_exception: For input string"
    )
    assert outcome.failed == [(1, expected)]


def test_a_runs_documents_carry_its_generation_as_external_version() -> None:
    line = "2013-09-27 18:22:35.392 6602 AUDIT cinder.service [-] Starting cinder-api node"
    event = Event(1, "2013-09-27T18:22:35.392Z", line.split("[-] ", 1)[1])
    (document,) = build_documents([event], JOB, "logstash-", generation=1764580000123456789)
    action, source = serialize(document)
    assert json.loads(action) == {
        "index": {
            "_index": "logstash-2013.09.27",
            "_id": document.id,
            "version": 1764580000123456789,
            "version_type": "external_gte",
        }
    }
    assert json.loads(source)["generation"] == 1764580000123456789
