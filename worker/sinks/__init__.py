"""Sinks, chosen by one URL: `sqlite:PATH`, `elasticsearch+http(s)://...`, `opensearch+http(s)://...`.

Adding a sink means one module implementing `worker.sinks.base.Sink` plus one line below.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from worker.config import SinkConfig
from worker.errors import ConfigError
from worker.sinks.base import Sink


def _sqlite(url: str, config: SinkConfig) -> Sink:
    module = import_module("worker.sinks.sqlite")
    sink: Sink = module.SqliteSink.from_url(url, config)
    return sink


def _engine(module_name: str, class_name: str) -> Callable[[str, SinkConfig], Sink]:
    def open_engine(url: str, config: SinkConfig) -> Sink:
        base_url = url.split("+", 1)[1]
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"sink URL {url!r}: expected {url.split('+')[0]}+http(s)://HOST:PORT")
        sink: Sink = getattr(import_module(module_name), class_name)(base_url.rstrip("/"), config)
        return sink

    return open_engine


# Imported lazily so that the SQLite default needs no engine client at all.
SINKS: dict[str, Callable[[str, SinkConfig], Sink]] = {
    "sqlite": _sqlite,
    "elasticsearch": _engine("worker.sinks.elasticsearch", "ElasticsearchSink"),
    "opensearch": _engine("worker.sinks.opensearch", "OpenSearchSink"),
}


def open_sink(url: str, config: SinkConfig | None = None) -> Sink:
    """Open the sink a URL names; `config` supplies chunk sizes, auth and the index prefix."""
    kind = url.split(":", 1)[0].split("+", 1)[0]
    if kind not in SINKS or ":" not in url:
        raise ConfigError(
            f"sink URL {url!r}: expected sqlite:PATH, elasticsearch+http(s)://HOST:PORT "
            "or opensearch+http(s)://HOST:PORT"
        )
    return SINKS[kind](url, config or SinkConfig(url=url))
