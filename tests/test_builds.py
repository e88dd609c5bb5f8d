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


# An engine's refusal quoting a 1,500-byte Java toString back, over several lines.
JAVA_DUMP = "illegal_argument_exception: immense term, prefix: '[" + ", ".join(["120"] * 300) + "]'"
LONG_ERROR = "bulk refused: HTTP 400:\n" + JAVA_DUMP


def test_error_strings_are_bounded_in_outcomes_and_the_build_summary() -> None:
    assert len(JAVA_DUMP) > 1500
    refused = JobSummary(URL + "a.txt", lines=10, failed=10, errors=[JAVA_DUMP] * 10)
    outcomes = [
        file_outcome(job("a.txt"), refused, None),
        file_outcome(job("b.txt"), None, LONG_ERROR),
        # Written by an older worker, before outcomes were bounded.
        {**file_outcome(job("c.txt"), None, None), "error": "x\n" * 5000},
    ]
    summary = build_summary(job("a.txt"), outcomes)
    stored = [
        *outcomes[0]["errors"],
        outcomes[1]["error"],
        *summary["errors"],
    ]
    assert len(stored) == 10 + 1 + 12
    for text in stored:
        assert len(text) <= 500 and "\n" not in text
    # What a reader needs survives the cut: where it came from, what it is, how long.
    assert outcomes[0]["errors"][0].startswith("illegal_argument_exception: immense term")
    assert outcomes[1]["error"].startswith("bulk refused: HTTP 400: illegal_argument_exception")
    assert summary["errors"][0].startswith("a.txt: illegal_argument_exception")
    assert summary["errors"][-1].startswith("c.txt: x x x")
    assert "characters cut" in summary["errors"][-1]


def test_the_summary_is_dated_by_the_builds_end_when_the_job_gives_it() -> None:
    ended = Job(
        source_url=URL + "a.txt",
        fields={"build_uuid": "4f440b7", "build_end_time": "2026-11-20T11:30:00+01:00"},
        tags=(),
        build=BuildTracking(files=1, run_id="run-1"),
    )
    outcomes = [file_outcome(ended, JobSummary(URL + "a.txt", lines=1), None)]
    assert build_summary(ended, outcomes)["@timestamp"] == "2026-11-20T10:30:00.000000Z"
    # Without it, or with a value that is no time: when the last file was indexed.
    for fields in ({}, {"build_end_time": "yesterday"}):
        plain = Job(URL + "a.txt", {"build_uuid": "4f440b7", **fields}, (), build=ended.build)
        summary = build_summary(plain, outcomes)
        assert summary["@timestamp"] == outcomes[0]["finished"]
