"""The per-file table and totals printed after indexing."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, TextIO

from tqdm import tqdm

from log_shipper.backfill import BackfillReport, BuildResult
from log_shipper.plan import BuildPlan
from log_shipper.rules import Selected
from log_shipper.submit import Outcome
from worker.redact import mask_url


def print_report(outcomes: Sequence[Outcome], skipped: Sequence[Selected], out: TextIO) -> None:
    rows = [("file", "format", "lines", "indexed", "failed", "seconds", "status")]
    lines = indexed = failed = 0
    seconds = 0.0
    for outcome in outcomes:
        summary = outcome.summary
        if summary is None:
            rows.append((outcome.path, "", "", "", "", "", f"FAILED: {outcome.error}"))
            continue
        lines += summary.lines
        indexed += summary.indexed
        failed += summary.failed
        seconds += summary.seconds
        status = "ok" if outcome.ok else f"{summary.failed} refused: {'; '.join(summary.errors)}"
        if not summary.length_verified:
            # Sent without Content-Length and not listed with a size: a hang-up looks the same.
            status += " (length unverified)"
        rows.append(
            (
                outcome.path,
                summary.format,
                str(summary.lines),
                str(summary.indexed),
                str(summary.failed),
                f"{summary.seconds:.2f}",
                status,
            )
        )
    for item in skipped:
        rows.append((item.path, "", "", "", "", "", f"skipped: {item.reason}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip(), file=out)
    bad = sum(1 for outcome in outcomes if not outcome.ok)
    print(
        f"\n{len(outcomes)} files submitted, {bad} failed, {len(skipped)} skipped; "
        f"{lines} lines read, {indexed} documents indexed, {failed} refused "
        f"({seconds:.1f} worker-seconds)",
        file=out,
    )


def print_plan(plan: BuildPlan, out: TextIO) -> None:
    """--dry-run: what would be submitted, and what is skipped and why."""
    print(f"build {plan.fields.get('build_uuid')}: {len(plan.submissions)} files", file=out)
    for submission in plan.submissions:
        job = submission.job
        options = job.options.to_mapping()
        extra = f"  options={options}" if options else ""
        print(f"  submit  {submission.path}  tags={list(job.tags)}{extra}", file=out)
    for item in plan.skipped:
        print(f"  skip    {item.path}  ({item.reason})", file=out)


def terminal_bar(out: TextIO, unit: str, total: int | None = None) -> Any:
    """A tqdm bar on `out` if it is a terminal, else None."""
    if not out.isatty():
        return None
    return tqdm(file=out, unit=unit, total=total, dynamic_ncols=True)


class Progress:
    """Backfill progress: a tqdm bar on a terminal, a plain line per build otherwise."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.done = 0
        self.bar: Any = terminal_bar(out, "build")

    def update(self, result: BuildResult) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"{result.status} {result.ref.key[:12]}")
            return
        detail = f" ({result.reason})" if result.reason else ""
        line = f"[{self.done}] {result.status} {result.ref.key} {result.ref.log_url}{detail}"
        print(mask_url(line), file=self.out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class FileProgress:
    """`index` progress on a terminal: files done of all, lines read, and lines per
    second since the start. Not on a terminal it prints nothing: the table printed at
    the end says everything, and a CI log or a pipe needs no redrawn bar."""

    def __init__(self, out: TextIO, total: int) -> None:
        self.lines = 0
        self.started = time.monotonic()
        self.bar: Any = terminal_bar(out, "file", total)

    def update(self, outcome: Outcome) -> None:
        if outcome.summary is not None:
            self.lines += outcome.summary.lines
        if self.bar is None:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.lines / elapsed
        self.bar.set_postfix_str(f"{self.lines} lines, {rate:.0f} lines/s", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def print_backfill_report(report: BackfillReport, out: TextIO) -> None:
    for result in report.results:
        if result.status == "planned":
            line = f"PLANNED {result.ref.key} {result.ref.log_url} ({result.files} files)"
            print(mask_url(line), file=out)
        if result.status == "failed":
            print(
                mask_url(f"FAILED {result.ref.key} {result.ref.log_url}: {result.reason}"), file=out
            )
    print(report.summary_line(), file=out)
