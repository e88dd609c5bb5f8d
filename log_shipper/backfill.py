"""Backfill: (re)index old builds, gently (low priority, rate and in-flight limits),
resumably (checkpoint file) and without duplicates (deterministic document ids).

Each build goes through the same plan as the job-completion hook (plan.py); only the
pacing and the bookkeeping are backfill's own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from log_shipper.build_sources import BuildRef
from log_shipper.metadata import uuid_from_log_root
from log_shipper.plan import BuildPlan, plan_build
from log_shipper.rules import Rules
from log_shipper.submit import Pending, Submitter
from worker.errors import ConfigError, LogIndexerError
from worker.sinks.base import Sink


@dataclass(slots=True)
class BuildResult:
    ref: BuildRef
    status: str  # indexed | skipped | failed | planned (dry run)
    reason: str = ""
    files: int = 0
    submitted: bool = False  # jobs went out (a build whose listing failed never does)
    lines: int = 0
    indexed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class BackfillReport:
    results: list[BuildResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for result in self.results if result.status == status)

    def summary_line(self) -> str:
        submitted = sum(1 for result in self.results if result.submitted)
        lines = sum(result.lines for result in self.results)
        documents = sum(result.indexed for result in self.results)
        planned = f", planned {self.count('planned')}" if self.count("planned") else ""
        return (
            f"builds seen {len(self.results)}, skipped {self.count('skipped')}, "
            f"submitted {submitted}, failed {self.count('failed')}{planned}; "
            f"lines read {lines}, documents indexed {documents}"
        )


class Checkpoint:
    """Builds already indexed, one JSON line each, appended and flushed as they finish:
    an interrupted backfill started again skips them."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.done: set[str] = set()
        if path is None or not path.exists():
            return
        data = path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        if len(complete) < len(data):
            # A kill cut the last line short: drop it, or the next line would be appended
            # to it (its build is simply looked at again).
            with path.open("r+b") as out:
                out.truncate(len(complete))
        lines = complete.decode("utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                self.done.add(str(orjson.loads(line)["build"]))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise ConfigError(f"{path}:{number}: not a checkpoint line") from None

    def record(self, key: str) -> None:
        self.done.add(key)
        if self.path is None:
            return
        with self.path.open("ab") as out:
            out.write(orjson.dumps({"build": key, "at": time.time()}) + b"\n")
            out.flush()
            os.fsync(out.fileno())


class RateLimit:
    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self.next = 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if now < self.next:
            time.sleep(self.next - now)
        self.next = max(now, self.next) + self.interval


@dataclass(slots=True)
class _Running:
    result: BuildResult
    pending: list[Pending]


@dataclass(slots=True)
class Backfill:
    submitter: Submitter | None  # None for a dry run
    rules: Rules
    sink: Sink | None = None  # reads build summaries (skip) and removes stale files (force)
    force: bool = False
    dry_run: bool = False
    max_in_flight: int = 50
    rate: RateLimit = field(default_factory=lambda: RateLimit(None))
    checkpoint: Checkpoint = field(default_factory=lambda: Checkpoint(None))
    on_result: Callable[[BuildResult], None] = lambda result: None
    timeout: float | None = None  # per job answer
    running: list[_Running] = field(default_factory=list)
    report: BackfillReport = field(default_factory=BackfillReport)

    def run(self, builds: Iterable[BuildRef]) -> BackfillReport:
        try:
            for ref in builds:
                result = self._start(ref)
                if result is not None:
                    self.report.results.append(result)
                    self.on_result(result)
                self._collect(block=False)
        finally:
            self._collect(block=True)
        return self.report

    def _start(self, ref: BuildRef) -> BuildResult | None:
        """Plan and submit one build; a finished result when there is nothing to wait for."""
        fields = build_fields(ref)
        result = BuildResult(BuildRef(ref.log_url, fields), "indexed")
        key = result.ref.key
        if ref.problem:
            result.status, result.reason = "failed", ref.problem
            return result
        if key in self.checkpoint.done and not self.force:
            result.status, result.reason = "skipped", "in checkpoint"
            return result
        previous = None
        if self.sink is not None:
            previous = self.sink.get_build(str(fields["build_uuid"]))
            if not self.force and fully_indexed(previous, self.rules):
                result.status, result.reason = "skipped", "fully indexed"
                if not self.dry_run:
                    self.checkpoint.record(key)
                return result
        try:
            plan = plan_build(ref.log_url, fields, self.rules)
        except LogIndexerError as exc:
            result.status, result.reason = "failed", str(exc)
            return result
        result.files = len(plan.submissions)
        if self.dry_run or self.submitter is None:
            result.status = "planned"
            return result
        if self.force and previous is not None and self.sink is not None:
            self._remove_stale_files(previous, plan)
        pending = []
        for submission in plan.submissions:
            while self._in_flight() >= self.max_in_flight:
                self._wait_a_little()
            self.rate.wait()
            pending.append(self.submitter.start(submission, wait=True, low_priority=True))
        result.submitted = True
        self.running.append(_Running(result, pending))
        return None

    def _remove_stale_files(self, previous: dict[str, Any], plan: BuildPlan) -> None:
        """Files indexed before that the rules no longer select lose their documents."""
        assert self.sink is not None
        selected = {submission.job.fields["filename"] for submission in plan.submissions}
        for entry in previous.get("files", []):
            filename = entry.get("filename")
            if filename and filename not in selected:
                self.sink.delete_file(str(plan.fields["build_uuid"]), str(filename))

    def _in_flight(self) -> int:
        return sum(1 for run in self.running for pending in run.pending if not pending.finished)

    def _wait_a_little(self) -> None:
        self._collect(block=False)
        time.sleep(0.02)

    def _collect(self, *, block: bool) -> None:
        """Finish the builds whose jobs all have answers; checkpoint each at once, so a
        kill loses no finished build."""
        while self.running:
            submitter = self.submitter
            assert submitter is not None  # builds run only when they were submitted
            still = []
            for run in self.running:
                if all([submitter.poll(pending, self.timeout) for pending in run.pending]):
                    finish(run.result, run.pending)
                    if run.result.status == "indexed":
                        self.checkpoint.record(run.result.ref.key)
                    self.report.results.append(run.result)
                    self.on_result(run.result)
                else:
                    still.append(run)
            self.running = still
            if not block or not self.running:
                return
            time.sleep(0.05)


def finish(result: BuildResult, pending: list[Pending]) -> None:
    for item in pending:
        outcome = item.outcome
        if outcome.summary is not None:
            result.lines += outcome.summary.lines
            result.indexed += outcome.summary.indexed
        if not outcome.ok:
            result.errors.append(f"{outcome.path}: {outcome.error or 'documents refused'}")
    if result.errors:
        result.status = "failed"
        result.reason = result.errors[0]


def build_fields(ref: BuildRef) -> dict[str, Any]:
    fields = dict(ref.fields)
    if not fields.get("build_uuid"):
        fields["build_uuid"] = uuid_from_log_root(ref.log_url)
    fields.setdefault("build_short_uuid", str(fields["build_uuid"])[:7])
    return fields


def fully_indexed(summary: dict[str, Any] | None, rules: Rules) -> bool:
    return (
        summary is not None
        and summary.get("rules_digest") == rules.digest
        and not summary.get("files_failed")
    )
