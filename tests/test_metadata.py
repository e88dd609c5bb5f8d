"""Build metadata: command-line flags to the historical index's field names."""

from __future__ import annotations

import argparse
import re
import uuid
from functools import cache

import pytest

from log_shipper.metadata import (
    FLAG_FIELDS,
    add_metadata_arguments,
    fields_from_args,
    normalise_voting,
)
from tests.paths import CORPUS

REFERENCE = CORPUS.parent / "reference" / "historical-index.md"
LOG_ROOT = "https://logs.example.org/35/135635/3/check/check-tempest-dsvm-full/4f440b7/"


@cache
def reference_fields() -> dict[str, str]:
    """field -> meaning column of the reference's "Fields on every document" table."""
    fields = {}
    for line in REFERENCE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([^`]+)`", cells[0]):
                fields[name] = cells[1]
    return fields


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_metadata_arguments(parser)
    return parser.parse_args(list(argv))


def test_reference_table_is_read() -> None:
    fields = reference_fields()
    assert fields["build_name"] == "job name"
    assert fields["build_queue"].startswith("pipeline")


# flag -> the reference row whose meaning names it (historical-index.md).
@pytest.mark.parametrize(
    ("flag", "field"),
    [
        ("--job-name", "build_name"),  # "job name"
        ("--pipeline", "build_queue"),  # "pipeline"
        ("--branch", "build_branch"),
        ("--change", "build_change"),
        ("--patchset", "build_patchset"),
        ("--ref", "build_ref"),
        ("--newrev", "build_newrev"),
        ("--status", "build_status"),
        ("--project", "project"),  # "repository"
        ("--build-uuid", "build_uuid"),  # "build id"
        ("--node-provider", "node_provider"),
        ("--build-node", "build_node"),
    ],
)
def test_flags_map_to_historical_field_names(flag: str, field: str) -> None:
    assert field in reference_fields()
    value = "4f440b7e8c4b493c81ddf709d8a54076" if flag == "--build-uuid" else "some-value"
    fields = fields_from_args(parse(flag, value), LOG_ROOT)
    assert fields[field] == value


def test_every_flag_field_but_build_end_time_is_a_reference_field() -> None:
    unknown = set(FLAG_FIELDS.values()) - set(reference_fields())
    assert unknown == {"build_end_time"}


def test_reference_examples_pass_through() -> None:
    args = parse(
        "--job-name",
        "check-tempest-dsvm-postgres-full",
        "--pipeline",
        "gate",
        "--change",
        "135639",
        "--patchset",
        "3",
        "--project",
        "openstack/nova",
        "--status",
        "FAILURE",
        "--node-provider",
        "rax-ord",
        "--build-uuid",
        "4f440b7e8c4b493c81ddf709d8a54076",
    )
    assert fields_from_args(args, LOG_ROOT) == {
        "build_name": "check-tempest-dsvm-postgres-full",
        "build_queue": "gate",
        "build_change": "135639",
        "build_patchset": "3",
        "project": "openstack/nova",
        "build_status": "FAILURE",
        "node_provider": "rax-ord",
        "build_uuid": "4f440b7e8c4b493c81ddf709d8a54076",
        "build_short_uuid": "4f440b7",  # the reference's example
    }


def test_unset_flags_are_absent() -> None:
    fields = fields_from_args(parse("--project", "openstack/nova"), LOG_ROOT)
    assert set(fields) == {"project", "build_uuid", "build_short_uuid"}


def test_build_uuid_is_derived_from_the_log_root() -> None:
    first = fields_from_args(parse(), LOG_ROOT)["build_uuid"]
    again = fields_from_args(parse("--project", "x"), LOG_ROOT)["build_uuid"]
    other = fields_from_args(parse(), LOG_ROOT.replace("4f440b7", "5a551c8"))["build_uuid"]
    assert first == again
    assert first != other
    assert re.fullmatch(r"[0-9a-f]{32}", first)  # shaped like the reference's build_uuid
    assert uuid.UUID(first).version == 5


def test_empty_build_uuid_is_derived_too() -> None:
    fields = fields_from_args(parse("--build-uuid", ""), LOG_ROOT)
    assert fields["build_uuid"] == fields_from_args(parse(), LOG_ROOT)["build_uuid"]


def test_given_build_uuid_is_kept() -> None:
    fields = fields_from_args(parse("--build-uuid", "f677f0312811438a8db3fa38953649c7"), LOG_ROOT)
    assert fields["build_uuid"] == "f677f0312811438a8db3fa38953649c7"
    assert fields["build_short_uuid"] == "f677f03"


def test_build_short_uuid_is_the_first_seven_characters() -> None:
    derived = fields_from_args(parse(), "/srv/logs/build-1")
    assert len(derived["build_short_uuid"]) == 7
    assert derived["build_uuid"].startswith(derived["build_short_uuid"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", "1"),
        ("true", "1"),
        ("True", "1"),
        ("yes", "1"),
        ("voting", "1"),
        ("0", "0"),
        ("false", "0"),
        ("FALSE", "0"),
        ("no", "0"),
        (" no ", "0"),
        ("non-voting", "0"),
    ],
)
def test_voting_flag_is_normalised(value: str, expected: str) -> None:
    assert fields_from_args(parse("--voting", value), LOG_ROOT)["voting"] == expected


@pytest.mark.parametrize(("value", "expected"), [(True, "1"), (False, "0"), (1, "1"), (0, "0")])
def test_normalise_voting_non_strings(value: object, expected: str) -> None:
    assert normalise_voting(value) == expected


def test_voting_absent_when_not_given() -> None:
    assert "voting" not in fields_from_args(parse(), LOG_ROOT)
