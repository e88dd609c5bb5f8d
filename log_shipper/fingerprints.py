"""Failure fingerprints: a directory of elastic-recheck query files, one per known bug.

Each `<bug>.yaml` holds a mapping with `query` (Lucene query_string over the indexed
log lines) and optionally `suppress-graph`, `suppress-notification`,
`allow-nonvoting` (booleans) and `test_ids` (a list of test names). Whether a query
can run is decided by the sinks' own code: the query parser (worker.lucene) and the
SQLite translation (worker.sinks.sqlite_query) without a sink, the sink itself (a count)
with one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.config import load_yaml
from worker.errors import ConfigError, LogIndexerError, QueryError, one_line
from worker.sinks.base import Searcher
from worker.sinks.sqlite_query import translate

SUFFIX = ".yaml"
_FLAGS = {
    "suppress-graph": "suppress_graph",
    "suppress-notification": "suppress_notification",
    "allow-nonvoting": "allow_nonvoting",
}
KEYS = ("query", *_FLAGS, "test_ids")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    bug: str  # the file name without .yaml: the bug number
    path: Path
    query: str
    suppress_graph: bool = False
    suppress_notification: bool = False
    allow_nonvoting: bool = False
    test_ids: tuple[str, ...] = ()


@dataclass(slots=True)
class Loaded:
    files: int = 0  # query files read
    fingerprints: list[Fingerprint] = field(default_factory=list)  # those without problems
    problems: list[str] = field(default_factory=list)  # one line each, naming the file


def load_fingerprints(directory: str | Path) -> Loaded:
    """Every query file of `directory`, in bug order; a file with problems is left out
    and each of its problems said. No directory, or no query file in it, is a
    ConfigError."""
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"{directory}: not a directory of query files")
    paths = sorted(root.glob(f"*{SUFFIX}"))
    if not paths:
        raise ConfigError(f"{directory}: no *{SUFFIX} query files")
    loaded = Loaded(files=len(paths))
    for path in paths:
        fingerprint, problems = read_fingerprint(path)
        loaded.problems.extend(f"{path}: {problem}" for problem in problems)
        if fingerprint is not None:
            loaded.fingerprints.append(fingerprint)
    return loaded


def read_fingerprint(path: Path) -> tuple[Fingerprint | None, list[str]]:
    """One query file: the fingerprint if it has no problem, and its problems."""
    try:
        raw = load_yaml(path)
    except ConfigError as exc:
        return None, [str(exc).removeprefix(f"{path}: ")]
    if not isinstance(raw, dict):
        found = "an empty file" if raw is None else f"a {type(raw).__name__}"
        return None, [f"expected a mapping with a query key, found {found}"]
    problems = [f"unknown key {key!r} (known: {', '.join(KEYS)})" for key in raw if key not in KEYS]
    query = raw.get("query")
    if query is None:
        problems.append("no query")
    elif not isinstance(query, str) or not query.strip():
        problems.append(f"query must be a non-empty string, not {_kind(query)}")
    flags: dict[str, bool] = {}
    for key, name in _FLAGS.items():
        value = raw.get(key, False)
        if isinstance(value, bool):
            flags[name] = value
        else:
            problems.append(f"{key} must be true or false, not {_kind(value)}")
    test_ids = raw.get("test_ids", [])
    if not isinstance(test_ids, list) or not all(isinstance(t, str) for t in test_ids):
        problems.append(f"test_ids must be a list of strings, not {_kind(test_ids)}")
    if problems:
        return None, problems
    return Fingerprint(path.stem, path, str(query).strip(), test_ids=tuple(test_ids), **flags), []


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {one_line(repr(value), 60)}"


def sqlite_problems(fingerprints: Sequence[Fingerprint]) -> list[str]:
    """What the SQLite sink cannot run, by file, without opening one: a syntax its
    parser (worker.lucene) cannot read, a query nested too deeply for any sink, or what its
    translation does not support (the engines take full query_string syntax)."""
    problems = []
    for fingerprint in fingerprints:
        try:
            translate(fingerprint.query)  # parses it first
        except LogIndexerError as exc:
            problems.append(f"{fingerprint.path}: {one_line(str(exc))}")
    return problems


def sink_problems(fingerprints: Sequence[Fingerprint], sink: Searcher) -> list[str]:
    """Each query run once on `sink` (a count): what that sink refuses, by file. A sink
    that cannot be searched at all raises its SinkError: that is no query's fault."""
    problems = []
    for fingerprint in fingerprints:
        try:
            sink.count(fingerprint.query)
        except QueryError as exc:
            problems.append(f"{fingerprint.path}: {one_line(str(exc))}")
    return problems


def quoted(value: str) -> str:
    """`value` as a Lucene phrase: quotes and backslashes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_query(query: str, build_uuid: str, *, voting_only: bool) -> str:
    """`query` restricted to one build, and to voting builds unless told otherwise
    (elastic-recheck's `AND voting:1`)."""
    restricted = f"({query}) AND build_uuid:{quoted(build_uuid)}"
    return f"{restricted} AND voting:1" if voting_only else restricted


def restricted_query(fingerprint: Fingerprint, build_uuid: str) -> str:
    return build_query(fingerprint.query, build_uuid, voting_only=not fingerprint.allow_nonvoting)
