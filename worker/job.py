"""The push-log job: its arguments in, its answer out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from worker.errors import JobError

FUNCTION_NAME = "push-log"


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
        unknown = set(raw) - {"format", "drop_debug", "drop_xtrace"}
        if unknown:
            raise JobError(f"{where}: unknown option(s) {', '.join(sorted(unknown))}")
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
        files = raw.get("files")
        if not isinstance(files, int) or isinstance(files, bool) or files < 1:
            raise JobError("build.files must be a positive whole number")
        digest = raw.get("rules_digest", "")
        run_id = raw.get("run_id", "")
        if not isinstance(digest, str) or not isinstance(run_id, str):
            raise JobError("build.rules_digest and build.run_id must be strings")
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
    """Read a push-log job's JSON arguments; accepts the legacy @fields/@tags keys."""
    try:
        payload = orjson.loads(arguments)
    except orjson.JSONDecodeError as exc:
        raise JobError(f"job arguments are not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise JobError("job arguments must be a JSON object")
    source_url = payload.get("source_url")
    if not isinstance(source_url, str) or not source_url:
        raise JobError("job has no source_url")
    event = payload.get("event", {})
    if not isinstance(event, dict):
        raise JobError("job event must be an object")
    fields = event.get("fields", event.get("@fields", {}))
    tags = event.get("tags", event.get("@tags", []))
    if not isinstance(fields, dict):
        raise JobError("job event.fields must be an object")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise JobError("job event.tags must be a list of strings")
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

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes) -> JobSummary:
        return cls(**orjson.loads(data))
