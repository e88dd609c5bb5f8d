"""The embedded default sink: one SQLite file with an FTS5 index on `message`.

Layout (worker/sinks/sqlite_schema.py): each document a row of `lines` with its line's
own fields, the job's fields once per file in `fieldsets`, each distinct message once in
`messages` and the FTS index; queries see them as the view `documents`. Re-running a job
upserts by document id, so neither rows nor index entries are duplicated.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import orjson

from worker.analysis import index_text
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
from worker.sinks.sqlite_query import FILE_COLUMNS, SQL_FUNCTIONS, field_values, translate
from worker.sinks.sqlite_rows import (
    LINE_COLUMNS,
    WHOLE_ID_SLOT,
    FileRow,
    RowMaker,
    Unstorable,
    seq_of,
    split_id,
)
from worker.sinks.sqlite_schema import (
    FTS_TEXT_FUNCTION,
    INSERT_FIELDSET,
    INSERT_MESSAGE,
    LINES_VERSION,
    OLD_DOCUMENTS,
    OLD_DROP,
    OLD_LAYOUT_DROPS,
    SCHEMA,
    SCHEMA_VERSION,
    UPSERT,
)

# Errors that concern one row's data; anything else (locks, I/O, a full disk) is the
# database's problem and fails the whole write.
_ROW_ERRORS = (
    sqlite3.DataError,
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    OverflowError,
    UnicodeEncodeError,
)


def _fts_text(message: str | None) -> str | None:
    return None if message is None else index_text(message)


def _upsert(connection: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> int:
    """Store rows of `lines` (their messages first); how many were written."""
    messages = {row[_TEXT]: row[_HASH] for row in rows if row[_TEXT] is not None}
    connection.executemany(INSERT_MESSAGE, [(digest, text) for text, digest in messages.items()])
    return int(connection.executemany(UPSERT, rows).rowcount)


# Where a row of `lines` has its message's hash and text (the parameters of `mid`).
_HASH = LINE_COLUMNS.index("mid")
_TEXT = _HASH + 1

# The documents of one file: "<key>-<line number>" has a seq in this range (the
# whole-id slot, an id equal to the key, is past its end).
_OF_FILE = "seq >= ? AND seq < ?"

# A build summary's @timestamp (written by worker.builds.iso, so it compares as text).
_SUMMARY_TIME = "json_extract(summary, '$.\"@timestamp\"')"

# A pending row of `lines`: its file key, line slot, fieldsets row and other columns.
_Pending = tuple[str, int, FileRow, tuple[Any, ...]]


def _file_counts(condition: str, field: str) -> tuple[str, tuple[Any, ...]]:
    """Counts by a file field (sqlite_query.FILE_COLUMNS) or tags: documents are
    counted per file first, then each file's count goes to its values."""
    per_file = f"SELECT fs, count(*) AS n FROM documents WHERE {condition} GROUP BY fs"
    if field == "tags":
        # DISTINCT: a tag listed twice counts a document once.
        tagged = (
            f"SELECT DISTINCT per_file.fs, per_file.n, tag.value AS value FROM ({per_file})"
            " AS per_file JOIN fieldsets USING (fs), json_each(fieldsets.tags) AS tag"
        )
        return f"SELECT value AS exact_value, sum(n) AS hits FROM ({tagged}) GROUP BY value", ()
    return (
        f"SELECT fieldsets.{field} AS exact_value, sum(per_file.n) AS hits FROM ({per_file})"
        f" AS per_file JOIN fieldsets USING (fs) WHERE fieldsets.{field} IS NOT NULL"
        " GROUP BY exact_value",
        (),
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
        # Numbers of file keys and fieldsets rows, which are never deleted, so each is
        # looked up once per sink; filled from the _uncommitted_* ones at each commit.
        self._key_numbers: dict[str, int] = {}
        self._fieldset_numbers: dict[tuple[str, str], int] = {}
        self._uncommitted_keys: dict[str, int] = {}
        self._uncommitted_fieldsets: dict[tuple[str, str], int] = {}

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
            connection.create_function(FTS_TEXT_FUNCTION, 1, _fts_text, deterministic=True)
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
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
            else:
                self._key_numbers.update(self._uncommitted_keys)
                self._fieldset_numbers.update(self._uncommitted_fieldsets)
            finally:
                self._uncommitted_keys.clear()
                self._uncommitted_fieldsets.clear()

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
                        f"({SCHEMA_VERSION}); use a newer worker or another database file"
                    )
                old_layout = connection.execute(
                    "SELECT 1 FROM sqlite_schema WHERE name = 'documents' AND type = 'table'"
                ).fetchone()
                if old_layout:
                    for statement in OLD_LAYOUT_DROPS:
                        connection.execute(statement)
                else:
                    # Made again each time: it holds no data, and so a database gets the
                    # view of the worker that opens it.
                    connection.execute("DROP VIEW IF EXISTS documents")
                for statement in SCHEMA:
                    connection.execute(statement)
                if old_layout:
                    self._move_old_documents(connection)
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: cannot create schema: {exc}") from None
        self._prepared = True

    def _move_old_documents(self, connection: sqlite3.Connection) -> None:
        """A database of a version before LINES_VERSION: its documents, each stored
        whole, go into the tables of this one, in the same transaction."""
        maker = RowMaker()
        reader = connection.cursor()
        pending: list[_Pending] = []
        for document_id, index, source in reader.execute(OLD_DOCUMENTS):
            document = Document(index, document_id, orjson.loads(source))
            try:
                pending.append(self._pending(maker, document))
            except Unstorable as exc:
                raise SinkError(
                    f"{self.path}: document {document_id} of schema version "
                    f"< {LINES_VERSION} cannot be moved to version {SCHEMA_VERSION}: {exc}"
                ) from None
            if len(pending) >= self.config.chunk_documents:
                _upsert(connection, self._resolve(connection, pending))
                pending = []
        if pending:
            _upsert(connection, self._resolve(connection, pending))
        connection.execute(OLD_DROP)

    @staticmethod
    def _pending(maker: RowMaker, document: Document) -> _Pending:
        key, slot = split_id(document.id)
        return key, slot, maker.file_row(document), maker.line_values(document)

    def _resolve(
        self, connection: sqlite3.Connection, pending: list[_Pending]
    ) -> list[tuple[Any, ...]]:
        """The rows of `lines` for pending rows, inside the write transaction that
        stores them: file keys and fieldsets rows are added where missing. What the
        transaction adds is remembered once it has committed (see _writing)."""
        keys = self._key_numbers
        fieldsets = self._fieldset_numbers
        added_keys = self._uncommitted_keys
        added_fieldsets = self._uncommitted_fieldsets
        rows = []
        for key, slot, file, values in pending:
            key_number = keys.get(key) or added_keys.get(key)
            if key_number is None:
                connection.execute("INSERT OR IGNORE INTO file_keys (key) VALUES (?)", (key,))
                key_number = connection.execute(
                    "SELECT key_no FROM file_keys WHERE key = ?", (key,)
                ).fetchone()[0]
                added_keys[key] = key_number
            identity = file.identity
            fieldset = fieldsets.get(identity) or added_fieldsets.get(identity)
            if fieldset is None:
                connection.execute(INSERT_FIELDSET, (*identity, *file.keywords, file.tags))
                fieldset = connection.execute(
                    "SELECT fs FROM fieldsets WHERE idx = ? AND members = ?", identity
                ).fetchone()[0]
                added_fieldsets[identity] = fieldset
            rows.append((seq_of(key_number, slot), fieldset, *values))
        return rows

    def write(self, documents: Iterable[Document]) -> WriteResult:
        if not self._prepared:
            self.prepare()
        result = WriteResult()
        maker = RowMaker()
        chunk: list[_Pending] = []
        chunk_bytes = 0
        for document in documents:
            try:
                row = self._pending(maker, document)
            except Unstorable as exc:
                result.add_error(f"document {document.id}: {exc}")
                continue
            chunk.append(row)
            message = row[3][-3]
            chunk_bytes += len(message) if type(message) is str else 0
            if len(chunk) >= self.config.chunk_documents or chunk_bytes >= self.config.chunk_bytes:
                self._store(chunk, result)
                chunk = []
                chunk_bytes = 0
        if chunk:
            self._store(chunk, result)
        return result

    def _store(self, pending: list[_Pending], result: WriteResult) -> None:
        try:
            try:
                with self._writing() as connection:
                    rows = self._resolve(connection, pending)
                    written = _upsert(connection, rows)
            except _ROW_ERRORS:
                # Some row is bad: store the rest one by one so only that row is refused.
                self._store_each(pending, result)
                return
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: write failed: {exc}") from None
        result.indexed += written
        result.superseded += len(rows) - written

    def _store_each(self, pending: list[_Pending], result: WriteResult) -> None:
        stored = 0
        superseded = 0
        refused: list[str] = []
        with self._writing() as connection:
            rows = self._resolve(connection, pending)
            for (key, slot, _, _), row in zip(pending, rows, strict=True):
                try:
                    written = _upsert(connection, [row])
                except _ROW_ERRORS as exc:
                    document_id = key if slot == WHOLE_ID_SLOT else f"{key}-{slot}"
                    refused.append(f"document {document_id}: refused by SQLite: {exc}")
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
            # The hits first, then their sources: sorting carries only the sort keys.
            rows = connection.execute(
                "SELECT id, idx, source FROM documents WHERE seq IN"
                f" (SELECT seq FROM documents WHERE {condition.sql}"
                f" ORDER BY timestamp {order}, seq {order} LIMIT ?)"
                f" ORDER BY timestamp {order}, seq {order}",
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
        if field == "tags" or field in FILE_COLUMNS:
            sql, params = _file_counts(condition.sql, field)
        else:
            values = field_values(field)
            counted = "DISTINCT documents.seq" if values.repeats else "*"
            sql = (
                f"SELECT {values.value} AS exact_value, count({counted}) AS hits"
                f" FROM documents{values.joins}"
                f" WHERE ({condition.sql}) AND {values.value} IS NOT NULL GROUP BY exact_value"
            )
            params = values.params
        with self._reading() as connection:
            rows = connection.execute(
                f"{sql} ORDER BY hits DESC, exact_value LIMIT ?",
                (*params, *condition.params, size),
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
                    "DELETE FROM lines WHERE fs IN"
                    " (SELECT fs FROM fieldsets WHERE build_uuid = ? AND filename = ?)",
                    (build_uuid, filename),
                )
                return cursor.rowcount
        except sqlite3.Error as exc:
            raise SinkError(f"{self.path}: delete failed: {exc}") from None

    def begin_file(self, run: FileRun) -> FileRun:
        # Nothing to note: replace_file works in one transaction, which sees every commit.
        return run

    @staticmethod
    def _file_bounds(connection: sqlite3.Connection, run: FileRun) -> tuple[int, int] | None:
        """The seq range of the documents of the run's file ("<key>-<line>"), or None
        when no document of it was ever stored."""
        row = connection.execute(
            "SELECT key_no FROM file_keys WHERE key = ?", (run.key,)
        ).fetchone()
        if row is None:
            return None
        return seq_of(row[0], 0), seq_of(row[0], WHOLE_ID_SLOT)

    def replace_file(self, run: FileRun, written: WriteResult) -> Replaced:
        try:
            with self._writing() as connection:
                bounds = self._file_bounds(connection, run)
                if bounds is None:
                    check_complete(run, written, 0)
                    return Replaced(0)
                # One pass over the file's rows; a first run (the usual case) deletes none.
                older, newer, left = connection.execute(
                    "SELECT count(*) FILTER (WHERE generation IS NULL OR generation < ?),"
                    " count(*) FILTER (WHERE generation > ?),"
                    " count(*) FILTER (WHERE generation = ?)"
                    f" FROM lines WHERE {_OF_FILE}",
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
                    f"DELETE FROM lines WHERE {_OF_FILE}"
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
                bounds = self._file_bounds(connection, run)
                if bounds is None:
                    return 0
                return int(
                    connection.execute(
                        f"DELETE FROM lines WHERE {_OF_FILE}"
                        " AND (generation IS NULL OR generation <= ?)",
                        (*bounds, run.generation),
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
