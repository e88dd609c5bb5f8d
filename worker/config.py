"""Worker configuration: parsed once from YAML into typed objects, validated at start-up.

Every error names the offending key (e.g. "worker.yaml: fetch.read_timeout must be a
positive number"), so an operator can fix it without reading code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import SplitResult, unquote, urlsplit

import yaml

from worker.errors import ConfigError
from worker.logs import LOG_FORMATS
from worker.redact import RedactConfig, mask_url, parse_redact_config

MiB = 1024 * 1024


# Marks a number for which zero means nothing useful (a size, a timeout, a count of
# things to hold at once): `_build` then refuses 0 as well as negative values.
POSITIVE: Mapping[str, bool] = {"positive": True}


def _positive(default: float) -> Any:
    return field(default=default, metadata=POSITIVE)


# A whole number that may also be left unset (None): `_build` takes its type from here,
# as None says nothing of it.
OPTIONAL_COUNT: Mapping[str, bool] = {"optional_count": True}


@dataclass(frozen=True, slots=True)
class FetchConfig:
    allow: tuple[str, ...] = ()  # URL prefixes (or local directories) that may be fetched
    allow_local: bool = False  # local paths: only for the all-in-one `log-shipper index`
    connect_timeout: float = _positive(10.0)
    read_timeout: float = _positive(60.0)
    retries: int = 3  # on connection errors and 5xx, before the first byte is read
    # A whole file, from the first request to its last byte: sized for max_compressed_bytes
    # (1 GiB) at about 300 KB/s. read_timeout alone cannot catch a server that keeps
    # sending a few bytes a second.
    max_seconds: float = _positive(3600.0)
    # Slower than this over any rate_window seconds of one transfer, the file fails
    # (0: no minimum).
    min_bytes_per_second: float = 1024.0
    rate_window: float = _positive(60.0)
    backoff: float = 1.0  # seconds, doubled after each retry
    # A body broken off mid-transfer (the server reset or closed the connection, as one
    # does to a connection left unread while the sink held the worker up) is read again
    # from the start this many times, each read a new run of the file.
    reread_attempts: int = 2
    max_compressed_bytes: int = _positive(1024 * MiB)
    max_decompressed_bytes: int = _positive(16 * 1024 * MiB)
    max_line_bytes: int = _positive(64 * 1024)
    # Past ratio_after_bytes decompressed, reading stops (the file is marked truncated)
    # once the data is more than this many times the bytes received. Real CI logs
    # compress 3x to 30x; a gzip bomb of repeated lines, about 1000x.
    max_decompression_ratio: float = _positive(100.0)
    ratio_after_bytes: int = 64 * MiB
    chunk_bytes: int = _positive(256 * 1024)
    ca_certs: str | None = None


@dataclass(frozen=True, slots=True)
class ParseConfig:
    max_event_lines: int = _positive(500)  # cap on lines grouped into one multi-line event
    lookahead_lines: int = 2000  # lines searched for a first timestamp before falling back
    # Lines read from one file, so documents too; the rest is not read and the file is
    # marked truncated ("lines cap N reached").
    max_lines: int = _positive(1_000_000)


@dataclass(frozen=True, slots=True)
class SinkConfig:
    url: str = "sqlite:./logs.db"
    index_prefix: str = "logstash-"
    build_index: str = "ci-log-builds"  # outside index_prefix*, so line searches skip it
    install_template: bool = True
    username: str | None = None
    # Secrets stay out of reprs; `*_file` names a file they are read from at load time.
    password: str | None = field(default=None, repr=False)
    password_file: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_file: str | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    chunk_documents: int = _positive(2000)
    chunk_bytes: int = _positive(8 * MiB)
    # Bulk requests one worker process keeps in flight at most (engine sinks): fewer
    # while the engine rejects requests for load (worker/sinks/pressure.py).
    concurrent_requests: int = _positive(2)
    # How long a request waits for an engine that does not answer or is overloaded,
    # from its first failure, before the job fails with EngineOutage (engine sinks).
    outage_seconds: float = _positive(600.0)
    # Waits between attempts: random up to backoff * 2^n seconds, at most max_backoff.
    backoff: float = _positive(0.5)
    max_backoff: float = _positive(30.0)
    request_timeout: float = _positive(120.0)
    # Copies of each shard besides its primary, for the log indices (in the installed
    # template) and the build index; unset, the template's own setting (0) and 0. On a
    # cluster, 1 keeps every document and build record through the loss of a node.
    replicas: int | None = field(default=None, metadata=OPTIONAL_COUNT)


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
    redact: RedactConfig = field(default_factory=RedactConfig)
    log_format: str = "text"  # text | json
    metrics_port: int = 0  # Prometheus endpoint; 0 for none
    metrics_address: str = "127.0.0.1"


T = TypeVar("T")

# Keys of earlier versions, with what replaced them: a configuration still giving one
# is told what to write instead, rather than "unknown key".
RETIRED: Mapping[str, str] = {
    "sink.max_retries": "requests are retried for up to sink.outage_seconds (default 600)",
}


def _build(cls: type[T], raw: Any, where: str, env: Mapping[str, str]) -> T:
    """Build dataclass `cls` from a mapping, checking keys, value types and ranges;
    `${VAR}` in strings is replaced from `env`."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'top level'} must be a mapping")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    for key in raw:
        if key not in known:
            name = _join(where, str(key))
            if name in RETIRED:
                raise ConfigError(f"{name}: no longer used: {RETIRED[name]}")
            raise ConfigError(f"{name}: unknown key")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        key = _join(where, name)
        default = getattr(cls(), name)  # dataclass defaults give the expected type
        if is_dataclass(default):
            values[name] = _build(type(default), value, key, env)
        elif "optional_count" in known[name].metadata:
            values[name] = None if value is None else _number(value, key, 0, positive=False)
        elif isinstance(default, tuple):
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{key} must be a list of strings")
            values[name] = tuple(_expand(v, key, env) for v in value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{key} must be true or false")
            values[name] = value
        elif isinstance(default, int | float):
            values[name] = _number(value, key, default, positive="positive" in known[name].metadata)
        else:  # str or optional str
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{key} must be a string")
            values[name] = None if value is None else _expand(value, key, env)
    return cls(**values)


def _number(value: Any, key: str, default: float, *, positive: bool) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (value <= 0 if positive else value < 0)
    ):
        raise ConfigError(f"{key} must be a {'positive' if positive else 'non-negative'} number")
    if isinstance(default, int) and not isinstance(value, int):
        raise ConfigError(f"{key} must be a whole number")
    return value


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: str, key: str, env: Mapping[str, str]) -> str:
    """`${NAME}` replaced by the environment variable NAME, so that secrets need not be
    written into the file; an unset variable is an error, not an empty string."""

    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(f"{key}: environment variable {name} is not set")
        return env[name]

    return _VARIABLE.sub(variable, value)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def parse_config(raw: Any, env: Mapping[str, str] | None = None) -> WorkerConfig:
    """The configuration in `raw` (parsed YAML); `${VAR}` is looked up in `env`
    (default: the process environment) and `sink.*_file` secrets are read now."""
    redact = None
    if isinstance(raw, dict) and "redact" in raw:
        # Its rules are mappings with patterns: read by worker.redact, compiled now.
        raw = dict(raw)
        redact = raw.pop("redact")
    config = _build(WorkerConfig, raw, "", os.environ if env is None else env)
    config = replace(config, redact=parse_redact_config(redact))
    for server in config.gearman:
        try:
            split_address(server)
        except ConfigError as exc:
            raise ConfigError(f"gearman: {exc}") from None
    try:
        parse_sink_url(config.sink.url)
    except ConfigError as exc:
        raise ConfigError(f"sink.url: {exc}") from None
    config = replace(config, sink=read_secret_files(config.sink))
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


def split_address(address: str) -> tuple[str, int]:
    """A Gearman server's HOST:PORT (an IPv6 host in brackets) as (host, port): the one
    reader of these addresses, for the configuration, the workers and the hook alike."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ConfigError(f"{address!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


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


def read_secret_files(sink: SinkConfig) -> SinkConfig:
    """`sink` with `password_file` and `api_key_file` read into `password` and `api_key`."""
    secrets: dict[str, Any] = {}
    for name in ("password", "api_key"):
        path = getattr(sink, f"{name}_file")
        if path is None:
            continue
        key = f"sink.{name}_file"
        if getattr(sink, name) is not None:
            raise ConfigError(f"{key}: sink.{name} is given too; give one of them")
        try:
            secret = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(f"{key}: {path}: cannot read: {why}") from None
        if not secret:
            raise ConfigError(f"{key}: {path}: is empty")
        secrets[name] = secret
    return replace(sink, **secrets) if secrets else sink


SINK_KINDS = ("sqlite", "elasticsearch", "opensearch")
_ENGINE_TRANSPORTS = ("http", "https")
# How sink URLs are spelled: in their errors and in the help of every --sink.
SINK_URL_FORMS = "sqlite:PATH, elasticsearch+http(s)://HOST:PORT or opensearch+http(s)://HOST:PORT"


@dataclass(frozen=True, slots=True)
class SinkURL:
    """A sink URL taken apart: `sqlite:PATH` or
    `KIND+http(s)://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...][/PATH]`: several nodes of
    one cluster, which the engine's client fails over between."""

    kind: str  # one of SINK_KINDS
    target: str  # the SQLite path (~ expanded), or the engine's http(s) URL without credentials
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    others: tuple[str, ...] = ()  # the URLs of the cluster's further nodes, as `target`

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.target, *self.others)


def parse_sink_url(url: str) -> SinkURL:
    """The one reading of a sink URL, for the command line and the configuration alike:
    every mistake is a ConfigError naming it (credentials masked), before anything is
    opened."""

    def problem(what: str) -> ConfigError:
        return ConfigError(f"sink URL {mask_url(url)!r}: {what} (expected {SINK_URL_FORMS})")

    scheme, colon, rest = url.partition(":")
    if not colon or not scheme:
        raise problem("no scheme")
    kind, plus, transport = scheme.partition("+")
    if kind not in SINK_KINDS:
        raise problem(f"unknown sink kind {kind!r}")
    if kind == "sqlite":
        if plus:
            raise problem("sqlite takes a path, not a transport")
        path = rest.removeprefix("//")
        if not path:
            raise problem("no path")
        if path == ":memory:":
            raise problem("an in-memory database is not shared by the workers: give a file")
        return SinkURL(kind, os.path.expanduser(path))
    if not plus:
        raise problem(f"missing +http or +https after {kind}")
    if transport not in _ENGINE_TRANSPORTS:
        raise problem(f"unknown transport {transport!r}")
    if not rest.startswith("//"):
        raise problem("no //HOST:PORT")
    parts = urlsplit(url.partition("+")[2])
    hosts = parts.netloc.rpartition("@")[2].split(",")
    targets = []
    for host in hosts:
        node = parts._replace(netloc=host)
        try:
            targets.append(_node_url(node))
        except ConfigError as exc:
            raise problem(f"host {host!r}: {exc}" if len(hosts) > 1 else str(exc)) from None
    username = None if parts.username is None else unquote(parts.username)
    password = None if parts.password is None else unquote(parts.password)
    return SinkURL(kind, targets[0], username, password, tuple(targets[1:]))


def _node_url(node: SplitResult) -> str:
    """One engine node's URL (no credentials), which must have a host and a port; the
    ConfigError says what is wrong, for parse_sink_url to name the URL."""
    if not node.hostname:
        raise ConfigError("no host")
    try:
        port = node.port
    except ValueError:
        port_text = node.netloc.rpartition(":")[2]
        raise ConfigError(f"port {port_text!r} is not a number from 1 to 65535") from None
    if port is None:
        raise ConfigError("no port")
    if port == 0:
        raise ConfigError("port 0 is not a port to connect to")
    return node.geturl().rstrip("/")


def load_yaml(path: str | Path) -> Any:
    """A YAML file's content; an unreadable or malformed file is a ConfigError naming
    the file and, for a syntax error, the line and column."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: cannot read: not UTF-8 text") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(exc)}") from None


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's error in one line: its own text spans several and names
    "<unicode string>", not the file (which the caller names)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        what = exc.problem or exc.context or "syntax error"
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            return f"{what} at line {mark.line + 1}, column {mark.column + 1}"
        return what
    first = str(exc).strip().splitlines()
    return first[0] if first else "syntax error"


def load_config(path: str | Path) -> WorkerConfig:
    raw = load_yaml(path)
    try:
        return parse_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
