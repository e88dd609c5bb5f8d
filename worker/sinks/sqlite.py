"""The embedded default sink: one SQLite file with an FTS5 index on `message`.

Layout: table `documents` (one row per document, well-known fields in columns, the whole
source as JSON so extra build fields survive) and `documents_fts`, an external-content FTS5
table that triggers keep in step with it. Re-running a job upserts by document id, so
neither rows nor index entries are duplicated.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import orjson

from worker.analysis import FTS_TOKENIZER, index_text
from worker.config import SinkConfig, parse_sink_url
from worker.documents import Document, FileRun
from worker.errors import ConfigError, QueryError, SinkError
from worker.sinks.base import (
    COUNTS_SIZE,
    Replaced,
    SearchResult,
    WriteResult,
    check_complete,
    check_counts_size,
    summary_window,
)
from worker.sinks.query_depth import MAX_QUERY_DEPTH
from worker.sinks.sqlite_query import (
    INSTANCES,
    INTEGER_COLUMNS,
    KEYWORD_COLUMNS,
    SQL_FUNCTIONS,
    VOCABULARY,
    field_values,
    translate,
)

SCHEMA_VERSION = 5
# Version 5 indexes index_text(message) instead of the message: an older database's
# FTS table and its triggers are made again, from the stored messages.
_FTS_OBJECTS = (
    "TRIGGER IF EXISTS documents_fts_insert",
    "TRIGGER IF EXISTS documents_fts_delete",
    "TRIGGER IF EXISTS documents_fts_update",
    "TABLE IF EXISTS documents_fts",
)
# Columns added since the first schema, with their type: prepare() adds them to a
# database made by an older worker, a keyword column (TEXT) filled from the documents'
# stored source, so a query on the field finds what the older worker wrote too. Adding
# one makes a new schema version: an older worker would write rows without it.
_ADDED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("generation", "INTEGER"),  # version 3
    ("global_request_id", "TEXT"),  # version 4
    ("instance", "TEXT"),  # version 4
)

# Columns filled from a document, in insert order.
_COLUMNS: tuple[str, ...] = (
    "id",
    "idx",
    "timestamp",
    "message",
    *KEYWORD_COLUMNS,
    *INTEGER_COLUMNS,
    "tags",
    "source",
)

# `seq` is an explicit INTEGER PRIMARY KEY because the FTS index refers to rows by rowid,
# and VACUUM may renumber rowids that no column pins down; `id` is the document key.
_SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS documents (\n"
    "  seq INTEGER PRIMARY KEY,\n"
    "  id TEXT NOT NULL UNIQUE,\n"
    "  idx TEXT NOT NULL,\n"
    "  timestamp TEXT NOT NULL,\n"
    "  message TEXT,\n"
    + "".join(f"  {name} TEXT,\n" for name in KEYWORD_COLUMNS)
    + "".join(f"  {name} INTEGER,\n" for name in INTEGER_COLUMNS)
    + "  tags TEXT NOT NULL DEFAULT '[]',\n"
    "  source TEXT NOT NULL\n"
    ")",
    "CREATE INDEX IF NOT EXISTS documents_build_file ON documents (build_uuid, filename)",
    "CREATE INDEX IF NOT EXISTS documents_timestamp ON documents (timestamp)",
    # The FTS index holds index_text(message), Elasticsearch's standard analyzer's tokens
    # (a function each connection registers), under a tokenizer that keeps them whole;
    # contentless, since that text is not a column of `documents`.
    "CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(message, content='',"
    f' tokenize="{FTS_TOKENIZER}")',
    # Its vocabulary, for wildcard and fuzzy terms (worker/sinks/sqlite_query.py).
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {VOCABULARY} USING fts5vocab(documents_fts, row)",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {INSTANCES} USING fts5vocab(documents_fts, instance)",
    "CREATE TRIGGER IF NOT EXISTS documents_fts_insert AFTER INSERT ON documents BEGIN\n"
    "  INSERT INTO documents_fts (rowid, message) VALUES (new.seq, index_text(new.message));\n"
    "END",
    # Fires for plain DELETEs and, with recursive_triggers on, for INSERT OR REPLACE.
    "CREATE TRIGGER IF NOT EXISTS documents_fts_delete AFTER DELETE ON documents BEGIN\n"
    "  INSERT INTO documents_fts (documents_fts, rowid, message)"
    " VALUES ('delete', old.seq, index_text(old.message));\n"
    "END",
    # A re-run job rewrites identical messages; skipping those keeps re-runs cheap.
    "CREATE TRIGGER IF NOT EXISTS documents_fts_update AFTER UPDATE OF seq, message ON documents"
    " WHEN old.seq IS NOT new.seq OR old.message IS NOT new.message BEGIN\n"
    "  INSERT INTO documents_fts (documents_fts, rowid, message)"
    " VALUES ('delete', old.seq, index_text(old.message));\n"
    "  INSERT INTO documents_fts (rowid, message) VALUES (new.seq, index_text(new.message));\n"
    "END",
    # Build tracking (worker/builds.py): one outcome per file, one summary per build.
    "CREATE TABLE IF NOT EXISTS build_files (\n"
    "  build_uuid TEXT NOT NULL,\n"
    "  filename TEXT NOT NULL,\n"
    "  outcome TEXT NOT NULL,\n"
    "  PRIMARY KEY (build_uuid, filename)\n"
    ")",
    "CREATE TABLE IF NOT EXISTS builds (build_uuid TEXT PRIMARY KEY, summary TEXT NOT NULL)",
)

# A document of an older run than the stored one's is not written (see FileRun);
# documents of no run (generation NULL) always are.
_UPSERT = (
    f"INSERT INTO documents ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS[1:])
    + " WHERE excluded.generation IS NULL OR documents.generation IS NULL"
    " OR excluded.generation >= documents.generation"
)
# The documents of one file: their ids start with its key and "-" ("." follows "-"),
# so the unique index on id finds them.
_OF_FILE = "id >= ? AND id < ?"

# A build summary's @timestamp (written by worker.builds.iso, so it compares as text).
_SUMMARY_TIME = "json_extract(summary, '$.\"@timestamp\"')"

# Errors that concern one row's data; anything else (locks, I/O, a full disk) is the
# database's problem and fails the whole write.
_ROW_ERRORS = (sqlite3.DataError, sqlite3.IntegrityError, sqlite3.InterfaceError, OverflowError)


class _Unstorable(Exception):
    pass


def _keyword(value: Any) -> str | None:
    # Same text an Elasticsearch keyword field would index for a scalar JSON value.
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None  # absent, or a list/object: only in `source`


def _fill_keyword(name: str) -> str:
    """The UPDATE that fills keyword column `name` from the stored source, with the
    text _keyword gives each kind of JSON value (lists and objects stay NULL)."""
    path = f"'$.{name}'"
    return (
        f"UPDATE documents SET {name} = CASE json_type(source, {path})"
        f" WHEN 'text' THEN json_extract(source, {path})"
        f" WHEN 'integer' THEN CAST(json_extract(source, {path}) AS TEXT)"
        f" WHEN 'real' THEN CAST(json_extract(source, {path}) AS TEXT)"
        " WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END"
        f" WHERE json_type(source, {path}) IS NOT NULL"
    )


def _fts_text(message: str | None) -> str | None:
    return None if message is None else index_text(message)


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _row(document: Document) -> tuple[Any, ...]:
    source = document.source
    timestamp = source.get("@timestamp")
    if not isinstance(timestamp, str) or not timestamp:
        raise _Unstorable("@timestamp is missing or not a string")
    tags = source.get("tags", [])
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise _Unstorable("tags is not a list of strings")
    try:
        encoded = orjson.dumps(source).decode()
        encoded_tags = orjson.dumps(tags).decode()
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise _Unstorable(f"not serialisable as JSON: {exc}") from None
    # Per document and per column: absent values and strings skip the function call.
    keywords = [
        value if value is None or type(value) is str else _keyword(value)
        for value in map(source.get, KEYWORD_COLUMNS)
    ]
    return (
        document.id,
        document.index,
        timestamp,
        _keyword(source.get("message")),
        *keywords,
        *[_integer(value) for value in map(source.get, INTEGER_COLUMNS)],
        encoded_tags,
        encoded,
    )


def _outcomes(connection: sqlite3.Connection, build_uuid: str) -> list[dict[str, Any]]:
    rows = connection.execute(
        "SELECT outcome FROM build_files WHERE build_uuid = ? ORDER BY filename", (build_uuid,)
    ).fetchall()
    return [orjson.loads(row[0]) for row in rows]


class SqliteSink:
    """Sink on a local SQLite file; safe for several threads of one process."""

    def __init__(self, path: str, config: SinkConfig) -> None:
        # Each thread opens its own connection, and each would get its own in-memory database.
        if not path or path == ":memory:":
            raise SinkError(f"sqlite sink needs a file path, got {path!r}")
        self.path = path
        self.config = config
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # SQLite admits one writer at a time anyway; queueing writer threads here is fairer
        # and cheaper than SQLite's sleep-and-retry busy handler.
        self._write_lock = threading.Lock()
        self._prepared = False
        self._closed = False

    @classmethod
    def from_url(cls, url: str, config: SinkConfig) -> SqliteSink:
        """`sqlite:PATH`, `sqlite:relative.db` or `sqlite:///abs/path`."""
        parsed = parse_sink_url(url)
        if parsed.kind != "sqlite":
            raise ConfigError(f"not a sqlite URL: {url!r} (expected sqlite:PATH)")
        return cls(parsed.target, config)

    # -- connections -------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise SinkError(f"{self.path}: sink is closed")
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        try:
            # close() runs on another thread than the one that opened the connection.
            connection = sqlite3.connect(
                self.path,
                timeout=self.config.request_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: cannot open SQLite database: {exc}") from None
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA recursive_triggers = ON")
            connection.execute("PRAGMA temp_store = MEMORY")
            connection.create_function("index_text", 1, _fts_text, deterministic=True)
            for name, (arguments, function) in SQL_FUNCTIONS.items():
                connection.create_function(name, arguments, function, deterministic=True)
        except sqlite3.Error as exc:
            connection.close()
            raise SinkError(f"{self.path}: cannot set up SQLite database: {exc}") from None
        with self._connections_lock:
            self._connections.append(connection)
        self._local.connection = connection
        return connection

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE so a lock conflict shows at BEGIN, not midway."""
        connection = self._connection()
        with self._write_lock:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One read transaction, so a count and its hits come from the same snapshot."""
        connection = self._connection()
        try:
            connection.execute("BEGIN")
            try:
                yield connection
            finally:
                if connection.in_transaction:
                    connection.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                raise SinkError(f"{self.path}: no documents table; nothing indexed here") from None
            if "parser stack overflow" in str(exc):
                # Nesting the translator keeps (groups AND/OR/NOT'd into each other) past
                # about 20 levels, less than the query_depth limit every sink has.
                raise QueryError(
                    "query nested too deeply for SQLite's SQL parser: use fewer levels of "
                    "parentheses and NOT inside each other (an Elasticsearch or OpenSearch "
                    f"sink takes up to {MAX_QUERY_DEPTH})"
                ) from None
            raise SinkError(f"{self.path}: query failed: {exc}") from None
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: query failed: {exc}") from None

    # -- Sink protocol -----------------------------------------------------------------

    def prepare(self) -> None:
        try:
            with self._writing() as connection:
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise SinkError(
                        f"{self.path}: schema version {version} is newer than this worker's "
                        f"({SCHEMA_VERSION})"
                    )
                if 0 < version < 5:
                    for kind_and_name in _FTS_OBJECTS:
                        connection.execute(f"DROP {kind_and_name}")
                for statement in _SCHEMA:
                    connection.execute(statement)
                if 0 < version < 5:
                    connection.execute(
                        "INSERT INTO documents_fts (rowid, message)"
                        " SELECT seq, index_text(message) FROM documents"
                    )
                present = {row[1] for row in connection.execute("PRAGMA table_info(documents)")}
                for name, kind in _ADDED_COLUMNS:
                    if name not in present:
                        connection.execute(f"ALTER TABLE documents ADD COLUMN {name} {kind}")
                        if kind == "TEXT":
                            connection.execute(_fill_keyword(name))
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: cannot create schema: {exc}") from None
        self._prepared = True

    def write(self, documents: Iterable[Document]) -> WriteResult:
        if not self._prepared:
            self.prepare()
        result = WriteResult()
        chunk: list[tuple[Any, ...]] = []
        chunk_bytes = 0
        for document in documents:
            try:
                row = _row(document)
            except _Unstorable as exc:
                result.add_error(f"document {document.id}: {exc}")
                continue
            chunk.append(row)
            chunk_bytes += len(row[-1])
            if len(chunk) >= self.config.chunk_documents or chunk_bytes >= self.config.chunk_bytes:
                self._store(chunk, result)
                chunk = []
                chunk_bytes = 0
        if chunk:
            self._store(chunk, result)
        return result

    def _store(self, rows: list[tuple[Any, ...]], result: WriteResult) -> None:
        try:
            try:
                with self._writing() as connection:
                    written = connection.executemany(_UPSERT, rows).rowcount
            except _ROW_ERRORS:
                # Some row is bad: store the rest one by one so only that row is refused.
                self._store_each(rows, result)
                return
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: write failed: {exc}") from None
        result.indexed += written
        result.superseded += len(rows) - written

    def _store_each(self, rows: list[tuple[Any, ...]], result: WriteResult) -> None:
        stored = 0
        superseded = 0
        refused: list[str] = []
        with self._writing() as connection:
            for row in rows:
                try:
                    written = connection.execute(_UPSERT, row).rowcount
                except _ROW_ERRORS as exc:
                    refused.append(f"document {row[0]}: refused by SQLite: {exc}")
                else:
                    stored += written
                    superseded += 1 - written
        result.indexed += stored
        result.superseded += superseded
        for reason in refused:
            result.add_error(reason)

    def refresh(self) -> None:
        # WAL readers already see every commit; a passive checkpoint only bounds the WAL.
        try:
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: checkpoint failed: {exc}") from None

    def count(self, query: str = "*") -> int:
        condition = translate(query)
        with self._reading() as connection:
            row = connection.execute(
                f"SELECT count(*) FROM documents WHERE {condition.sql}", condition.params
            ).fetchone()
        return int(row[0])

    def search(self, query: str, size: int = 10, *, oldest_first: bool = False) -> SearchResult:
        condition = translate(query)
        size = max(size, 0)
        order = "ASC" if oldest_first else "DESC"
        with self._reading() as connection:
            total = connection.execute(
                f"SELECT count(*) FROM documents WHERE {condition.sql}", condition.params
            ).fetchone()[0]
            rows = connection.execute(
                f"SELECT id, idx, source FROM documents WHERE {condition.sql}"
                f" ORDER BY timestamp {order}, seq {order} LIMIT ?",
                (*condition.params, size),
            ).fetchall()
        hits: list[dict[str, Any]] = []
        for document_id, index, source in rows:
            hit = orjson.loads(source)
            hit["_id"] = document_id
            hit["_index"] = index
            hits.append(hit)
        return SearchResult(total=int(total), hits=hits)

    def counts(self, query: str, field: str, size: int = COUNTS_SIZE) -> dict[str, int]:
        check_counts_size(size)
        condition = translate(query)
        values = field_values(field)
        counted = "DISTINCT documents.seq" if values.repeats else "*"
        with self._reading() as connection:
            rows = connection.execute(
                f"SELECT {values.value} AS exact_value, count({counted}) AS hits"
                f" FROM documents{values.joins}"
                f" WHERE ({condition.sql}) AND {values.value} IS NOT NULL"
                " GROUP BY exact_value ORDER BY hits DESC, exact_value LIMIT ?",
                (*values.params, *condition.params, size),
            ).fetchall()
        return {str(value): int(hits) for value, hits in rows}

    def builds(self, since: str, until: str) -> list[dict[str, Any]]:
        if not self._prepared:
            self.prepare()
        start, end = summary_window(since, until)
        with self._reading() as connection:
            rows = connection.execute(
                f"SELECT summary FROM builds WHERE {_SUMMARY_TIME} >= ? AND {_SUMMARY_TIME} < ?"
                f" ORDER BY {_SUMMARY_TIME}, build_uuid",
                (start, end),
            ).fetchall()
        return [orjson.loads(row[0]) for row in rows]

    def record_file(self, outcome: dict[str, Any]) -> list[dict[str, Any]]:
        if not self._prepared:
            self.prepare()
        build_uuid = str(outcome["build_uuid"])
        try:
            with self._writing() as connection:
                connection.execute(
                    "INSERT OR REPLACE INTO build_files VALUES (?, ?, ?)",
                    (build_uuid, str(outcome["filename"]), orjson.dumps(outcome).decode()),
                )
                return _outcomes(connection, build_uuid)
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: recording a file outcome failed: {exc}") from None

    def file_outcomes(self, build_uuid: str) -> list[dict[str, Any]]:
        if not self._prepared:
            self.prepare()
        with self._reading() as connection:
            return _outcomes(connection, build_uuid)

    def put_build(self, summary: dict[str, Any]) -> None:
        try:
            with self._writing() as connection:
                connection.execute(
                    "INSERT OR REPLACE INTO builds VALUES (?, ?)",
                    (str(summary["build_uuid"]), orjson.dumps(summary).decode()),
                )
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: storing a build summary failed: {exc}") from None

    def get_build(self, build_uuid: str) -> dict[str, Any] | None:
        if not self._prepared:
            self.prepare()
        with self._reading() as connection:
            row = connection.execute(
                "SELECT summary FROM builds WHERE build_uuid = ?", (build_uuid,)
            ).fetchone()
        if row is None:
            return None
        summary: dict[str, Any] = orjson.loads(row[0])
        return summary

    def delete_file(self, build_uuid: str, filename: str) -> int:
        """Remove every document of one file of one build; returns how many."""
        if not build_uuid:
            # Without a build uuid, filename alone would hit every build's copy of the file.
            raise SinkError("delete_file needs a build_uuid")
        try:
            with self._writing() as connection:
                cursor = connection.execute(
                    "DELETE FROM documents WHERE build_uuid = ? AND filename = ?",
                    (build_uuid, filename),
                )
                return cursor.rowcount
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: delete failed: {exc}") from None

    def begin_file(self, run: FileRun) -> FileRun:
        # Nothing to note: replace_file works in one transaction, which sees every commit.
        return run

    def replace_file(self, run: FileRun, written: WriteResult) -> Replaced:
        bounds = (f"{run.key}-", f"{run.key}.")
        try:
            with self._writing() as connection:
                # One pass over the file's rows; a first run (the usual case) deletes none.
                older, newer, left = connection.execute(
                    "SELECT count(*) FILTER (WHERE generation IS NULL OR generation < ?),"
                    " count(*) FILTER (WHERE generation > ?),"
                    " count(*) FILTER (WHERE generation = ?)"
                    f" FROM documents WHERE {_OF_FILE}",
                    (run.generation, run.generation, run.generation, *bounds),
                ).fetchone()
                if not newer:
                    check_complete(run, written, left)
                    if not older:
                        return Replaced(0)
                # A newer run that has written the file owns it (see EngineSink): this
                # run's documents go too.
                stale = "<=" if newer else "<"
                removed = connection.execute(
                    f"DELETE FROM documents WHERE {_OF_FILE}"
                    f" AND (generation IS NULL OR generation {stale} ?)",
                    (*bounds, run.generation),
                ).rowcount
                return Replaced(int(removed), by_newer_run=bool(newer))
        except sqlite3.Error as exc:
            raise SinkError(
                f"{self.path}: replacing the documents of {run.filename} failed: {exc}"
            ) from None

    def discard_file(self, run: FileRun) -> int:
        try:
            with self._writing() as connection:
                return int(
                    connection.execute(
                        f"DELETE FROM documents WHERE {_OF_FILE}"
                        " AND (generation IS NULL OR generation <= ?)",
                        (f"{run.key}-", f"{run.key}.", run.generation),
                    ).rowcount
                )
        except sqlite3.Error as exc:
            raise SinkError(
                f"{self.path}: removing the documents of {run.filename} failed: {exc}"
            ) from None

    def stop_waiting(self) -> None:
        # Nothing waits for long here: a locked database is waited for at most
        # sink.request_timeout (the connection's busy timeout).
        pass

    def close(self) -> None:
        with self._connections_lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for connection in connections:
            # Only planner statistics: a failure must not keep the connection open.
            with suppress(sqlite3.Error):
                connection.execute("PRAGMA optimize")
            connection.close()
