""" "This build is fully indexed": per-file outcomes and the build-summary document.

Every job of a tracked build records its file's outcome (success or failure) in the
sink; the job that finds all of the build's files recorded writes the summary. A worker
that dies mid-job records nothing; Gearman hands the job to another worker, which
does, so the summary is never lost. Two workers finishing the last two files at once
may both write it: same id, same content.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from worker.errors import one_line
from worker.job import Job, JobSummary
from worker.redact import mask_url

MAX_ERRORS = 20
# Per-file fields that do not describe the build as a whole.
_FILE_FIELDS = ("filename", "log_url")


# How the outcomes and summaries write a time: UTC, microseconds, so times compare as text.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime(TIME_FORMAT)


def file_outcome(job: Job, summary: JobSummary | None, error: str | None) -> dict[str, Any]:
    finished = time.time()
    seconds = summary.seconds if summary is not None else 0.0
    ok = error is None and summary is not None and not summary.failed
    url = mask_url(job.source_url)
    outcome: dict[str, Any] = {
        "type": "file",
        "build_uuid": str(job.fields.get("build_uuid", "")),
        "filename": str(job.fields.get("filename") or url.rsplit("/", 1)[-1]),
        "log_url": url,
        "status": "ok" if ok else "failed",
        "started": iso(finished - seconds),
        "finished": iso(finished),
        "rules_digest": job.build.rules_digest if job.build else "",
        "run_id": job.build.run_id if job.build else "",
    }
    if summary is not None:
        outcome.update(
            lines=summary.lines,
            documents=summary.documents,
            indexed=summary.indexed,
            failed=summary.failed,
            errors=[one_line(mask_url(reason)) for reason in summary.errors],
        )
        if summary.truncated:
            outcome["truncated"] = summary.truncated
        if not summary.length_verified:
            outcome["length_verified"] = False
    if error is not None:
        outcome["error"] = one_line(mask_url(error))
    return outcome


def completed_run(job: Job, outcomes: Sequence[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The outcomes of this job's run, when every file of the run has one."""
    if job.build is None:
        return None
    run = [outcome for outcome in outcomes if outcome.get("run_id", "") == job.build.run_id]
    return run if len(run) >= job.build.files else None


def build_summary(job: Job, outcomes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The build-summary document, from the outcomes of all of a build's files."""
    fields = {k: v for k, v in job.fields.items() if k not in _FILE_FIELDS}
    errors: list[str] = []
    for outcome in outcomes:
        reasons = [outcome["error"]] if "error" in outcome else outcome.get("errors", [])
        # Masked and bounded again: outcomes recorded by an older worker may hold
        # credentials, or an engine's whole Java dump.
        errors.extend(
            one_line(f"{outcome['filename']}: {mask_url(str(reason))}") for reason in reasons
        )
    finished = max(outcome["finished"] for outcome in outcomes)
    # The build's own end when the job says it (a backfilled build of last month is
    # last month's in a trend), else when its last file was indexed.
    end = job.end_time
    return {
        **fields,
        "type": "build",
        "@timestamp": iso(end.timestamp()) if end else finished,
        "started": min(outcome["started"] for outcome in outcomes),
        "finished": finished,
        "rules_digest": job.build.rules_digest if job.build else "",
        "run_id": job.build.run_id if job.build else "",
        "files": [
            {k: outcome.get(k) for k in ("filename", "status", "lines", "indexed", "failed")}
            # A file read only in part says so, and why.
            | ({"truncated": outcome["truncated"]} if outcome.get("truncated") else {})
            for outcome in sorted(outcomes, key=lambda o: str(o["filename"]))
        ],
        "file_count": len(outcomes),
        "files_failed": sum(1 for outcome in outcomes if outcome["status"] != "ok"),
        "files_truncated": sum(1 for outcome in outcomes if outcome.get("truncated")),
        "lines": sum(int(outcome.get("lines", 0)) for outcome in outcomes),
        "indexed": sum(int(outcome.get("indexed", 0)) for outcome in outcomes),
        "failed": sum(int(outcome.get("failed", 0)) for outcome in outcomes),
        "errors": errors[:MAX_ERRORS],
    }
