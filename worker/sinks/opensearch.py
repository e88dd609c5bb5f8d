"""OpenSearch sink, through the official `opensearch-py` client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import SerializationError, TransportError
from opensearchpy.serializer import JSONSerializer

from worker.config import SinkConfig
from worker.sinks.engine import EngineSink, EngineUnavailable


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
    def __init__(self, hosts: Sequence[str], config: SinkConfig) -> None:
        super().__init__(config)
        options: dict[str, Any] = {
            "timeout": config.request_timeout,
            "verify_certs": config.verify_certs,
            # Retries are ours, with backoff and per-item handling; the client's only
            # send a request that found no node to the next one.
            "max_retries": len(hosts) - 1,
            "retry_on_status": (),
            "retry_on_timeout": False,
            "serializer": OrjsonAnswers(),
            # One connection per request in flight (the client's default keeps one and
            # opens, then discards, another for each concurrent request).
            "pool_maxsize": config.concurrent_requests,
        }
        if config.ca_certs:
            options["ca_certs"] = config.ca_certs
        if config.api_key:
            options["headers"] = {"authorization": f"ApiKey {config.api_key}"}
        elif config.username:
            options["http_auth"] = (config.username, config.password or "")
        self.base_url = ", ".join(hosts)  # for messages: no credentials in them
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
            raise EngineUnavailable(f"OpenSearch at {self.base_url} unreachable: {exc}") from None
        except TransportError as exc:
            return int(exc.status_code), exc.info
        # opensearch-py answers with the decoded body only; errors raised above.
        return 200, response

    def close(self) -> None:
        self.client.close()
