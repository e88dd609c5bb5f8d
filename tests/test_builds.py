"""worker/builds.py: a truncated file's reason reaches its outcome and the build summary."""

from __future__ import annotations

from worker.builds import build_summary, file_outcome
from worker.job import BuildTracking, Job, JobSummary

URL = "https://logs.example.org/4f/build/"


def job(filename: str) -> Job:
    return Job(
        source_url=URL + filename,
        fields={"build_uuid": "4f440b7", "filename": filename},
        tags=(),
        build=BuildTracking(files=2, run_id="run-1"),
    )


def test_a_truncated_file_says_why_in_its_outcome_and_the_build_summary() -> None:
    bomb = JobSummary(URL + "bomb.txt.gz", lines=1_000_000, truncated="lines cap 1000000 reached")
    whole = JobSummary(URL + "job-output.txt", lines=54)
    outcomes = [
        file_outcome(job("bomb.txt.gz"), bomb, None),
        file_outcome(job("job-output.txt"), whole, None),
    ]
    assert outcomes[0]["status"] == "ok"  # truncated is not failed: what was read is indexed
    assert outcomes[0]["truncated"] == "lines cap 1000000 reached"
    assert "truncated" not in outcomes[1]
    summary = build_summary(job("bomb.txt.gz"), outcomes)
    assert summary["files"] == [
        {
            "filename": "bomb.txt.gz",
            "status": "ok",
            "lines": 1_000_000,
            "indexed": 0,
            "failed": 0,
            "truncated": "lines cap 1000000 reached",
        },
        {"filename": "job-output.txt", "status": "ok", "lines": 54, "indexed": 0, "failed": 0},
    ]
    assert summary["files_truncated"] == 1 and summary["files_failed"] == 0


def test_a_file_read_to_an_unchecked_end_says_so_in_its_outcome() -> None:
    unchecked = JobSummary(URL + "nolength.txt", lines=10, length_verified=False)
    checked = JobSummary(URL + "job-output.txt", lines=54)
    outcome = file_outcome(job("nolength.txt"), unchecked, None)
    assert outcome["status"] == "ok"  # nothing says it is short, either
    assert outcome["length_verified"] is False
    assert "length_verified" not in file_outcome(job("job-output.txt"), checked, None)
