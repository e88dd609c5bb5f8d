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
    assert str(info.value) == (
        'job options has unknown key(s) "alpha", "zeta" (known: drop_debug, drop_xtrace, format)'
    )


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


def with_fields(**fields: Any) -> dict[str, Any]:
    return reference_payload(event={"fields": {**FIELDS, **fields}, "tags": list(TAGS)})


BIG = "x" * 4097  # one byte over the bound on a value
# Each bad payload with the one-line reason parse_job gives, written out by hand.
BAD_PAYLOADS: list[tuple[str, Any, str]] = [
    (
        "misspelt event",
        {"source_url": URL, "evnet": {"fields": FIELDS}},
        'job has unknown key(s) "evnet" (known: build, event, options, retry, size, '
        "source_url, submitted_at)",
    ),
    (
        "misspelt fields",
        {"source_url": URL, "event": {"feilds": FIELDS, "tags": TAGS}},
        'job event has unknown key(s) "feilds" (known: @fields, @tags, fields, tags)',
    ),
    (
        "misspelt build key",
        reference_payload(build={"files": 2, "runid": "r"}),
        'job build has unknown key(s) "runid" (known: files, rules_digest, run_id)',
    ),
    (
        "many unknown keys",
        {"source_url": URL, **{f"k{n}": 1 for n in range(7)}},
        'job has unknown key(s) "k0", "k1", "k2", "k3", "k4" and 2 more (known: build, '
        "event, options, retry, size, source_url, submitted_at)",
    ),
    (
        "object as build_uuid",
        with_fields(build_uuid={"a": ["b"]}),
        "job event.fields.build_uuid must be a string, number, true/false or null, not an object",
    ),
    (
        "list as build_name",
        with_fields(build_name=["tempest"]),
        "job event.fields.build_name must be a string, number, true/false or null, not a list",
    ),
    (
        "legacy @fields checked alike",
        {"source_url": URL, "event": {"@fields": {"project": {"name": "nova"}}}},
        "job event.fields.project must be a string, number, true/false or null, not an object",
    ),
    (
        "string in a list field",
        with_fields(build_hostids="abc"),
        "job event.fields.build_hostids must be a list of strings",
    ),
    (
        "number in a list field",
        with_fields(build_hostids=["abc", 7]),
        "job event.fields.build_hostids must be a list of strings",
    ),
    (
        "text in a number field",
        with_fields(error_pr="high"),
        "job event.fields.error_pr must be a number, not a string",
    ),
    (
        "a historical name the index keeps as an alias",
        with_fields(syslog_program="proxy-server"),
        "job event.fields.syslog_program: the index has this name as another name of "
        "program (an alias, which no document can set); send program instead",
    ),
    (
        "dotted field name",
        with_fields(**{"build.uuid": "x"}),
        "job event.fields.\"build.uuid\": a field name is 1 to 128 letters, digits, '_', "
        "'-' or '@', starting with a letter, a digit or '@' (a dot nests objects in the engines)",
    ),
    (
        "engine metadata field name",
        with_fields(_id="x"),
        "job event.fields.\"_id\": a field name is 1 to 128 letters, digits, '_', "
        "'-' or '@', starting with a letter, a digit or '@' (a dot nests objects in the engines)",
    ),
    (
        "oversized field value",
        with_fields(build_name=BIG),
        "job event.fields.build_name is 4,097 bytes, more than 4,096",
    ),
    (
        "oversized in bytes, not characters",
        with_fields(project="é" * 2049),
        "job event.fields.project is 4,098 bytes, more than 4,096",
    ),
    (
        "oversized list item",
        with_fields(build_hostids=["a", BIG]),
        "job event.fields.build_hostids[1] is 4,097 bytes, more than 4,096",
    ),
    (
        "oversized tag",
        reference_payload(event={"fields": FIELDS, "tags": ["console", BIG]}),
        "job event.tags[1] is 4,097 bytes, more than 4,096",
    ),
    (
        "oversized source_url",
        reference_payload(source_url="https://logs.example.org/" + BIG),
        "job source_url is 4,122 bytes, more than 4,096",
    ),
    (
        "oversized run_id",
        reference_payload(build={"files": 2, "run_id": BIG}),
        "job build.run_id is 4,097 bytes, more than 4,096",
    ),
    (
        "fields and tags over 64 KiB together",
        # 17 values of 4,000 bytes, each within its bound: 17 members `"fN":"v…"` of
        # 4,007 or 4,008 bytes, 16 commas, the braces and `[…,[]]` make 68,149.
        reference_payload(event={"fields": {f"f{n}": "v" * 4000 for n in range(17)}}),
        "job event fields and tags are 68,149 bytes, more than 65,536",
    ),
]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [pytest.param(payload, reason, id=name) for name, payload, reason in BAD_PAYLOADS],
)
def test_bad_payloads_are_refused_with_one_line_naming_the_problem(
    payload: Any, expected: str
) -> None:
    with pytest.raises(JobError) as info:
        parse_job(encode(payload))
    assert str(info.value) == expected


def test_arguments_over_one_mebibyte_are_refused_before_being_parsed() -> None:
    # Not even JSON: the size alone refuses it.
    arguments = b"{" + b" " * (1 << 20)
    with pytest.raises(JobError) as info:
        parse_job(arguments)
    assert str(info.value) == "job arguments are 1,048,577 bytes, more than 1,048,576"


def test_values_at_the_bounds_and_every_scalar_kind_are_accepted() -> None:
    fields = {
        **FIELDS,
        "build_name": "x" * 4096,
        "build_hostids": ["a" * 4096, "b"],
        "error_pr": -7.97,
        "build_change": 135639,
        "voting": True,
        "node_provider": None,
        "@version": "1",
        "zuul-executor_2": "ze01",
    }
    job = parse_job(encode(reference_payload(event={"fields": fields, "tags": ["t" * 4096]})))
    assert job.fields == fields
    assert job.tags == ("t" * 4096,)
