"""Sinks, chosen by one URL: `sqlite:PATH`, `elasticsearch+http(s)://...`, `opensearch+http(s)://...`.

Adding a sink means one module implementing `worker.sinks.base.Sink` plus one line below
(and its kind in `worker.config.SINK_KINDS`, where sink URLs are read).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from importlib import import_module

from worker.config import SinkConfig, SinkURL, parse_sink_url
from worker.errors import ConfigError
from worker.redact import mask_url
from worker.sinks.base import Sink


def _sqlite(url: SinkURL, config: SinkConfig) -> Sink:
    sink: Sink = import_module("worker.sinks.sqlite").SqliteSink(url.target, config)
    return sink


def _engine(module_name: str, class_name: str) -> Callable[[SinkURL, SinkConfig], Sink]:
    def open_engine(url: SinkURL, config: SinkConfig) -> Sink:
        if url.username is not None:
            # Credentials in the URL become basic auth, so that the URL the sink keeps,
            # and prints in its errors, has none.
            if config.username is not None or config.api_key is not None:
                raise ConfigError(
                    f"sink URL {mask_url(config.url)!r} has credentials and so does the "
                    "sink: section (username or api_key); give them in one place"
                )
            config = dataclasses.replace(config, username=url.username, password=url.password)
        try:
            sink: Sink = getattr(import_module(module_name), class_name)(url.targets, config)
        except ValueError as exc:  # the engine clients' word for a URL they cannot use
            raise ConfigError(f"sink URL {mask_url(config.url)!r}: {mask_url(str(exc))}") from None
        return sink

    return open_engine


# Imported lazily so that the SQLite default needs no engine client at all.
SINKS: dict[str, Callable[[SinkURL, SinkConfig], Sink]] = {
    "sqlite": _sqlite,
    "elasticsearch": _engine("worker.sinks.elasticsearch", "ElasticsearchSink"),
    "opensearch": _engine("worker.sinks.opensearch", "OpenSearchSink"),
}


def open_sink(url: str, config: SinkConfig | None = None) -> Sink:
    """Open the sink a URL names, without connecting; `config` supplies chunk sizes,
    auth and the index prefix. A malformed URL is a ConfigError naming the mistake."""
    parsed = parse_sink_url(url)
    config = dataclasses.replace(config, url=url) if config else SinkConfig(url=url)
    return SINKS[parsed.kind](parsed, config)
