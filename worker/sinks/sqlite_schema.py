"""The SQLite sink's tables, and the query surface over them.

Tables (see sqlite_rows for what goes where):
- `file_keys`: one row per file key (the first part of every document id of a file);
- `fieldsets`: one row per distinct file part (the job's fields) and daily index;
- `lines`: one row per document, `seq` packing its file key's number and line number;
- `messages`: each distinct message once (`mid`), found by a hash of its text; one no
  line refers to any more is deleted with it;
- `documents_fts`: a contentless FTS5 index of the messages, rowid = messages.mid, kept
  in step by triggers;
- `build_files`, `builds`: build tracking (worker/builds.py).

Queries (sqlite_query) are compiled against the view `documents`, which gives every
document with the columns of the first schemas: seq, id, idx, timestamp, message, the
keyword and integer columns, tags (JSON array) and source (the whole document as JSON),
mid, the rowid of its message in documents_fts, and fs, its file's row of `fieldsets`
(whose columns of the same names a query may test once per file instead).
SQLite flattens the view into each query, joining a fieldsets row only where a query
asks for a file field.
"""

from __future__ import annotations

from worker.analysis import FTS_TOKENIZER
from worker.sinks.sqlite_query import INSTANCES, INTEGER_COLUMNS, KEYWORD_COLUMNS, VOCABULARY
from worker.sinks.sqlite_rows import FILE_KEYWORDS, LINE_COLUMNS, SLOT_BITS, WHOLE_ID_SLOT

SCHEMA_VERSION = 6
# The first version whose documents live in `lines`; older ones had a `documents` table
# holding each document's whole source, which prepare() moves into the new tables.
LINES_VERSION = 6

_FILE_FIELD_SET = frozenset(FILE_KEYWORDS)
# Subqueries rather than joins: SQLite reads them only for a query that uses the column
# (it keeps a join to a table unused by a count(*)).
_MESSAGE = "(SELECT text FROM messages WHERE mid = l.mid)"


def _file(column: str) -> str:
    """A column of the document's fieldsets row. Queries test file fields through
    documents.fs (see sqlite_query.FILE_COLUMNS); this is for what they return."""
    return f"(SELECT {column} FROM fieldsets WHERE fs = l.fs)"


# The lines columns that hold a field: all but seq, fs, extra and own.
_LINE_JSON_MEMBERS = ", ".join(
    f"'{'@timestamp' if name == 'timestamp' else name}', l.{name}" for name in LINE_COLUMNS[2:-3]
)
# The members of the line's columns: json_patch drops the NULLs (absent fields); the
# columns never hold a JSON null (a line with one keeps its fields in `own`).
_LINE_MEMBERS = (
    f"substr(rtrim(json_patch('{{}}', json_object({_LINE_JSON_MEMBERS}, 'message', {_MESSAGE})),"
    " '}'), 2)"
)
_SOURCE = (
    "'{' || coalesce(substr(l.own, 2, length(l.own) - 2), " + _LINE_MEMBERS + ")"
    f" || coalesce(',' || nullif({_file('members')}, ''), '') || coalesce(',' || l.extra, '')"
    " || '}'"
)
_KEY = f"(SELECT key FROM file_keys WHERE key_no = l.seq >> {SLOT_BITS})"
_ID = (
    f"CASE WHEN (l.seq & {WHOLE_ID_SLOT}) = {WHOLE_ID_SLOT} THEN {_KEY}"
    f" ELSE {_KEY} || '-' || (l.seq & {WHOLE_ID_SLOT}) END"
)

_VIEW = (
    "CREATE VIEW documents AS SELECT\n"
    "  l.seq AS seq,\n"
    "  l.fs AS fs,\n"
    f"  {_ID} AS id,\n"
    f"  {_file('idx')} AS idx,\n"
    "  l.timestamp AS timestamp,\n"
    f"  {_MESSAGE} AS message,\n"
    "  l.mid AS mid,\n"
    + "".join(
        f"  {_file(name) if name in _FILE_FIELD_SET else f'l.{name}'} AS {name},\n"
        for name in KEYWORD_COLUMNS
    )
    + "".join(f"  l.{name} AS {name},\n" for name in INTEGER_COLUMNS)
    + f"  {_file('tags')} AS tags,\n"
    f"  {_SOURCE} AS source\n"
    "FROM lines AS l"
)

_LINE_TYPES = {
    "seq": "INTEGER PRIMARY KEY",
    "fs": "INTEGER NOT NULL",
    "timestamp": "TEXT NOT NULL",
    "mid": "INTEGER",
    **{name: "INTEGER" for name in INTEGER_COLUMNS},
}

_DROP_ORPHAN = (
    "DELETE FROM messages WHERE mid = old.mid"
    " AND NOT EXISTS (SELECT 1 FROM lines WHERE mid = old.mid)"
)
# Messages in the FTS index go through one function (registered on every connection),
# so that an entry is deleted with exactly the text it was added with.
FTS_TEXT_FUNCTION = "log_fts_text"

SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS file_keys (key_no INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS fieldsets (\n"
    "  fs INTEGER PRIMARY KEY,\n"
    "  idx TEXT NOT NULL,\n"
    "  members TEXT NOT NULL,\n"
    + "".join(f"  {name} TEXT,\n" for name in FILE_KEYWORDS)
    + "  tags TEXT NOT NULL,\n"
    "  UNIQUE (idx, members)\n"
    ")",
    "CREATE INDEX IF NOT EXISTS fieldsets_build_file ON fieldsets (build_uuid, filename)",
    "CREATE TABLE IF NOT EXISTS lines (\n"
    + ",\n".join(f"  {name} {_LINE_TYPES.get(name, 'TEXT')}" for name in LINE_COLUMNS)
    + "\n)",
    "CREATE INDEX IF NOT EXISTS lines_timestamp ON lines (timestamp)",
    # By message and file: a fingerprint query (phrases AND file fields) is a seek per
    # message and file and a count of index entries, no row read.
    "CREATE INDEX IF NOT EXISTS lines_mid ON lines (mid, fs)",
    # By file: a query with no message term restricted to a build or file (classify's
    # error lines, the report's per build) reads that build's lines, not all of them:
    # 1.4 s -> 0.16 s for a build of 139k lines among 1.1 M, for 8 % of the database.
    "CREATE INDEX IF NOT EXISTS lines_fs ON lines (fs)",
    "CREATE TABLE IF NOT EXISTS messages (\n"
    "  mid INTEGER PRIMARY KEY,\n"
    "  hash INTEGER NOT NULL,\n"
    "  text TEXT NOT NULL\n"
    ")",
    "CREATE INDEX IF NOT EXISTS messages_hash ON messages (hash)",
    f"CREATE VIEW IF NOT EXISTS {_VIEW.removeprefix('CREATE VIEW ')}",
    # The FTS index holds index_text(message), Elasticsearch's standard analyzer's tokens,
    # under a tokenizer that keeps them whole (worker/analysis.py).
    "CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(message, content='',"
    f' tokenize="{FTS_TOKENIZER}")',
    # Its vocabulary, for wildcard and fuzzy terms (worker/sinks/sqlite_query.py).
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {VOCABULARY} USING fts5vocab(documents_fts, row)",
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {INSTANCES} USING fts5vocab(documents_fts, instance)",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN\n"
    "  INSERT INTO documents_fts (rowid, message)"
    f" VALUES (new.mid, {FTS_TEXT_FUNCTION}(new.text));\n"
    "END",
    "CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN\n"
    "  INSERT INTO documents_fts (documents_fts, rowid, message)"
    f" VALUES ('delete', old.mid, {FTS_TEXT_FUNCTION}(old.text));\n"
    "END",
    # A message goes with the last line that has it.
    "CREATE TRIGGER IF NOT EXISTS lines_message_delete AFTER DELETE ON lines"
    " WHEN old.mid IS NOT NULL BEGIN\n"
    f"  {_DROP_ORPHAN};\n"
    "END",
    "CREATE TRIGGER IF NOT EXISTS lines_message_update AFTER UPDATE OF mid ON lines"
    " WHEN old.mid IS NOT new.mid AND old.mid IS NOT NULL BEGIN\n"
    f"  {_DROP_ORPHAN};\n"
    "END",
    "CREATE TABLE IF NOT EXISTS build_files (\n"
    "  build_uuid TEXT NOT NULL,\n"
    "  filename TEXT NOT NULL,\n"
    "  outcome TEXT NOT NULL,\n"
    "  PRIMARY KEY (build_uuid, filename)\n"
    ")",
    "CREATE TABLE IF NOT EXISTS builds (build_uuid TEXT PRIMARY KEY, summary TEXT NOT NULL)",
)

# What a database of a version before LINES_VERSION has that the new layout replaces.
OLD_LAYOUT_DROPS: tuple[str, ...] = (
    "DROP TRIGGER IF EXISTS documents_fts_insert",
    "DROP TRIGGER IF EXISTS documents_fts_delete",
    "DROP TRIGGER IF EXISTS documents_fts_update",
    f"DROP TABLE IF EXISTS {VOCABULARY}",
    f"DROP TABLE IF EXISTS {INSTANCES}",
    "DROP TABLE IF EXISTS documents_fts",
    "ALTER TABLE documents RENAME TO documents_before_6",
)
OLD_DOCUMENTS = "SELECT id, idx, source FROM documents_before_6 ORDER BY seq"
OLD_DROP = "DROP TABLE documents_before_6"

# A document of an older run than the stored one's is not written (see FileRun);
# documents of no run (generation NULL) always are.
_VALUES = ", ".join(
    "(SELECT mid FROM messages WHERE hash = ? AND text = ?)" if name == "mid" else "?"
    for name in LINE_COLUMNS
)
UPSERT = (
    f"INSERT INTO lines ({', '.join(LINE_COLUMNS)}) VALUES ({_VALUES})"
    " ON CONFLICT (seq) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in LINE_COLUMNS[1:])
    + " WHERE excluded.generation IS NULL OR lines.generation IS NULL"
    " OR excluded.generation >= lines.generation"
)
INSERT_FIELDSET = (
    f"INSERT OR IGNORE INTO fieldsets (idx, members, {', '.join(FILE_KEYWORDS)}, tags)"
    f" VALUES ({', '.join('?' * (len(FILE_KEYWORDS) + 3))})"
)
# Each distinct message once; the hash only narrows the search, the text decides.
INSERT_MESSAGE = (
    "INSERT INTO messages (hash, text) SELECT ?1, ?2"
    " WHERE NOT EXISTS (SELECT 1 FROM messages WHERE hash = ?1 AND text = ?2)"
)
