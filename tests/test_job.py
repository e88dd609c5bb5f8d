"""parse_job, Job.to_payload and JobSummary: the push-log job's arguments and answer.

Payload shapes follow /work/shared/reference/historical-index.md ("The Gearman job").
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from worker.errors import JobError
from worker.job import FileOptions, Job, JobSummary, parse_job

URL = "https://logs.example.org/4f/4f440b7/logs/screen-n-cpu.txt.gz"
FIELDS: dict[str, Any] = {
    "build_uuid": "4f440b7e8c4b493c81ddf709d8a54076",
    "build_short_uuid": "4f440b7",
    "build_name": "check-tempest-dsvm-postgres-full",
    "build_status": "FAILURE",
    "build_queue": "gate",
    "build_change": "135639",
    "build_patchset": "3",
    "build_branch": "master",
    "project": "openstack/nova",
    "voting": "1",
    "filename": "logs/screen-n-cpu.txt.gz",
}
TAGS = ["screen-n-cpu.txt.gz", "screen", "oslofmt", "screen-n-cpu.txt"]


def encode(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def reference_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "source_url": URL,
        "retry": False,
        "event": {"fields": dict(FIELDS), "tags": list(TAGS)},
    }
    payload.update(overrides)
    return payload


def test_reference_payload_is_accepted() -> None:
    job = parse_job(encode(reference_payload()))
    assert job.source_url == URL
    assert job.fields == FIELDS
    assert job.tags == tuple(TAGS)
    assert job.retry is False
    assert job.options == FileOptions()


def test_legacy_at_fields_and_at_tags_are_accepted() -> None:
    payload = {"source_url": URL, "retry": True, "event": {"@fields": FIELDS, "@tags": TAGS}}
    job = parse_job(encode(payload))
    assert job.fields == FIELDS
    assert job.tags == tuple(TAGS)
    assert job.retry is True


def test_new_keys_win_over_legacy_keys() -> None:
    event = {"fields": {"project": "new"}, "@fields": {"project": "old"}, "tags": ["a"]}
    event["@tags"] = ["b"]
    job = parse_job(encode({"source_url": URL, "event": event}))
    assert job.fields == {"project": "new"}
    assert job.tags == ("a",)


def test_only_source_url_is_required() -> None:
    job = parse_job(encode({"source_url": URL}))
    assert job == Job(source_url=URL, fields={}, tags=(), retry=False)


def test_options_are_read() -> None:
    payload = reference_payload(options={"format": "oslo", "drop_debug": True})
    job = parse_job(encode(payload))
    assert job.options == FileOptions(format="oslo", drop_debug=True, drop_xtrace=False)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (encode([URL]), "must be a JSON object"),
        (encode(URL), "must be a JSON object"),
        (encode(None), "must be a JSON object"),
        (encode({"retry": False}), "no source_url"),
        (encode({"source_url": ""}), "no source_url"),
        (encode({"source_url": 42}), "no source_url"),
        (encode({"source_url": URL, "event": []}), "event must be an object"),
        (encode(reference_payload(event={"fields": [], "tags": []})), "event.fields"),
        (encode(reference_payload(event={"fields": "x"})), "event.fields"),
        (encode(reference_payload(event={"@fields": ["x"]})), "event.fields"),
        (encode(reference_payload(event={"tags": "console"})), "event.tags"),
        (encode(reference_payload(event={"tags": ["console", 1]})), "event.tags"),
        (encode(reference_payload(event={"@tags": [None]})), "event.tags"),
        (encode(reference_payload(retry="yes")), "retry"),
        (encode(reference_payload(retry=1)), "retry"),
        (encode(reference_payload(retry=None)), "retry"),
        (encode(reference_payload(options=["drop_debug"])), "options must be an object"),
        (encode(reference_payload(options={"drop_trace": True})), "drop_trace"),
        (encode(reference_payload(options={"format": 3})), "options.format"),
        (encode(reference_payload(options={"drop_debug": "yes"})), "options.drop_debug"),
        (encode(reference_payload(options={"drop_xtrace": 1})), "options.drop_xtrace"),
    ],
)
def test_malformed_arguments_raise_job_error_naming_the_problem(
    arguments: bytes, expected: str
) -> None:
    with pytest.raises(JobError, match=expected):
        parse_job(arguments)


def test_unknown_option_message_names_every_unknown_option() -> None:
    payload = reference_payload(options={"zeta": 1, "alpha": 2, "drop_debug": True})
    with pytest.raises(JobError) as info:
        parse_job(encode(payload))
    assert "unknown option" in str(info.value)
    assert "alpha, zeta" in str(info.value)


@pytest.mark.parametrize(
    "options",
    [
        FileOptions(),
        FileOptions(format="console"),
        FileOptions(drop_debug=True),
        FileOptions(format="oslo", drop_debug=True, drop_xtrace=True),
    ],
)
@pytest.mark.parametrize("retry", [False, True])
def test_to_payload_round_trips_through_parse_job(options: FileOptions, retry: bool) -> None:
    job = Job(source_url=URL, fields=dict(FIELDS), tags=tuple(TAGS), retry=retry, options=options)
    assert parse_job(job.to_payload()) == job


def test_to_payload_has_the_reference_shape() -> None:
    job = Job(source_url=URL, fields=dict(FIELDS), tags=tuple(TAGS))
    payload = json.loads(job.to_payload())
    assert payload == {
        "source_url": URL,
        "retry": False,
        "event": {"fields": FIELDS, "tags": TAGS},
    }


def test_to_payload_carries_only_non_default_options() -> None:
    job = Job(URL, {}, (), options=FileOptions(drop_xtrace=True))
    assert json.loads(job.to_payload())["options"] == {"drop_xtrace": True}


def test_job_summary_round_trips_through_json() -> None:
    summary = JobSummary(
        source_url=URL,
        lines=3695,
        documents=3402,
        indexed=3400,
        dropped=12,
        failed=2,
        errors=["a1b2: mapper_parsing_exception: failed to parse field [pid]"],
        decompressed_bytes=1_234_567,
        compressed_bytes=98_765,
        truncated_lines=1,
        seconds=1.25,
        format="oslo",
    )
    data = summary.to_json()
    assert json.loads(data)["indexed"] == 3400  # plain JSON, readable by any client
    assert JobSummary.from_json(data) == summary


def test_job_summary_defaults_round_trip() -> None:
    summary = JobSummary(source_url=URL)
    assert JobSummary.from_json(summary.to_json()) == summary
    assert json.loads(summary.to_json())["errors"] == []


def test_the_listed_size_travels_in_the_job() -> None:
    job = Job(source_url=URL, fields={}, tags=(), size=2004)
    assert json.loads(job.to_payload())["size"] == 2004
    assert parse_job(job.to_payload()).size == 2004
    assert "size" not in json.loads(Job(source_url=URL, fields={}, tags=()).to_payload())


@pytest.mark.parametrize("size", [-1, 1.5, "2004", True, [2004]])
def test_a_size_that_is_no_byte_count_is_refused(size: Any) -> None:
    with pytest.raises(JobError, match=r"^job size must be a whole number of bytes$"):
        parse_job(json.dumps({"source_url": URL, "size": size}).encode())
