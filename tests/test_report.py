"""What backfill prints about builds: their log URLs with any credentials masked."""

from __future__ import annotations

import io

from log_shipper.backfill import BackfillReport, BuildResult
from log_shipper.build_sources import BuildRef
from log_shipper.report import Progress, print_backfill_report

URL = "https://reader:Pa55word@logs.example.org/63/12345/1/check/tox/4f440b7/"
SHOWN = "https://***@logs.example.org/63/12345/1/check/tox/4f440b7/"
UUID = "4f440b7e8c4b493c81ddf709d8a54076"


def results() -> list[BuildResult]:
    ref = BuildRef(URL, {"build_uuid": UUID})
    return [
        BuildResult(ref, "planned", files=3),
        BuildResult(ref, "failed", reason=f"GET {URL}zuul-manifest.json: HTTP 500"),
    ]


def test_backfill_report_lines_mask_the_credentials_of_log_urls() -> None:
    out = io.StringIO()
    print_backfill_report(BackfillReport(results()), out)
    lines = out.getvalue().splitlines()
    assert lines[:2] == [
        f"PLANNED {UUID} {SHOWN} (3 files)",
        f"FAILED {UUID} {SHOWN}: GET {SHOWN}zuul-manifest.json: HTTP 500",
    ]
    assert "Pa55word" not in out.getvalue()


def test_progress_lines_mask_the_credentials_of_log_urls() -> None:
    out = io.StringIO()  # not a terminal: one plain line per build
    progress = Progress(out)
    for result in results():
        progress.update(result)
    progress.close()
    assert out.getvalue().splitlines() == [
        f"[1] planned {UUID} {SHOWN}",
        f"[2] failed {UUID} {SHOWN} (GET {SHOWN}zuul-manifest.json: HTTP 500)",
    ]
