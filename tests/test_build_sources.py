"""log_shipper/build_sources.py without services: Zuul API build records in both shapes
(tests/data/zuul-api), the builds file, and --since/--until parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from log_shipper.build_sources import builds_from_file, parse_time, zuul_build_fields
from tests.paths import DATA
from worker.errors import ConfigError

ZUUL_API = DATA / "zuul-api"
FLAT = ZUUL_API / "builds-flat.json"  # older Zuul: project, branch, change... at the top
NESTED = ZUUL_API / "builds-nested.json"  # newer Zuul: in a `ref` object, pipeline in buildset


def records(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    assert isinstance(data, list) and data
    return data


def expected_fields(record: dict[str, Any]) -> dict[str, str]:
    """The document fields a record should give, read from the record as Zuul documents it."""
    nested = isinstance(record.get("ref"), dict)
    where = record["ref"] if nested else record
    buildset = record.get("buildset") or {}
    end = record.get("end_time")
    voting = record.get("voting")
    values = {
        "build_uuid": record["uuid"],
        "build_name": record["job_name"],
        "build_status": record.get("result"),
        "build_queue": record.get("pipeline") or buildset.get("pipeline"),
        "project": where.get("project"),
        "build_branch": where.get("branch"),
        "build_change": where.get("change"),
        "build_patchset": where.get("patchset"),
        "build_ref": where.get("ref"),
        "build_newrev": where.get("newrev"),
        "build_set": buildset.get("uuid"),
        "build_node": record.get("node_name"),
        # Zuul writes naive UTC; the field says so.
        "build_end_time": f"{end}Z" if end else None,
        "voting": None if voting is None else ("1" if voting else "0"),
    }
    return {name: str(value) for name, value in values.items() if value is not None}


def test_the_recorded_builds_are_in_both_shapes_newest_first() -> None:
    flat, nested = records(FLAT), records(NESTED)
    assert all(isinstance(record["ref"], str) and "project" in record for record in flat)
    assert all(isinstance(record["ref"], dict) and "project" not in record for record in nested)
    assert all("pipeline" not in record for record in nested)
    # Zuul lists builds by id, newest first.
    ids = [record["_id"] for record in nested + flat]
    assert ids == sorted(ids, reverse=True)
    ends = [record["end_time"] for record in nested + flat]
    assert ends == sorted(ends, reverse=True)
    assert any(record["log_url"] is None for record in nested + flat)


@pytest.mark.parametrize("path", [FLAT, NESTED], ids=["flat", "nested"])
def test_zuul_build_fields_reads_every_record(path: Path) -> None:
    for record in records(path):
        assert zuul_build_fields(record) == expected_fields(record), record["uuid"]


def test_zuul_build_fields_of_a_change_in_the_nested_shape() -> None:
    record = records(NESTED)[0]
    fields = zuul_build_fields(record)
    assert fields["project"] == record["ref"]["project"] == "openstack/nova"
    assert fields["build_change"] == str(record["ref"]["change"])
    assert fields["build_patchset"] == record["ref"]["patchset"]
    assert fields["build_ref"] == record["ref"]["ref"]
    assert fields["build_queue"] == record["buildset"]["pipeline"] == "gate"
    assert fields["build_set"] == record["buildset"]["uuid"]
    assert "build_newrev" not in fields and "build_node" not in fields  # null in the record


def test_zuul_build_fields_of_a_periodic_build_in_the_flat_shape() -> None:
    [record] = [r for r in records(FLAT) if r["pipeline"] == "periodic"]
    fields = zuul_build_fields(record)
    assert fields["build_queue"] == "periodic"
    assert fields["build_ref"] == "refs/heads/master"
    assert fields["build_newrev"] == record["newrev"]
    assert "build_change" not in fields and "build_patchset" not in fields
    assert fields["build_end_time"] == "2026-11-18T06:10:00Z"


def test_zuul_build_fields_voting_and_explicit_time_zone() -> None:
    [non_voting] = [r for r in records(NESTED) if r["voting"] is False]
    assert zuul_build_fields(non_voting)["voting"] == "0"
    record = {**records(FLAT)[0], "end_time": "2026-11-20T12:00:00+02:00"}
    assert zuul_build_fields(record)["build_end_time"] == "2026-11-20T10:00:00Z"


# --- builds file ----------------------------------------------------------------------------


def test_builds_from_file_reads_urls_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "builds.txt"
    path.write_text(
        "# builds to re-index after the outage\n"
        "\n"
        "https://logs.example.org/a/ "
        '{"build_uuid": "aaaa", "build_name": "tempest-full", "build_change": 42}\n'
        "   https://logs.example.org/b/   \n"
        "https://logs.example.org/c/ {}\n"
    )

    builds = list(builds_from_file(path))

    assert [build.log_url for build in builds] == [
        "https://logs.example.org/a/",
        "https://logs.example.org/b/",
        "https://logs.example.org/c/",
    ]
    assert builds[0].fields == {
        "build_uuid": "aaaa",
        "build_name": "tempest-full",
        "build_change": 42,
    }
    assert builds[0].key == "aaaa"
    assert builds[1].fields == {} and builds[1].key == "https://logs.example.org/b/"
    assert builds[2].fields == {}


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ('{"build_uuid": "x",}', "metadata is not valid JSON"),
        ("build_uuid=x", "metadata is not valid JSON"),
        ('["build_uuid", "x"]', "metadata must be a JSON object"),
        ('"x"', "metadata must be a JSON object"),
    ],
)
def test_builds_from_file_names_the_file_and_line_of_bad_metadata(
    tmp_path: Path, metadata: str, message: str
) -> None:
    path = tmp_path / "builds.txt"
    path.write_text(
        f"# first\nhttps://logs.example.org/a/\nhttps://logs.example.org/b/ {metadata}\n"
    )

    builds = builds_from_file(path)
    assert next(builds).log_url == "https://logs.example.org/a/"  # lines before it still come
    with pytest.raises(ConfigError) as error:
        next(builds)

    assert str(error.value).startswith(f"{path}:3: {message}"), error.value


def test_builds_from_file_that_cannot_be_read(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file.txt"
    with pytest.raises(ConfigError, match=r"no-such-file\.txt: cannot read: No such file"):
        list(builds_from_file(missing))


# --- --since / --until ----------------------------------------------------------------------


def test_parse_time_of_a_date_a_naive_time_and_an_offset() -> None:
    assert parse_time("2026-11-18", "--since") == datetime(2026, 11, 18, tzinfo=UTC)
    assert parse_time("2026-11-20T10:00:00", "--until") == datetime(2026, 11, 20, 10, tzinfo=UTC)
    with_offset = parse_time("2026-11-20T12:00:00+02:00", "--until")
    assert with_offset.utcoffset() == timedelta(hours=2)
    assert with_offset == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert parse_time("2026-11-20T12:00:00Z", "--since").tzinfo is not None


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "20-11-2026", "2026-11-20T25:00", ""])
def test_parse_time_errors_name_the_option_and_the_value(value: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_time(value, "--since")
    assert str(error.value) == f"--since: not an ISO-8601 date or time: {value!r}"
