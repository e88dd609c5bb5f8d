"""Which known bug broke this build: every fingerprint query run against one build.

Each query is restricted to the build (and to voting builds unless the query file says
`allow-nonvoting`, as elastic-recheck did). A matched bug is shown with its hit count
and the first line it matched, linked; then the build's error lines that no matched
query explains, so the developer sees where to look next. Whether the build is fully
indexed is its summary document (worker.builds), waited for a bounded time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from log_shipper.fingerprints import Fingerprint, build_query, quoted, restricted_query
from worker.errors import QueryError, one_line
from worker.redact import mask_url
from worker.sinks.base import Sink, wait_for_build

# What a developer looks at when no known bug explains a failure: oslo.log's error
# levels and Python tracebacks (grouped into one event each, see worker/events.py).
ERROR_LINES = '(loglevel:ERROR OR loglevel:CRITICAL OR message:"Traceback (most recent call last)")'
UNMATCHED_SHOWN = 5
MESSAGE_CHARS = 300
# Exit statuses of `log-shipper classify` (2 is a usage error, as for every command).
MATCHED, NO_MATCH, NOT_INDEXED = 0, 1, 3
# Build fields shown in the heading, from the summary or else from a document.
BUILD_FIELDS = ("build_name", "build_status", "build_queue", "project", "build_change", "voting")
FILE_FIELDS = ("filename", "status", "lines", "indexed", "failed")


@dataclass(frozen=True, slots=True)
class Line:
    """One indexed line (or grouped event) as the developer is pointed at it."""

    filename: str
    line_number: int | None
    url: str | None  # the log file's URL with its #L anchor, credentials masked
    job: str
    timestamp: str
    level: str
    message: str  # its first line

    @classmethod
    def of(cls, hit: dict[str, Any]) -> Line:
        number = hit.get("line_number")
        line_number = number if isinstance(number, int) else None
        log_url = hit.get("log_url")
        url = None
        if isinstance(log_url, str) and log_url:
            url = mask_url(log_url) + (f"#L{line_number}" if line_number is not None else "")
        message = str(hit.get("message", "")).split("\n", 1)[0]
        return cls(
            filename=str(hit.get("filename", "")),
            line_number=line_number,
            url=url,
            job=str(hit.get("build_name", "")),
            timestamp=str(hit.get("@timestamp", "")),
            level=str(hit.get("loglevel", "")),
            message=one_line(message, MESSAGE_CHARS),
        )

    def place(self) -> str:
        return f"{self.filename}:{self.line_number}" if self.line_number else self.filename

    def as_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "line_number": self.line_number,
            "url": self.url,
            "job": self.job,
            "@timestamp": self.timestamp,
            "loglevel": self.level or None,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class BugMatch:
    fingerprint: Fingerprint
    hits: int
    first: Line


@dataclass(frozen=True, slots=True)
class Classification:
    build_uuid: str
    summary: dict[str, Any] | None  # None: the build is not fully indexed
    build: dict[str, Any]  # BUILD_FIELDS known
    files: list[dict[str, Any]]  # per file: the summary's, or the outcomes so far
    documents: int
    matches: list[BugMatch]
    unmatched_total: int
    unmatched: list[Line]
    refused: list[str]  # queries the sink could not run, one line each

    @property
    def verdict(self) -> str:
        if self.summary is None:
            return "not fully indexed"
        return "matched" if self.matches else "no match"

    @property
    def exit_status(self) -> int:
        return {"matched": MATCHED, "no match": NO_MATCH}.get(self.verdict, NOT_INDEXED)


def classify(
    sink: Sink, fingerprints: Sequence[Fingerprint], build_uuid: str, wait: float = 0.0
) -> Classification:
    of_build = f"build_uuid:{quoted(build_uuid)}"
    # Searched before the summary is read: a sink with nothing indexed says so, which
    # reading a summary (that prepares a SQLite file) would not.
    sink.count(of_build)
    summary = wait_for_build(sink, build_uuid, wait)
    if summary is not None:
        files = [dict(f) for f in summary.get("files", [])]
    else:
        outcomes = sink.file_outcomes(build_uuid)
        files = [{key: outcome.get(key) for key in FILE_FIELDS} for outcome in outcomes]
    known = sink.search(of_build, size=1, oldest_first=True)
    source = summary if summary is not None else (known.hits[0] if known.hits else {})
    build = {key: source[key] for key in BUILD_FIELDS if key in source}

    matches = []
    refused = []
    for fingerprint in fingerprints:
        try:
            found = sink.search(restricted_query(fingerprint, build_uuid), 1, oldest_first=True)
        except QueryError as exc:
            refused.append(f"{fingerprint.path}: {one_line(mask_url(str(exc)))}")
            continue
        if found.total:
            matches.append(BugMatch(fingerprint, found.total, Line.of(found.hits[0])))
    matches.sort(key=lambda match: (-match.hits, match.fingerprint.bug))

    errors = build_query(ERROR_LINES, build_uuid, voting_only=False)
    if matches:
        explained = " OR ".join(f"({match.fingerprint.query})" for match in matches)
        errors = f"{errors} AND NOT ({explained})"
    unmatched = sink.search(errors, UNMATCHED_SHOWN, oldest_first=True)
    return Classification(
        build_uuid=build_uuid,
        summary=summary,
        build=build,
        files=files,
        documents=known.total,
        matches=matches,
        unmatched_total=unmatched.total,
        unmatched=[Line.of(hit) for hit in unmatched.hits],
        refused=refused,
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def print_classification(result: Classification, out: TextIO) -> None:
    described = ", ".join(str(result.build[key]) for key in BUILD_FIELDS[:4] if key in result.build)
    heading = f"build {result.build_uuid}" + (f" ({described})" if described else "")
    if result.summary is not None:
        state = f"fully indexed, {_plural(len(result.files), 'file')}"
        failed = sum(1 for f in result.files if f.get("status") != "ok")
        if failed:
            state += f" ({failed} not indexed)"
    else:
        state = f"NOT fully indexed yet, {_plural(len(result.files), 'file')} recorded so far"
    print(f"{heading}: {state}, {_plural(result.documents, 'document')}", file=out)
    if result.summary is None:
        for f in result.files:
            print(f"  {f.get('filename')}: {f.get('status')}, {f.get('indexed')} indexed", file=out)
        if not result.documents and not result.files:
            print("  nothing of this build is in the sink (yet)", file=out)
    for match in result.matches:
        first = match.first
        print(
            f"bug {match.fingerprint.bug}: {_plural(match.hits, 'hit')}, job {first.job}", file=out
        )
        print(f"    first: {first.place()}  {first.url or '(no log URL)'}", file=out)
        print(f"    {first.message}", file=out)
    if result.unmatched_total:
        shown = len(result.unmatched)
        cut = f"; first {shown}" if shown < result.unmatched_total else ""
        print(
            f"{_plural(result.unmatched_total, 'error line')} no query matched"
            f" (ERROR, CRITICAL, tracebacks{cut}):",
            file=out,
        )
        for line in result.unmatched:
            print(f"    {line.place()} {line.level}  {line.url or '(no log URL)'}", file=out)
            print(f"        {line.message}", file=out)
    for problem in result.refused:
        print(f"query not run: {problem}", file=out)
    if result.verdict == "matched":
        verdict = f"matched {_plural(len(result.matches), 'known bug')}"
    elif result.verdict == "no match":
        verdict = "no known bug matched"
    else:
        verdict = "not fully indexed: the answer may change once it is"
    print(f"verdict: {verdict}", file=out)


def classification_json(result: Classification) -> dict[str, Any]:
    return {
        "build_uuid": result.build_uuid,
        "verdict": result.verdict,
        "fully_indexed": result.summary is not None,
        "build": result.build,
        "files": result.files,
        "documents": result.documents,
        "bugs": [
            {
                "bug": match.fingerprint.bug,
                "file": str(match.fingerprint.path),
                "hits": match.hits,
                "job": match.first.job,
                "first": match.first.as_json(),
            }
            for match in result.matches
        ],
        "unmatched": {
            "total": result.unmatched_total,
            "lines": [line.as_json() for line in result.unmatched],
        },
        "refused": result.refused,
    }
