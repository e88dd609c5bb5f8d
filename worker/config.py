"""Worker configuration: parsed once from YAML into typed objects, validated at start-up.

Every error names the offending key (e.g. "worker.yaml: fetch.read_timeout must be a
positive number"), so an operator can fix it without reading code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml

from worker.errors import ConfigError
from worker.logs import LOG_FORMATS

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FetchConfig:
    allow: tuple[str, ...] = ()  # URL prefixes (or local directories) that may be fetched
    allow_local: bool = False  # local paths: only for the all-in-one `log-shipper index`
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 3  # on connection errors and 5xx, before the first byte is read
    backoff: float = 1.0  # seconds, doubled after each retry
    max_compressed_bytes: int = 1024 * MiB
    max_decompressed_bytes: int = 16 * 1024 * MiB
    max_line_bytes: int = 64 * 1024
    chunk_bytes: int = 256 * 1024
    ca_certs: str | None = None


@dataclass(frozen=True, slots=True)
class ParseConfig:
    max_event_lines: int = 500  # cap on lines grouped into one multi-line event
    lookahead_lines: int = 2000  # lines searched for a first timestamp before falling back


@dataclass(frozen=True, slots=True)
class SinkConfig:
    url: str = "sqlite:./logs.db"
    index_prefix: str = "logstash-"
    build_index: str = "ci-log-builds"  # outside index_prefix*, so line searches skip it
    install_template: bool = True
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    chunk_documents: int = 2000
    chunk_bytes: int = 8 * MiB
    # Bulk requests one worker process keeps in flight (engine sinks).
    concurrent_requests: int = 2
    max_retries: int = 5  # for 429 / rejected chunks
    backoff: float = 0.5
    request_timeout: float = 120.0


@dataclass(frozen=True, slots=True)
class GearmanTLSConfig:
    """PEM files for TLS to every Gearman server: all three, or none for plaintext."""

    key: str | None = None
    cert: str | None = None
    ca: str | None = None

    @property
    def enabled(self) -> bool:
        return self.key is not None  # parse_config ensures all three or none


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    gearman: tuple[str, ...] = ("127.0.0.1:4730",)  # HOST:PORT of each Gearman server
    gearman_tls: GearmanTLSConfig = field(default_factory=GearmanTLSConfig)
    sink: SinkConfig = field(default_factory=SinkConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    parse: ParseConfig = field(default_factory=ParseConfig)
    log_format: str = "text"  # text | json
    metrics_port: int = 0  # Prometheus endpoint; 0 for none
    metrics_address: str = "127.0.0.1"


T = TypeVar("T")


def _build(cls: type[T], raw: Any, where: str) -> T:
    """Build dataclass `cls` from a mapping, checking keys and value types."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'top level'} must be a mapping")
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    for key in raw:
        if key not in known:
            raise ConfigError(f"{_join(where, str(key))}: unknown key")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        key = _join(where, name)
        default = getattr(cls(), name)  # dataclass defaults give the expected type
        if is_dataclass(default):
            values[name] = _build(type(default), value, key)
        elif isinstance(default, tuple):
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{key} must be a list of strings")
            values[name] = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{key} must be true or false")
            values[name] = value
        elif isinstance(default, int | float):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{key} must be a non-negative number")
            if isinstance(default, int) and not isinstance(value, int):
                raise ConfigError(f"{key} must be a whole number")
            values[name] = value
        else:  # str or optional str
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{key} must be a string")
            values[name] = value
    return cls(**values)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def parse_config(raw: Any) -> WorkerConfig:
    config = _build(WorkerConfig, raw, "")
    for server in config.gearman:
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"gearman: {server!r} is not HOST:PORT")
    if config.sink.chunk_documents < 1:
        raise ConfigError("sink.chunk_documents must be at least 1")
    if config.sink.concurrent_requests < 1:
        raise ConfigError("sink.concurrent_requests must be at least 1")
    if config.sink.build_index.startswith(config.sink.index_prefix):
        # Line searches run over index_prefix*: build records there would be hits.
        raise ConfigError(
            f"sink.build_index {config.sink.build_index!r} must not start with "
            f"sink.index_prefix {config.sink.index_prefix!r}"
        )
    if config.log_format not in LOG_FORMATS:
        raise ConfigError(f"log_format must be one of {', '.join(LOG_FORMATS)}")
    if config.metrics_port > 65535:
        raise ConfigError("metrics_port must be a port number (0 for no metrics endpoint)")
    if not config.metrics_address:
        raise ConfigError("metrics_address must be a host name or address")
    check_tls_files(config.gearman_tls)
    return config


def check_tls_files(tls: GearmanTLSConfig) -> None:
    """All three files or none, and each readable now: gear would otherwise fall back to
    plaintext (one missing) or fail on every reconnect attempt (one unreadable)."""
    paths = {name: getattr(tls, name) for name in ("key", "cert", "ca")}
    given = [name for name, path in paths.items() if path is not None]
    if not given:
        return
    for name, path in paths.items():
        key = f"gearman_tls.{name}"
        if path is None:
            raise ConfigError(f"{key} is missing: key, cert and ca go together")
        if not Path(path).is_file():
            raise ConfigError(f"{key}: {path}: no such file")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"{key}: {path}: not readable")


def check_sink_url(url: str) -> None:
    """What the engine clients would only find out at the first request, or would report
    with a traceback: an engine URL without a host or with a port that is no number."""
    kind, _, rest = url.partition("+")
    if kind not in ("elasticsearch", "opensearch") or not rest.startswith(("http:", "https:")):
        return  # the sink registry names every other mistake itself
    parts = urlsplit(rest)
    if not parts.hostname:
        raise ConfigError(f"sink URL {url!r}: no host (expected {kind}+http(s)://HOST:PORT)")
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError:
        raise ConfigError(f"sink URL {url!r}: the port is not a number") from None


def load_config(path: str | Path) -> WorkerConfig:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return parse_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
