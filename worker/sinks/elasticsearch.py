"""Elasticsearch sink, through the official `elasticsearch` client (9.x)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import orjson
from elastic_transport import SerializationError, Serializer, TransportError
from elasticsearch import ApiError, Elasticsearch

from worker.config import SinkConfig
from worker.sinks.engine import EngineSink
from worker.sinks.retry import EngineUnavailable, no_answer

# The 9.x client asks for "compatible-with=9", which Elasticsearch 8 refuses; ES 9 still
# honours "compatible-with=8" (REST compatibility with the previous major), so asking for
# 8 lets one sink serve both. The client rewrites plain application/json to 9, hence these.
_COMPAT = "compatible-with=8"
JSON_HEADERS = {
    "accept": f"application/vnd.elasticsearch+json; {_COMPAT}",
    "content-type": f"application/vnd.elasticsearch+json; {_COMPAT}",
}
NDJSON_HEADERS = {
    "accept": f"application/vnd.elasticsearch+json; {_COMPAT}",
    "content-type": f"application/vnd.elasticsearch+x-ndjson; {_COMPAT}",
}


# The client logs every failed request at WARNING, a traceback with it (each time it
# moves on to the next node, too), and every 404 we ask for on purpose: an outage
# would be a line per attempt. The sink's RetryPolicy
# says it once (worker/sinks/retry.py); errors reach the sink as exceptions anyway.
logging.getLogger("elastic_transport").setLevel(logging.ERROR)


class PrebuiltJson(Serializer):
    """Bodies go out as the bytes the sink built; answers are parsed with orjson.

    The client's own serializers copy every `_bulk` body into a new buffer and parse
    answers with the standard library, both per chunk of megabytes, in the worker.
    """

    mimetype: ClassVar[str] = "application/json"

    def dumps(self, data: Any) -> bytes:
        return data if isinstance(data, bytes) else orjson.dumps(data)

    def loads(self, data: bytes) -> Any:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(f"answer is not JSON: {exc}", errors=(exc,)) from None


class PrebuiltNdjson(PrebuiltJson):
    mimetype: ClassVar[str] = "application/x-ndjson"


class ElasticsearchSink(EngineSink):
    KIND = "elasticsearch"

    def __init__(self, hosts: Sequence[str], config: SinkConfig) -> None:
        super().__init__(", ".join(hosts), config)
        options: dict[str, Any] = {
            "request_timeout": config.request_timeout,
            "verify_certs": config.verify_certs,
            # Retries are ours (worker/sinks/retry.py), with jittered backoff, an outage
            # budget and per-item handling; the client's only send a request that found
            # no node to the next one.
            "max_retries": len(hosts) - 1,
            "retry_on_status": (),
            "retry_on_timeout": False,
            # The compatibility mimetypes of JSON and NDJSON take these too.
            "serializers": {
                PrebuiltJson.mimetype: PrebuiltJson(),
                PrebuiltNdjson.mimetype: PrebuiltNdjson(),
            },
        }
        if config.ca_certs:
            options["ca_certs"] = config.ca_certs
        if config.api_key:
            options["api_key"] = config.api_key
        elif config.username:
            options["basic_auth"] = (config.username, config.password or "")
        self.client = Elasticsearch(list(hosts), **options)

    def _perform(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        ndjson: bool = False,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        headers = NDJSON_HEADERS if ndjson else JSON_HEADERS
        try:
            response = self.client.perform_request(
                method, path, headers=headers, body=body, params=params
            )
        except ApiError as exc:
            return exc.meta.status, exc.body
        except TransportError as exc:
            raise EngineUnavailable(no_answer(exc)) from None
        return response.meta.status, response.body

    def close(self) -> None:
        self.client.close()
