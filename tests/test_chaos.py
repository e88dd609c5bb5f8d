"""A short chaos run (tools/chaos): 3 builds through the hook into two gearmands, a pool
of two `log-worker` processes and a private Elasticsearch node, with every fault kind
injected at seeded moments (engine restart, worker SIGKILL, gearmand SIGKILL and
restart, a stalled log server). At the end every document is there exactly once and
every build summary is right; a stalled file has FAILED with its reason, and none of
its documents is left.

The tool checks the engine itself; this test reads its JSON report and holds it to
figures written here from the corpus (SOURCES.txt: lines of each file, each line one
document), not to the tool's own counting.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO

CHAOS = REPO / "tools" / "chaos"
# Lines of each input (../shared/corpus/SOURCES.txt); each is one document.
DOCUMENTS = {"syslog.txt": 25_939, "screen-c-api.txt": 3_695}
KINDS = {"engine-restart", "worker-kill", "gearmand-restart", "stall"}
# What a fault that found nothing to act on says (it then proves nothing).
NOTHING_DONE = ("none killed", "none stalled", "restart failed")


@pytest.mark.timeout(600)
def test_a_short_chaos_run_leaves_every_document_once_and_every_summary_right(
    tmp_path: Path,
) -> None:
    report_file = tmp_path / "chaos.json"
    command = [sys.executable, str(CHAOS), "--builds", "3", "--seconds", "30", "--seed", "11"]
    command += ["--wait", "300", "--json", str(report_file)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=580)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = json.loads(report_file.read_text())

    done = [f for f in report["faults"] if not any(n in f["detail"] for n in NOTHING_DONE)]
    assert {fault["kind"] for fault in done} == KINDS, report["faults"]
    assert report["builds"] == report["summaries_written"] == report["summaries_right"] == 3
    assert report["problems"] == []

    files = report["files_checked"]
    assert len(files) == report["files"] >= 6  # 2 or 3 files a build
    assert any(f["stalled"] for f in files) and not all(f["stalled"] for f in files)
    for checked in files:
        expected = 0 if checked["stalled"] else DOCUMENTS[Path(checked["filename"]).name]
        assert checked["expected"] == expected, checked
        assert checked["found"] == checked["distinct_lines"] == expected, checked
        assert checked["duplicates"] == checked["missing"] == 0, checked
    assert report["indexed"] == report["expected"] == sum(f["expected"] for f in files)
    assert report["duplicates"] == 0
    assert report["recovery_seconds"] is not None
