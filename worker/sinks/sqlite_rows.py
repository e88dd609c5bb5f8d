"""How the SQLite sink lays a document out in rows (the functional core of its storage).

A document is split in two parts by field name:
- its file part: the job's fields every document of a file shares (build and job fields,
  filename, tags, the fields only the job sets) and the daily index name, stored once
  per distinct value in table `fieldsets`;
- its line part: the line's own fields (@timestamp, message, line_number, the parsed
  fields, the run's generation), one row of table `lines`, the well-known ones in their
  own columns and the others as JSON object members.

Field names of the two parts never overlap, so the source is their members joined (the
view `documents` in sqlite_schema does that). A row's key packs the document id: the
file key it starts with (a small integer, table `file_keys`) and the line number.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import orjson

from worker.documents import Document, FileFields
from worker.sinks.sqlite_query import FILE_KEYWORD_COLUMNS, INTEGER_COLUMNS, LINE_KEYWORD_COLUMNS

FILE_KEYWORDS = FILE_KEYWORD_COLUMNS
LINE_KEYWORDS = LINE_KEYWORD_COLUMNS
# Fields of the file part; each is a column of `fieldsets` (tags as a JSON array).
FILE_NAMES = frozenset(FILE_KEYWORDS) | {"tags"}
# Fields with a column of `lines`, in the column order of LINE_COLUMNS after seq, fs.
_LINE_FIELDS: tuple[str, ...] = (
    "@timestamp",
    *INTEGER_COLUMNS,
    *LINE_KEYWORDS,
    "message",
)
LINE_NAMES = frozenset(_LINE_FIELDS)
_POSITION = {name: position for position, name in enumerate(_LINE_FIELDS)}
_INTEGERS = frozenset(INTEGER_COLUMNS)
_TYPE_OF = {name: int if name in _INTEGERS else str for name in _LINE_FIELDS}
# Columns of `lines`: `mid` is the message's row of table `messages` (each distinct
# message is stored, and indexed, once: CI logs repeat lines within a file and from
# build to build); `extra` holds the line's other fields as JSON members; `own` the
# whole line part as a JSON object when a column could not give its value back exactly
# (a number in a keyword field, a JSON null): then the columns are only for queries.
LINE_COLUMNS: tuple[str, ...] = (
    "seq",
    "fs",
    "timestamp",
    *INTEGER_COLUMNS,
    *LINE_KEYWORDS,
    "mid",
    "extra",
    "own",
)

# The line slot of an id that is not "<file key>-<line number>": the id is its key.
WHOLE_ID_SLOT = 2**32 - 1
SLOT_BITS = 32


class Unstorable(Exception):
    """A document that cannot be stored; the message says why."""


def keyword(value: Any) -> str | None:
    """The text an Elasticsearch keyword field indexes for a scalar JSON value."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None  # absent, or a list/object: only in the source


def integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def split_id(document_id: str) -> tuple[str, int]:
    """(file key, line slot) of a document id."""
    key, dash, suffix = document_id.rpartition("-")
    if (
        dash
        and suffix.isascii()
        and suffix.isdigit()
        and (suffix[0] != "0" or suffix == "0")
        and len(suffix) <= 10
    ):
        slot = int(suffix)
        if slot < WHOLE_ID_SLOT:
            return key, slot
    return document_id, WHOLE_ID_SLOT


def seq_of(key_number: int, slot: int) -> int:
    return (key_number << SLOT_BITS) | slot


@dataclass(frozen=True, slots=True)
class FileRow:
    """One row of `fieldsets`: (idx, members) is its identity."""

    idx: str
    members: str  # the file part's JSON object members, "" when none
    keywords: tuple[str | None, ...]  # FILE_KEYWORDS' column values
    tags: str  # JSON array

    @property
    def identity(self) -> tuple[str, str]:
        return self.idx, self.members


def _tags(value: Any) -> list[str]:
    tags = [value] if isinstance(value, str) else value
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise Unstorable("tags is not a list of strings")
    return tags


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise Unstorable(f"not serialisable as JSON: {exc}") from None


def file_row(idx: str, part: dict[str, Any]) -> FileRow:
    tags = _tags(part.get("tags", []))
    return FileRow(
        idx,
        _dumps(part)[1:-1].decode(),
        tuple(keyword(part.get(name)) for name in FILE_KEYWORDS),
        orjson.dumps(tags).decode(),
    )


@dataclass(frozen=True, slots=True)
class _FileSplit:
    file: FileFields  # kept so that its id() stays this object's while cached
    part: dict[str, Any]  # its fields of the file part
    carried: dict[str, Any]  # its fields with a line column (a job field "host", say)
    exact: bool  # each carried field has its column's type


class RowMaker:
    """Splits the documents of one write; what is per file is worked out once per file."""

    def __init__(self) -> None:
        self._splits: dict[int, _FileSplit] = {}
        self._file_rows: dict[tuple[int, str], FileRow] = {}

    def _split(self, file: FileFields) -> _FileSplit:
        split = self._splits.get(id(file))
        if split is None:
            fields = file.fields
            part = {name: value for name, value in fields.items() if name not in LINE_NAMES}
            carried = {name: value for name, value in fields.items() if name in LINE_NAMES}
            exact = all(type(value) is _TYPE_OF[name] for name, value in carried.items())
            split = self._splits[id(file)] = _FileSplit(file, part, carried, exact)
        return split

    def file_row(self, document: Document) -> FileRow:
        own = document.fields
        split = self._split(document.file)
        if FILE_NAMES.isdisjoint(own):
            cache_key = (id(document.file), document.index)
            row = self._file_rows.get(cache_key)
            if row is None:
                row = self._file_rows[cache_key] = file_row(document.index, split.part)
            return row
        # A document carrying job fields itself (built whole, or a parsed field named
        # like a job field): its file part is its own.
        ours = {name: value for name, value in own.items() if name in FILE_NAMES}
        return file_row(document.index, {**split.part, **ours})

    def line_values(self, document: Document) -> tuple[Any, ...]:
        """The columns of `lines` after seq and fs, the message as its hash and text
        (the `mid` column is looked up by them, see sqlite_schema.UPSERT)."""
        own = document.fields
        split = self._split(document.file)
        if not FILE_NAMES.isdisjoint(own):
            own = {name: value for name, value in own.items() if name not in FILE_NAMES}
        values = [own.get(name) for name in _LINE_FIELDS]
        for name, value in split.carried.items():
            if name not in own:
                values[_POSITION[name]] = value
        timestamp = values[0]
        if not isinstance(timestamp, str) or not timestamp:
            raise Unstorable("@timestamp is missing or not a string")
        # Exact: each column gives its field back as it was (not so a JSON null, or a
        # number in a keyword field).
        exact = split.exact
        for name, value in own.items():
            kind = _TYPE_OF.get(name)
            if kind is not None and type(value) is not kind:
                exact = False
                break
        if not exact:
            whole = {**split.carried, **own}
            columns = [
                integer(value) if name in _INTEGERS else keyword(value)
                for name, value in zip(_LINE_FIELDS, values, strict=True)
            ]
            return (*columns[:-1], *_message(keyword(values[-1])), None, _dumps(whole).decode())
        message: str | None = values[-1]
        extra = None
        if not LINE_NAMES.issuperset(own):
            rest = {name: value for name, value in own.items() if name not in LINE_NAMES}
            extra = _dumps(rest)[1:-1].decode()
        return (*values[:-1], *_message(message), extra, None)


def _message(text: str | None) -> tuple[int | None, str | None]:
    """The message's hash (which finds its row of `messages`) and text."""
    if text is None:
        return None, None
    try:
        return zlib.crc32(text.encode()), text
    except UnicodeEncodeError:
        raise Unstorable("message is not valid Unicode text") from None
