"""OpenSearch sink, through the official `opensearch-py` client."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import SerializationError, TransportError
from opensearchpy.serializer import JSONSerializer

from worker.config import SinkConfig
from worker.sinks.engine import EngineSink
from worker.sinks.retry import EngineUnavailable, no_answer

# The client logs every failed request at WARNING, a traceback with it (each time it
# moves on to the next node, too), and every 404 we ask for on purpose: an outage
# would be a line per attempt. The sink's RetryPolicy
# says it once (worker/sinks/retry.py); errors reach the sink as exceptions anyway.
logging.getLogger("opensearch").setLevel(logging.ERROR)


class OrjsonAnswers(JSONSerializer):
    """Answers parsed with orjson rather than the standard library: a `_bulk` answer
    has an item per document, parsed in the worker for every chunk. Bodies are our
    bytes already, which the client sends as they are."""

    def loads(self, s: str) -> Any:
        try:
            return orjson.loads(s)
        except orjson.JSONDecodeError as exc:
            raise SerializationError(s, exc) from None


class OpenSearchSink(EngineSink):
    KIND = "opensearch"

    def __init__(self, hosts: Sequence[str], config: SinkConfig) -> None:
        super().__init__(", ".join(hosts), config)
        options: dict[str, Any] = {
            "timeout": config.request_timeout,
            "verify_certs": config.verify_certs,
            # Retries are ours (worker/sinks/retry.py); the client's only send a request
            # that found no node to the next one.
            "max_retries": len(hosts) - 1,
            "retry_on_status": (),
            "retry_on_timeout": False,
            "serializer": OrjsonAnswers(),
            # A connection for each bulk sender, the thread building chunks and the
            # health probe: fewer, and urllib3 drops (and logs) one after each request.
            "pool_maxsize": config.concurrent_requests + 2,
        }
        if config.ca_certs:
            options["ca_certs"] = config.ca_certs
        if config.api_key:
            options["headers"] = {"authorization": f"ApiKey {config.api_key}"}
        elif config.username:
            options["http_auth"] = (config.username, config.password or "")
        self.client = OpenSearch(list(hosts), **options)

    def _perform(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        ndjson: bool = False,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        headers = {"content-type": "application/x-ndjson" if ndjson else "application/json"}
        try:
            response = self.client.transport.perform_request(
                method, path, params=params, body=body, headers=headers
            )
        except OpenSearchConnectionError as exc:
            raise EngineUnavailable(no_answer(exc)) from None
        except TransportError as exc:
            return int(exc.status_code), exc.info
        # opensearch-py answers with the decoded body only; errors raised above.
        return 200, response

    def close(self) -> None:
        self.client.close()
