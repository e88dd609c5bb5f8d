"""What Elasticsearch and OpenSearch sinks share: the REST calls we make are the same.

Subclasses only say how one HTTP request is sent (each with its own official client).
Every request goes through the sink's RetryPolicy (worker/sinks/retry.py): an engine
that stops answering or is overloaded is waited for, up to `sink.outage_seconds`, and
bulk requests in flight follow the engine's load (worker/sinks/pressure.py).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import orjson

from worker.config import SinkConfig
from worker.documents import (
    FILE_KEY_FIELD,
    GENERATION_FIELD,
    Document,
    FileRun,
    document_id,
)
from worker.errors import QueryError, SinkError, one_line
from worker.fields import catalogue
from worker.redact import mask_url
from worker.resources import resource_path
from worker.sinks.base import (
    COUNTS_SIZE,
    Replaced,
    SearchResult,
    WriteResult,
    check_complete,
    check_counts_size,
    summary_window,
)
from worker.sinks.bulk import Chunk, chunk_documents, read_items
from worker.sinks.engine_errors import describe
from worker.sinks.pressure import InFlight
from worker.sinks.query_depth import check_query_depth
from worker.sinks.retry import (
    INTERACTIVE_SECONDS,
    OVERLOADED,
    OutageLog,
    Retry,
    RetryPolicy,
)

# For requests over the index pattern: no index yet means no hits, not an error.
PATTERN_PARAMS = {"ignore_unavailable": "true", "allow_no_indices": "true"}
# Built chunks that may wait while others are being sent (memory: this many chunks plus
# sink.concurrent_requests in flight plus the one being built, each at most
# sink.chunk_bytes).
SEND_AHEAD = 1
# Documents deleted per search-and-bulk-delete round.
DELETE_PAGE = 1000
# A `_bulk` answer cut to what `bulk.read_items` reads: about 25 bytes an item instead
# of 200, which the engine does not write and the worker does not parse.
BULK_PARAMS = {"filter_path": "errors,items.*.status,items.*.error"}
# Values each index (one shard) proposes to a `counts` aggregation: the counts are exact
# while no daily index holds more distinct values of the field than this.
COUNTS_SHARD_SIZE = 10_000
# Build summaries read per request by `builds`.
BUILDS_PAGE = 1000


def template_name(prefix: str) -> str:
    """One template per index prefix: a template found under another prefix's name must
    not stop this prefix's from being installed."""
    return f"ci-log-indexer-{prefix.rstrip('-_.') or 'default'}"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    # Sent more than once: an earlier attempt may have been applied by the engine
    # although its answer was lost.
    repeated: bool = False


class EngineSink:
    KIND: ClassVar[str] = "engine"  # the engine's name in messages

    def __init__(self, base_url: str, config: SinkConfig) -> None:
        self.base_url = base_url
        self.config = config
        self.pattern = f"{config.index_prefix}*"
        engine = f"{self.KIND} at {mask_url(base_url)}"
        self.retry = RetryPolicy(
            engine,
            budget=config.outage_seconds,
            base=config.backoff,
            cap=config.max_backoff,
            outages=OutageLog(engine),
        )
        # For searches, start-up and health checks: someone waiting for the answer would
        # rather be told than wait minutes.
        self.interactive = self.retry.interactive(min(INTERACTIVE_SECONDS, config.outage_seconds))
        self.in_flight = InFlight(config.concurrent_requests)

    # -- the one thing subclasses provide ------------------------------------------
    def _perform(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        ndjson: bool = False,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send one request; return (status, decoded JSON body) for any HTTP status.

        Raises EngineUnavailable when no HTTP answer came back at all (retried by
        the RetryPolicy running the attempt).
        """
        raise NotImplementedError

    # -- Sink interface ----------------------------------------------------------------
    def prepare(self) -> None:
        if not self.config.install_template:
            return
        name = template_name(self.config.index_prefix)
        # At start-up: an engine not there is said at once (see retry.py).
        quick = self.interactive
        template = index_template(self.config.index_prefix, self.config.replicas)
        installed = self._request("GET", f"/_index_template/{name}", policy=quick)
        # One of an older version is replaced (indices made under it keep its mapping);
        # an operator's own template of a higher version stays.
        if installed.status == 200 and _version(installed.body) >= template.get("version", 0):
            return
        put = self._request("PUT", f"/_index_template/{name}", orjson.dumps(template), policy=quick)
        if put.status >= 300:
            raise SinkError(
                f"installing index template failed: HTTP {put.status}: {reason(put.body)}"
            )
        self._create_build_index()

    def _create_build_index(self) -> None:
        index = self.config.build_index
        if self._request("GET", f"/{index}/_mapping", policy=self.interactive).status == 200:
            return
        body = {
            "settings": {"number_of_shards": 1, "number_of_replicas": self.config.replicas or 0},
            "mappings": {
                "dynamic_templates": [
                    {
                        "strings_as_keywords": {
                            "match_mapping_type": "string",
                            "mapping": {"type": "keyword", "ignore_above": 1024},
                        }
                    }
                ],
                "properties": {
                    "@timestamp": {"type": "date"},
                    "started": {"type": "date"},
                    "finished": {"type": "date"},
                    "errors": {"type": "text"},
                    "error": {"type": "text"},
                    "files": {"type": "object", "enabled": False},
                },
            },
        }
        # A repeated PUT whose first one was applied finds the index: already_exists.
        put = self._request("PUT", f"/{index}", orjson.dumps(body), policy=self.interactive)
        if put.status >= 300 and "already_exists" not in reason(put.body):
            raise SinkError(
                f"creating build index {index} failed: HTTP {put.status}: {reason(put.body)}"
            )

    def write(self, documents: Iterable[Document]) -> WriteResult:
        """Chunks are sent by `sink.concurrent_requests` background threads while the
        next ones are built here, so parsing overlaps the engine's indexing and the
        engine has a request to work on while another one's answer travels back. Built
        chunks wait in a queue of SEND_AHEAD; memory stays bounded by the chunks in the
        queue, in flight and being built, each at most sink.chunk_bytes."""
        results = [WriteResult() for _ in range(self.config.concurrent_requests)]
        pending: queue.Queue[Chunk | None] = queue.Queue(maxsize=SEND_AHEAD)
        failures: list[BaseException] = []

        def send_pending(result: WriteResult) -> None:
            while (chunk := pending.get()) is not None:
                if failures:
                    continue  # drain: nothing more is sent once a chunk failed
                try:
                    self._send(chunk, result)
                except BaseException as exc:  # re-raised in the writing thread
                    failures.append(exc)

        senders = [
            threading.Thread(target=send_pending, args=(result,), name="bulk-sender", daemon=True)
            for result in results
        ]
        for sender in senders:
            sender.start()
        try:
            for chunk in chunk_documents(
                documents,
                max_documents=self.config.chunk_documents,
                max_bytes=self.config.chunk_bytes,
            ):
                if failures:
                    break
                pending.put(chunk)
        finally:
            for _ in senders:
                pending.put(None)
            for sender in senders:
                sender.join()
        if failures:
            raise failures[0]
        result = WriteResult()
        for part in results:
            result.merge(part)
        return result

    def _send(self, chunk: Chunk, result: WriteResult) -> None:
        """Send a chunk, again while the engine is away or overloaded (items it rejected
        for load are sent again alone); count what it refused for good. Sending a
        document twice is harmless: ids are deterministic and versions external."""
        pending = chunk

        def attempt() -> None:
            nonlocal pending
            with self.in_flight.slot() as sent_in:
                status, body = self._perform(
                    "POST", "/_bulk", pending.body, ndjson=True, params=BULK_PARAMS
                )
            if status == 429:
                self.in_flight.overloaded(sent_in)
            if status in OVERLOADED:
                raise Retry(f"HTTP {status}: {reason(body)}", answered=True)
            if status >= 300:
                self.in_flight.succeeded()
                result.add_error(f"bulk refused: HTTP {status}: {reason(body)}", len(pending.ids))
                return
            outcome = read_items(body, pending.ids)
            result.superseded += outcome.superseded
            result.indexed += (
                len(pending.ids) - len(outcome.retry) - len(outcome.failed) - outcome.superseded
            )
            for _, why in outcome.failed:
                result.add_error(why)
            if not outcome.retry:
                self.in_flight.succeeded()
                return
            self.in_flight.overloaded(sent_in)
            landed = len(outcome.retry) < len(pending.ids)
            pending = pending.select(outcome.retry)
            raise Retry(
                f"{len(pending.ids)} documents rejected for load",
                answered=True,
                progress=landed,
            )

        self.retry.run(attempt)

    def refresh(self) -> None:
        self._checked("POST", f"/{self.pattern}/_refresh", params=PATTERN_PARAMS)

    def count(self, query: str = "*") -> int:
        body = {"query": self._query(query)}
        response = self._read(f"/{self.pattern}/_count", body)
        return int(response["count"])

    def search(self, query: str, size: int = 10, *, oldest_first: bool = False) -> SearchResult:
        body = {
            "query": self._query(query),
            "size": size,
            "sort": [
                {"@timestamp": {"order": "asc" if oldest_first else "desc"}},
                {"line_number": {"order": "asc"}},
            ],
            "track_total_hits": True,
        }
        response = self._read(f"/{self.pattern}/_search", body)
        hits = [
            {**hit["_source"], "_id": hit["_id"], "_index": hit["_index"]}
            for hit in response["hits"]["hits"]
        ]
        return SearchResult(total=int(response["hits"]["total"]["value"]), hits=hits)

    def counts(self, query: str, field: str, size: int = COUNTS_SIZE) -> dict[str, int]:
        check_counts_size(size)
        terms = {
            "field": catalogue().exact_name(field),
            "size": size,
            "shard_size": max(size, COUNTS_SHARD_SIZE),
            "order": [{"_count": "desc"}, {"_key": "asc"}],
        }
        body = {"query": self._query(query), "size": 0, "aggs": {"values": {"terms": terms}}}
        response = self._read(f"/{self.pattern}/_search", body)
        # No index yet: no aggregation in the answer.
        buckets = response.get("aggregations", {}).get("values", {}).get("buckets", [])
        return {
            str(bucket.get("key_as_string", bucket["key"])): int(bucket["doc_count"])
            for bucket in buckets
        }

    def builds(self, since: str, until: str) -> list[dict[str, Any]]:
        start, end = summary_window(since, until)
        query = {
            "bool": {
                "filter": [
                    {"term": {"type": "build"}},
                    {"range": {"@timestamp": {"gte": start, "lt": end}}},
                ]
            }
        }
        summaries: list[dict[str, Any]] = []
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "query": query,
                "size": BUILDS_PAGE,
                "sort": [{"@timestamp": "asc"}, {"build_uuid": "asc"}],
            }
            if after is not None:
                body["search_after"] = after
            response = self._read(f"/{self.config.build_index}/_search", body)
            hits = response["hits"]["hits"]
            summaries.extend(hit["_source"] for hit in hits)
            if len(hits) < BUILDS_PAGE:
                return summaries
            after = hits[-1]["sort"]

    def delete_file(self, build_uuid: str, filename: str) -> int:
        """Remove a file's documents."""
        query = {"bool": {"filter": _of_build_file(build_uuid, filename)}}
        return self._delete_matching(query, filename)

    def begin_file(self, run: FileRun) -> FileRun:
        # The marker's _version counts the runs of the file ever started; GET is
        # real-time, unlike search, so replace_file can tell without a refresh whether
        # any other run could have written the file.
        put = self._request(
            "PUT",
            self._marker(run),
            orjson.dumps({"type": "file_run", "file_key": run.key, "generation": run.generation}),
        )
        if put.status >= 300:
            raise SinkError(
                f"noting the run of {run.filename} failed: HTTP {put.status}: {reason(put.body)}"
            )
        # Sent more than once, the PUT may have counted this run twice, or a lost first
        # PUT may land after the answered one: not first, which only costs a refresh.
        first = not put.repeated and int(put.body.get("_version", 0)) == 1
        return replace(run, first=first)

    def replace_file(self, run: FileRun, written: WriteResult) -> Replaced:
        if run.first and self._alone(run):
            return Replaced(0)
        # Searches see only refreshed documents: older runs' may be recent.
        removed = self._delete_matching(
            self._of_file(run, {"bool": {"must_not": _from_generation("gte", run)}}),
            run.filename,
            version=(run.generation, "external"),  # only what is still older than this run
        )
        if self._count_of(self._of_file(run, _from_generation("gt", run))):
            # A newer run has written the file: it owns it, and its documents of the
            # same ids are already in place (versions), so this run's others go.
            own = self._of_file(run, {"term": {GENERATION_FIELD: run.generation}})
            own_removed = self._delete_matching(
                own, run.filename, version=(run.generation, "external_gte")
            )
            return Replaced(removed + own_removed, by_newer_run=True)
        left = self._count_of(self._of_file(run, {"term": {GENERATION_FIELD: run.generation}}))
        check_complete(run, written, left)
        return Replaced(removed)

    def discard_file(self, run: FileRun) -> int:
        query = self._of_file(run, {"bool": {"must_not": _from_generation("gt", run)}})
        return self._delete_matching(query, run.filename, version=(run.generation, "external_gte"))

    def _alone(self, run: FileRun) -> bool:
        """No other run of the file has started, and none of the file's documents from
        before generations existed is visible: nothing to replace, no refresh needed."""
        marker = self._request("GET", self._marker(run))
        if marker.status >= 300:
            raise SinkError(
                f"reading the run of {run.filename} failed: HTTP {marker.status}: "
                f"{reason(marker.body)}"
            )
        if int(marker.body.get("_version", 0)) != 1:
            return False
        others = {"bool": {"must_not": {"term": {GENERATION_FIELD: run.generation}}}}
        return self._count_of(self._of_file(run, others)) == 0

    def _marker(self, run: FileRun) -> str:
        return f"/{self.config.build_index}/_doc/run-{run.key}"

    @staticmethod
    def _of_file(run: FileRun, condition: dict[str, Any]) -> dict[str, Any]:
        """`condition` on the documents of the run's file: those of its build and
        filename, or, of no build, those with its key (see documents.FILE_KEY_FIELD)."""
        if run.build_uuid:
            of_file = _of_build_file(run.build_uuid, run.filename)
        else:
            of_file = [{"term": {FILE_KEY_FIELD: run.key}}]
        return {"bool": {"filter": [*of_file, condition]}}

    def _count_of(self, query: dict[str, Any]) -> int:
        body = orjson.dumps({"query": query})
        response = self._checked("POST", f"/{self.pattern}/_count", body, params=PATTERN_PARAMS)
        return int(response["count"])

    def _delete_matching(
        self, query: dict[str, Any], filename: str, version: tuple[int, str] | None = None
    ) -> int:
        """Delete what `query` finds, a page at a time: search then bulk delete, as
        minimal distributions (no reindex module) lack _delete_by_query. With
        `version` (generation, version type) a document rewritten by a newer run since
        the search is left alone (409), as is one already gone (404)."""
        extra = {"version": version[0], "version_type": version[1]} if version else {}
        deleted = 0
        while True:
            self.refresh()
            body = {"query": query, "size": DELETE_PAGE, "_source": False}
            response = self._checked(
                "POST", f"/{self.pattern}/_search", orjson.dumps(body), params=PATTERN_PARAMS
            )
            hits = response["hits"]["hits"]
            if not hits:
                return deleted
            lines = [
                orjson.dumps({"delete": {"_index": hit["_index"], "_id": hit["_id"], **extra}})
                + b"\n"
                for hit in hits
            ]
            statuses, repeated = self._delete_bulk(lines, filename)
            refused = [code for code in statuses if code >= 300 and code not in (404, 409)]
            if refused:
                raise SinkError(
                    f"deleting documents of {filename} failed: {len(refused)} refused "
                    f"(HTTP {refused[0]})"
                )
            # Sent again after a lost answer, a delete finds what the first one deleted
            # gone: it is done all the same.
            done = sum(1 for code in statuses if code < 300 or (repeated and code == 404))
            if not done:
                return deleted  # every hit was rewritten or removed by someone else
            deleted += done

    def _delete_bulk(self, lines: list[bytes], filename: str) -> tuple[list[int], bool]:
        """The status of each delete action in `lines`, those rejected for load sent
        again alone; and whether any was sent more than once."""
        statuses = [0] * len(lines)
        pending = list(range(len(lines)))
        attempts = 0

        def attempt() -> None:
            nonlocal pending, attempts
            attempts += 1
            body = b"".join(lines[i] for i in pending)
            status, answer = self._perform("POST", "/_bulk", body, ndjson=True, params=BULK_PARAMS)
            if status in OVERLOADED:
                raise Retry(f"HTTP {status}: {reason(answer)}", answered=True)
            if status >= 300:
                raise SinkError(f"deleting documents of {filename} failed: {reason(answer)}")
            codes = [int(next(iter(item.values()))["status"]) for item in answer["items"]]
            again = []
            for position, code in zip(pending, codes, strict=True):
                statuses[position] = code
                if code == 429:
                    again.append(position)
            if again:
                landed = len(again) < len(pending)
                pending = again
                raise Retry(
                    f"{len(again)} deletes rejected with HTTP 429", answered=True, progress=landed
                )

        self.retry.run(attempt)
        return statuses, attempts > 1

    def record_file(self, outcome: dict[str, Any]) -> list[dict[str, Any]]:
        index = self.config.build_index
        build_uuid = str(outcome["build_uuid"])
        doc_id = document_id(build_uuid, str(outcome["filename"]), 0)
        # refresh=true: the count that follows must see this outcome.
        self._checked(
            "PUT", f"/{index}/_doc/{doc_id}", orjson.dumps(outcome), params={"refresh": "true"}
        )
        return self._outcomes(build_uuid)

    def file_outcomes(self, build_uuid: str) -> list[dict[str, Any]]:
        return self._outcomes(build_uuid, policy=self.interactive)

    def _outcomes(self, build_uuid: str, policy: RetryPolicy | None = None) -> list[dict[str, Any]]:
        query = {
            "bool": {"filter": [{"term": {"type": "file"}}, {"term": {"build_uuid": build_uuid}}]}
        }
        body = {"query": query, "size": 10000, "sort": [{"filename": "asc"}]}
        response = self._checked(
            "POST",
            f"/{self.config.build_index}/_search",
            orjson.dumps(body),
            params=PATTERN_PARAMS,
            policy=policy,
        )
        return [hit["_source"] for hit in response["hits"]["hits"]]

    def put_build(self, summary: dict[str, Any]) -> None:
        # "Fully indexed" must mean searchable: the template refreshes the documents
        # only every 30 s (fewer, larger segments while loading), so a consumer reading
        # the summary would otherwise miss the build's last documents meanwhile.
        self.refresh()
        path = f"/{self.config.build_index}/_doc/{summary['build_uuid']}"
        self._checked("PUT", path, orjson.dumps(summary), params={"refresh": "true"})

    def get_build(self, build_uuid: str) -> dict[str, Any] | None:
        # Read by backfill and /healthz, not by the jobs: a short wait.
        read = self._request(
            "GET", f"/{self.config.build_index}/_doc/{build_uuid}", policy=self.interactive
        )
        if read.status == 404:
            return None
        if read.status >= 300:
            raise SinkError(
                f"reading build {build_uuid} failed: HTTP {read.status}: {reason(read.body)}"
            )
        source: dict[str, Any] = read.body["_source"]
        return source

    def stop_waiting(self) -> None:
        self.retry.stop_waiting()  # the interactive policy shares its event

    def close(self) -> None:
        pass

    # -- helpers -------------------------------------------------------------------------
    @staticmethod
    def _query(query: str) -> dict[str, Any]:
        if query.strip() in ("", "*"):
            return {"match_all": {}}
        check_query_depth(query)  # deeper ones may crash the engine (OpenSearch 3.6 does)
        return {"query_string": {"query": query, "default_field": "message"}}

    def _read(self, path: str, body: dict[str, Any]) -> Any:
        """A search or count someone waits for; no index there yet is no hits."""
        return self._checked(
            "POST", path, orjson.dumps(body), params=PATTERN_PARAMS, policy=self.interactive
        )

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        params: dict[str, str] | None = None,
        policy: RetryPolicy | None = None,
    ) -> Answer:
        """A request sent until an answer other than an overload comes back, under
        `policy` (by default the writers' one); EngineOutage when its budget runs out."""
        attempts = 0

        def attempt() -> tuple[int, Any]:
            nonlocal attempts
            attempts += 1
            status, answer = self._perform(method, path, body, params=params)
            if status in OVERLOADED:
                raise Retry(f"HTTP {status}: {reason(answer)}", answered=True)
            return status, answer

        status, answer = (policy or self.retry).run(attempt)
        return Answer(status, answer, repeated=attempts > 1)

    def _checked(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        params: dict[str, str] | None = None,
        policy: RetryPolicy | None = None,
    ) -> Any:
        answer = self._request(method, path, body, params=params, policy=policy)
        status, response = answer.status, answer.body
        if status == 400 and method == "POST" and path.endswith(("_search", "_count")):
            raise QueryError(f"query refused: {reason(response)}")
        if status >= 300:
            raise SinkError(f"{method} {path} failed: HTTP {status}: {reason(response)}")
        return response


def _of_build_file(build_uuid: str, filename: str) -> list[dict[str, Any]]:
    return [_exact("build_uuid", build_uuid), _exact("filename", filename)]


def _exact(name: str, value: str) -> dict[str, Any]:
    """Documents whose field `name` is `value`. The field is analysed text, as in the
    historical index, with the whole value in `name`.raw; that keeps values up to 4096
    characters (the template), more than the 4 KiB a job's value may have
    (job.MAX_VALUE_BYTES), so every file is found again when re-indexed. In an index
    made under the template of version 1 the field itself is the keyword and .raw does
    not exist. (file_key and generation stay keyword and long in every version.)"""
    raw = f"{name}.raw"
    keyword = {"bool": {"filter": {"term": {name: value}}, "must_not": {"exists": {"field": raw}}}}
    return {"bool": {"should": [{"term": {raw: value}}, keyword], "minimum_should_match": 1}}


def _version(answer: Any) -> int:
    """The version of the index template in a GET _index_template answer (0: none)."""
    templates = answer.get("index_templates") if isinstance(answer, dict) else None
    if not templates:
        return 0
    return int(templates[0].get("index_template", {}).get("version", 0))


def _from_generation(operator: str, run: FileRun) -> dict[str, Any]:
    return {"range": {GENERATION_FIELD: {operator: run.generation}}}


def reason(body: Any) -> str:
    """The reason in an engine's error answer, as one bounded line with its causes."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return describe(error)
        return one_line(str(error))
    return one_line(str(body), 300)


def index_template(
    prefix: str, replicas: int | None = None, source: Path | None = None
) -> dict[str, Any]:
    """The shipped template (or the one in file `source`) for `prefix`, with `replicas`
    (sink.replicas) if set."""
    path = source or resource_path("index-template.json")
    template: dict[str, Any] = orjson.loads(path.read_bytes())
    template["index_patterns"] = [f"{prefix}*"]
    if replicas is not None:
        template["template"]["settings"]["number_of_replicas"] = replicas
    return template
