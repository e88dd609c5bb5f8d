"""The push-log job: its arguments in, its answer out."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from dateutil.parser import isoparse

from worker.errors import JobError, one_line
from worker.fields import catalogue

FUNCTION_NAME = "push-log"

# Bounds on what a job may ask for. The whole arguments are checked before they are
# parsed; a field value or tag, and all of the fields and tags together, because every
# document of the file repeats them.
MAX_ARGUMENTS_BYTES = 1 << 20
MAX_VALUE_BYTES = 4 << 10
MAX_EVENT_BYTES = 64 << 10
JOB_KEYS = frozenset({"source_url", "retry", "event", "options", "build", "submitted_at", "size"})
EVENT_KEYS = frozenset({"fields", "tags", "@fields", "@tags"})  # @: older producers
# The index template's fields that are not single strings (worker/shipped/index-template.json).
LIST_FIELDS = frozenset({"build_hostids"})
NUMBER_FIELDS = frozenset({"error_pr"})
# The historical index's names (build_uuid, @version, ...); no dots: the engines read
# `a.b` as field b of an object a, which then conflicts with a keyword `a`.
FIELD_NAME = re.compile(r"[A-Za-z0-9@][A-Za-z0-9_@-]{0,127}")


@dataclass(frozen=True, slots=True)
class FileOptions:
    """Per-file choices made by the file rules and carried in the job."""

    format: str | None = None  # force a format; otherwise chosen by tags, then sniffed
    drop_debug: bool = False
    drop_xtrace: bool = False  # drop leading "+ " shell xtrace lines

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "options") -> FileOptions:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise JobError(f"{where} must be an object, got {type(raw).__name__}")
        _check_keys(raw, frozenset({"format", "drop_debug", "drop_xtrace"}), f"job {where}")
        fmt = raw.get("format")
        if fmt is not None and not isinstance(fmt, str):
            raise JobError(f"{where}.format must be a string")
        for key in ("drop_debug", "drop_xtrace"):
            if key in raw and not isinstance(raw[key], bool):
                raise JobError(f"{where}.{key} must be true or false")
        return cls(
            format=fmt,
            drop_debug=bool(raw.get("drop_debug", False)),
            drop_xtrace=bool(raw.get("drop_xtrace", False)),
        )

    def to_mapping(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}


@dataclass(frozen=True, slots=True)
class BuildTracking:
    """Lets workers tell when a whole build is indexed: the number of files submitted
    for it, and the rules that chose them."""

    files: int
    rules_digest: str = ""
    # One submission of the build: outcomes of an earlier run of the same build do not
    # count towards this one's completion.
    run_id: str = ""

    @classmethod
    def from_mapping(cls, raw: Any) -> BuildTracking | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise JobError("build must be an object")
        _check_keys(raw, frozenset({"files", "rules_digest", "run_id"}), "job build")
        files = raw.get("files")
        if not isinstance(files, int) or isinstance(files, bool) or files < 1:
            raise JobError("build.files must be a positive whole number")
        digest = raw.get("rules_digest", "")
        run_id = raw.get("run_id", "")
        if not isinstance(digest, str) or not isinstance(run_id, str):
            raise JobError("build.rules_digest and build.run_id must be strings")
        _check_size(digest, "job build.rules_digest")
        _check_size(run_id, "job build.run_id")
        return cls(files=files, rules_digest=digest, run_id=run_id)


@dataclass(frozen=True, slots=True)
class Job:
    source_url: str
    fields: dict[str, Any]
    tags: tuple[str, ...]
    retry: bool = False
    options: FileOptions = field(default_factory=FileOptions)
    build: BuildTracking | None = None
    submitted_at: float | None = None  # epoch seconds; gives the queue lag
    # Bytes as listed (zuul-manifest.json, a local tree): checks a body sent without
    # Content-Length, which a hang-up would otherwise cut short unnoticed.
    size: int | None = None

    @property
    def end_time(self) -> datetime | None:
        """The build's end, when the job's `build_end_time` field says it (UTC unless
        the value has an offset); None when absent or not a time."""
        end = self.fields.get("build_end_time")
        if not isinstance(end, str) or not end:
            return None
        try:
            parsed = isoparse(end)
        except (ValueError, OverflowError):
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def to_payload(self) -> bytes:
        payload: dict[str, Any] = {
            "source_url": self.source_url,
            "retry": self.retry,
            "event": {"fields": self.fields, "tags": list(self.tags)},
        }
        if self.options != FileOptions():
            payload["options"] = self.options.to_mapping()
        if self.build is not None:
            payload["build"] = asdict(self.build)
        if self.submitted_at is not None:
            payload["submitted_at"] = self.submitted_at
        if self.size is not None:
            payload["size"] = self.size
        return orjson.dumps(payload)


def parse_job(arguments: bytes) -> Job:
    """Read a push-log job's JSON arguments; accepts the legacy @fields/@tags keys.

    Everything a document would carry is checked here, so a bad job fails at once with
    its reason instead of indexing a file without its metadata (a misspelt key), with a
    megabyte on every line (an oversized value), or refused document by document by an
    engine (an object where a keyword goes).
    """
    if len(arguments) > MAX_ARGUMENTS_BYTES:
        raise JobError(
            f"job arguments are {len(arguments):,} bytes, more than {MAX_ARGUMENTS_BYTES:,}"
        )
    try:
        payload = orjson.loads(arguments)
    except orjson.JSONDecodeError as exc:
        raise JobError(f"job arguments are not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise JobError("job arguments must be a JSON object")
    _check_keys(payload, JOB_KEYS, "job")
    source_url = payload.get("source_url")
    if not isinstance(source_url, str) or not source_url:
        raise JobError("job has no source_url")
    _check_size(source_url, "job source_url")
    event = payload.get("event", {})
    if not isinstance(event, dict):
        raise JobError("job event must be an object")
    _check_keys(event, EVENT_KEYS, "job event")
    fields = _fields(event.get("fields", event.get("@fields", {})))
    tags = event.get("tags", event.get("@tags", []))
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise JobError("job event.tags must be a list of strings")
    for position, tag in enumerate(tags):
        _check_size(tag, f"job event.tags[{position}]")
    # Every document of the file carries these: bounded as a whole, not only per value.
    event_bytes = len(orjson.dumps([fields, tags]))
    if event_bytes > MAX_EVENT_BYTES:
        raise JobError(
            f"job event fields and tags are {event_bytes:,} bytes, more than {MAX_EVENT_BYTES:,}"
        )
    retry = payload.get("retry", False)
    if not isinstance(retry, bool):
        raise JobError("job retry must be true or false")
    submitted_at = payload.get("submitted_at")
    if submitted_at is not None and (
        isinstance(submitted_at, bool) or not isinstance(submitted_at, int | float)
    ):
        raise JobError("job submitted_at must be a number (epoch seconds)")
    size = payload.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise JobError("job size must be a whole number of bytes")
    return Job(
        source_url=source_url,
        fields=fields,
        tags=tuple(tags),
        retry=retry,
        options=FileOptions.from_mapping(payload.get("options")),
        build=BuildTracking.from_mapping(payload.get("build")),
        submitted_at=submitted_at,
        size=size,
    )


def _fields(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise JobError("job event.fields must be an object")
    for name, value in raw.items():
        valid = FIELD_NAME.fullmatch(name) is not None
        where = f"job event.fields.{name if valid else _shown(name)}"
        if not valid:
            raise JobError(
                f"{where}: a field name is 1 to 128 letters, digits, '_', '-' or '@', "
                "starting with a letter, a digit or '@' (a dot nests objects in the engines)"
            )
        alias_of = catalogue().aliases.get(name)
        if alias_of is not None:
            # The engines would refuse every document of the file.
            raise JobError(
                f"{where}: the index has this name as another name of {alias_of} (an "
                f"alias, which no document can set); send {alias_of} instead"
            )
        if name in LIST_FIELDS:
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise JobError(f"{where} must be a list of strings")
            for position, item in enumerate(value):
                _check_size(item, f"{where}[{position}]")
        elif name in NUMBER_FIELDS:
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise JobError(f"{where} must be a number, not {_json_type(value)}")
        elif isinstance(value, str):
            _check_size(value, where)
        elif value is not None and not isinstance(value, bool | int | float):
            raise JobError(
                f"{where} must be a string, number, true/false or null, not {_json_type(value)}"
            )
    return raw


def _check_keys(raw: dict[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        names = ", ".join(_shown(name) for name in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise JobError(
            f"{where} has unknown key(s) {names}{more} (known: {', '.join(sorted(known))})"
        )


def _check_size(text: str, where: str) -> None:
    size = len(text.encode(errors="replace"))
    if size > MAX_VALUE_BYTES:
        raise JobError(f"{where} is {size:,} bytes, more than {MAX_VALUE_BYTES:,}")


def _shown(name: str) -> str:
    """A key as a message names it: quoted, and short whatever it is."""
    return orjson.dumps(one_line(name, 64)).decode()


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "a number")


_JSON_TYPES: dict[type, str] = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "true/false",
    type(None): "null",
}


@dataclass(slots=True)
class JobSummary:
    """The answer of a finished job (WORK_COMPLETE data)."""

    source_url: str
    lines: int = 0  # lines read from the decompressed file
    documents: int = 0  # documents built (after grouping and dropping)
    indexed: int = 0  # documents the sink accepted
    dropped: int = 0  # lines dropped on purpose (DEBUG, xtrace per file rule)
    failed: int = 0  # documents the sink refused
    errors: list[str] = field(default_factory=list)  # first few refusal reasons
    decompressed_bytes: int = 0
    compressed_bytes: int = 0  # bytes received
    truncated_lines: int = 0
    truncated: str = ""  # why the file was not read to its end (a cap), or ""
    # False: read to its end, but that end was not checked against any length (no
    # Content-Length and no listed size), so a hang-up could have cut it short.
    length_verified: bool = True
    seconds: float = 0.0
    format: str = ""
    # Another, newer run of the file (a job resubmitted, or run again by a restarted
    # gearmand while this one still ran) wrote it and owns it: its outcome is the one
    # to record, not this run's.
    replaced_by_newer_run: bool = False

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes) -> JobSummary:
        return cls(**orjson.loads(data))
