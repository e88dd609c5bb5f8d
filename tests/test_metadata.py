"""Build metadata: flags, Zuul files and CI environments to the historical index's field names."""

from __future__ import annotations

import argparse
import json
import re
import uuid
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from log_shipper.metadata import (
    FLAG_FIELDS,
    add_metadata_arguments,
    add_source_arguments,
    collect_fields,
    fields_from_args,
    fields_from_environment,
    fields_from_zuul,
    normalise_status,
    normalise_voting,
)
from tests.paths import CORPUS, DATA
from worker.errors import ConfigError

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
    value = {"--build-uuid": "4f440b7e8c4b493c81ddf709d8a54076", "--status": "SUCCESS"}.get(
        flag, "some-value"
    )
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


# --- Zuul inventory and zuul variables ------------------------------------------------

INVENTORY = DATA / "zuul" / "inventory.yaml"
ZUUL_VARS = DATA / "zuul" / "zuul-vars.json"


def load_inventory() -> dict[str, Any]:
    return yaml.safe_load(INVENTORY.read_text())


def load_zuul_vars() -> dict[str, Any]:
    return json.loads(ZUUL_VARS.read_text())


def expected_from_zuul_vars(zuul: Mapping[str, Any]) -> dict[str, Any]:
    """What the module's table promises, read straight from the variables."""
    expected = {
        "build_uuid": zuul["build"],
        "build_set": zuul["buildset"],
        "build_name": zuul["job"],
        "build_queue": zuul["pipeline"],
        "project": zuul["project"]["name"],
        "build_branch": zuul["branch"],
        "build_ref": zuul["ref"],
        "voting": "1" if zuul["voting"] else "0",
        "zuul_executor": zuul["executor"]["hostname"],
        "tenant": zuul["tenant"],
    }
    for name, field in [
        ("change", "build_change"),
        ("patchset", "build_patchset"),
        ("newrev", "build_newrev"),
    ]:
        if name in zuul:
            expected[field] = str(zuul[name])
    return expected


def parse_all(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_metadata_arguments(parser)
    add_source_arguments(parser)
    return parser.parse_args(list(argv))


def test_inventory_fixture_is_the_build_the_tests_describe() -> None:
    zuul = load_inventory()["all"]["vars"]["zuul"]
    assert (zuul["job"], zuul["pipeline"], zuul["project"]["name"]) == (
        "tempest-full",
        "gate",
        "openstack/nova",
    )
    assert (zuul["change"], zuul["patchset"]) == ("12345", "3")
    assert "newrev" not in zuul  # a change in gate has none
    assert len(load_inventory()["all"]["hosts"]) == 2


def test_fields_from_zuul_inventory() -> None:
    inventory = load_inventory()
    hosts = inventory["all"]["hosts"]
    expected = expected_from_zuul_vars(inventory["all"]["vars"]["zuul"])
    first = next(iter(hosts))
    expected["build_node"] = first
    expected["node_provider"] = hosts[first]["nodepool"]["provider"]
    expected["build_hostids"] = [host["nodepool"]["host_id"] for host in hosts.values()]
    assert fields_from_zuul(inventory) == expected


def test_fields_from_wrapped_zuul_vars_json() -> None:
    data = load_zuul_vars()
    fields = fields_from_zuul(data)
    assert fields == expected_from_zuul_vars(data["zuul"])
    assert fields["build_newrev"] == data["zuul"]["newrev"]  # a post build has one
    assert "build_change" not in fields
    assert not {"build_node", "node_provider", "build_hostids"} & set(fields)


def test_bare_zuul_vars_dict_is_read_like_the_wrapped_one() -> None:
    data = load_zuul_vars()
    assert fields_from_zuul(data["zuul"]) == fields_from_zuul(data)


def test_zuul_values_are_stringified_and_voting_normalised() -> None:
    zuul = dict(load_inventory()["all"]["vars"]["zuul"], change=12345, patchset=3, voting=False)
    fields = fields_from_zuul({"zuul": zuul})
    assert (fields["build_change"], fields["build_patchset"]) == ("12345", "3")
    assert fields["voting"] == "0"


@pytest.mark.parametrize(("success", "status"), [(True, "SUCCESS"), ("False", "FAILURE")])
def test_zuul_success_gives_build_status(success: object, status: str) -> None:
    data = dict(load_zuul_vars(), zuul_success=success)
    assert fields_from_zuul(data)["build_status"] == status


# (given, source, build_status): what each CI system says, and Zuul's word for it.
STATUSES = [
    ("success", "GitHub job.status", "SUCCESS"),
    ("failure", "GitHub job.status", "FAILURE"),
    ("cancelled", "GitHub job.status", "CANCELED"),
    ("skipped", "GitHub step conclusion", "SKIPPED"),
    ("timed_out", "GitHub check-run conclusion", "TIMED_OUT"),
    ("SUCCESS", "Jenkins currentResult", "SUCCESS"),
    ("FAILURE", "Jenkins currentResult", "FAILURE"),
    ("UNSTABLE", "Jenkins currentResult", "FAILURE"),
    ("ABORTED", "Jenkins currentResult", "ABORTED"),
    ("NOT_BUILT", "Jenkins currentResult", "SKIPPED"),
    ("TIMED_OUT", "Zuul", "TIMED_OUT"),
    ("POST_FAILURE", "Zuul", "POST_FAILURE"),
    ("NODE_FAILURE", "Zuul", "NODE_FAILURE"),
    ("RETRY_LIMIT", "Zuul", "RETRY_LIMIT"),
    ("MERGE_CONFLICT", "Zuul", "MERGE_CONFLICT"),
    ("CANCELED", "Zuul", "CANCELED"),
    ("SKIPPED", "Zuul", "SKIPPED"),
    ("Failure", "--status", "FAILURE"),
    (" post-failure ", "--status", "POST_FAILURE"),
    ("timed out", "--status", "TIMED_OUT"),
]


@pytest.mark.parametrize(("given", "source", "status"), STATUSES)
def test_statuses_are_zuul_words(
    given: str, source: str, status: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert normalise_status(given) == status
    assert caplog.records == []  # a known status is no warning


@pytest.mark.parametrize(("given", "source", "status"), STATUSES)
def test_status_flag_is_normalised(given: str, source: str, status: str) -> None:
    fields = collect_fields(parse_all("--status", given, "--job-name", "unit"), {}, LOG_ROOT)
    assert fields["build_status"] == status


def test_unknown_status_is_kept_upper_cased_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fields = collect_fields(parse_all("--status", "neutral", "--job-name", "unit"), {}, LOG_ROOT)
    assert fields["build_status"] == "NEUTRAL"
    [record] = caplog.records
    assert record.levelname == "WARNING"
    message = record.getMessage()
    assert "\n" not in message
    assert message.startswith("build status 'neutral' is none of Zuul's (")
    assert message.endswith("): indexed as 'NEUTRAL'")


def test_hosts_without_nodepool_still_name_the_node() -> None:
    inventory = load_inventory()
    inventory["all"]["hosts"] = {"controller": None, "compute1": {"ansible_host": "10.0.0.2"}}
    fields = fields_from_zuul(inventory)
    assert fields["build_node"] == "controller"
    assert "node_provider" not in fields
    assert "build_hostids" not in fields


def test_hosts_on_one_hypervisor_give_one_host_id() -> None:
    inventory = load_inventory()
    hosts = inventory["all"]["hosts"]
    shared = hosts["controller"]["nodepool"]["host_id"]
    hosts["compute1"]["nodepool"]["host_id"] = shared
    assert fields_from_zuul(inventory)["build_hostids"] == [shared]


def test_collect_fields_reads_the_inventory_file() -> None:
    fields = collect_fields(parse_all("--zuul-inventory", str(INVENTORY)), {}, LOG_ROOT)
    expected = fields_from_zuul(load_inventory())
    assert fields == {**expected, "build_short_uuid": expected["build_uuid"][:7]}


def test_zuul_vars_file_wins_over_the_inventory_but_nodes_stay() -> None:
    args = parse_all("--zuul-inventory", str(INVENTORY), "--zuul-vars", str(ZUUL_VARS))
    fields = collect_fields(args, {}, LOG_ROOT)
    zuul_vars = load_zuul_vars()["zuul"]
    hosts = load_inventory()["all"]["hosts"]
    assert fields["build_uuid"] == zuul_vars["build"]
    assert fields["build_queue"] == zuul_vars["pipeline"]
    assert fields["build_hostids"] == [host["nodepool"]["host_id"] for host in hosts.values()]


def test_unsafe_tags_of_the_executors_own_inventory_are_read(tmp_path: Path) -> None:
    # The inventory Ansible runs with marks untrusted text `!unsafe`.
    text = INVENTORY.read_text().replace(
        "      change_message: 'Fix", "      change_message: !unsafe 'Fix", 1
    )
    text = text.replace("      job: tempest-full", "      job: !unsafe tempest-full")
    assert text.count("!unsafe") == 2
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    fields = collect_fields(parse_all("--zuul-inventory", str(path)), {}, LOG_ROOT)
    assert fields["build_name"] == load_inventory()["all"]["vars"]["zuul"]["job"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("all:\n  hosts: [\n", "not valid YAML or JSON"),
        ('{"zuul": {"job": "tempest-full"}', "not valid YAML or JSON"),
        ("- just\n- a list\n", "expected a mapping at the top, found a list"),
        ("all:\n  vars:\n    zuul: tempest-full\n", "'all.vars.zuul' is a str"),
        ("all:\n  hosts:\n  - controller\n", "'all.hosts' is a list"),
        ("devstack_localrc:\n  LOGFILE: /tmp/x\n", "no zuul variables"),
        ("", "expected a mapping at the top, found nothing"),
    ],
)
def test_malformed_zuul_file_names_the_file_and_the_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        collect_fields(parse_all("--zuul-inventory", str(path)), {}, LOG_ROOT)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "\n" not in message


def test_yaml_error_says_where(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("all:\n  vars:\n    zuul: {job: [}\n")
    with pytest.raises(ConfigError, match=r"at line 3, column \d+$"):
        collect_fields(parse_all("--zuul-vars", str(path)), {}, LOG_ROOT)


def test_unreadable_zuul_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-inventory.yaml"
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(missing))}: cannot read: "):
        collect_fields(parse_all("--zuul-inventory", str(missing)), {}, LOG_ROOT)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(tmp_path))}: cannot read: "):
        collect_fields(parse_all("--zuul-vars", str(tmp_path)), {}, LOG_ROOT)


def test_source_arguments() -> None:
    args = parse_all("--zuul-inventory", "inv.yaml", "--zuul-vars", "vars.json")
    assert (args.zuul_inventory, args.zuul_vars) == ("inv.yaml", "vars.json")
    assert parse_all().zuul_inventory is None


# --- environment -----------------------------------------------------------------------

JENKINS_ENV = {
    "HOME": "/home/jenkins",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "JENKINS_HOME": "/var/lib/jenkins",
    "JENKINS_URL": "https://jenkins.example.org/",
    "JOB_NAME": "nova-unit-py311",
    "JOB_BASE_NAME": "nova-unit-py311",
    "JOB_URL": "https://jenkins.example.org/job/nova-unit-py311/",
    "BUILD_NUMBER": "482",
    "BUILD_ID": "482",
    "BUILD_DISPLAY_NAME": "#482",
    "BUILD_TAG": "jenkins-nova-unit-py311-482",
    "BUILD_URL": "https://jenkins.example.org/job/nova-unit-py311/482/",
    "EXECUTOR_NUMBER": "1",
    "NODE_NAME": "ubuntu-jammy-rax-dfw-0034817",
    "NODE_LABELS": "ubuntu-jammy ubuntu-jammy-rax-dfw-0034817",
    "WORKSPACE": "/home/jenkins/workspace/nova-unit-py311",
    "GIT_URL": "https://opendev.org/openstack/nova",
    "GIT_BRANCH": "origin/stable/2024.1",
    "GIT_COMMIT": "0e4b7d2a9c5f1e8b3d6a0c9f2e5b8d1a4c7f0e3b",
    "GIT_PREVIOUS_COMMIT": "9d3a6c1f8b4e0d7a2c5f9e1b6d3a8c0f4e7b2d5a",
}

# A multibranch pipeline building pull request 318.
JENKINS_PR_ENV = {
    "JENKINS_URL": "https://ci.example.com/",
    "JOB_NAME": "webapp/PR-318",
    "JOB_BASE_NAME": "PR-318",
    "BRANCH_NAME": "PR-318",
    "CHANGE_ID": "318",
    "CHANGE_TARGET": "main",
    "CHANGE_BRANCH": "fix-session-timeout",
    "CHANGE_URL": "https://github.com/example/webapp/pull/318",
    "BUILD_NUMBER": "2",
    "BUILD_ID": "2",
    "BUILD_TAG": "jenkins-webapp-PR-318-2",
    "BUILD_URL": "https://ci.example.com/job/webapp/job/PR-318/2/",
    "NODE_NAME": "built-in",
    "GIT_BRANCH": "PR-318",
    "GIT_COMMIT": "7b1e4a9d2c6f0e3b8a5d1c7f4e0b9a2d6c3f8e1a",
}

GITHUB_PR_ENV = {
    "CI": "true",
    "GITHUB_ACTIONS": "true",
    "GITHUB_ACTION": "__run_2",
    "GITHUB_ACTOR": "octocat",
    "GITHUB_BASE_REF": "main",
    "GITHUB_EVENT_NAME": "pull_request",
    "GITHUB_EVENT_PATH": "/home/runner/work/_temp/_github_workflow/event.json",
    "GITHUB_HEAD_REF": "fix-session-timeout",
    "GITHUB_JOB": "unit",
    "GITHUB_REF": "refs/pull/318/merge",
    "GITHUB_REF_NAME": "318/merge",
    "GITHUB_REF_TYPE": "branch",
    "GITHUB_REPOSITORY": "example/webapp",
    "GITHUB_REPOSITORY_OWNER": "example",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_RUN_ID": "9876543210",
    "GITHUB_RUN_NUMBER": "3127",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_SHA": "3f6c2a8e1d9b4f7a0c5e2d8b1f4a7c0e3d6b9f2a",
    "GITHUB_WORKFLOW": "CI",
    "GITHUB_WORKSPACE": "/home/runner/work/webapp/webapp",
    "RUNNER_ARCH": "X64",
    "RUNNER_NAME": "GitHub Actions 17",
    "RUNNER_OS": "Linux",
    "RUNNER_TEMP": "/home/runner/work/_temp",
}

GITHUB_PUSH_ENV = {
    **GITHUB_PR_ENV,
    "GITHUB_BASE_REF": "",  # set, but empty, outside pull requests
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_HEAD_REF": "",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_REF_NAME": "main",
    "GITHUB_RUN_ID": "9876559012",
    "GITHUB_SHA": "8a2d5f0c3e6b9a1d4f7c0e2b5d8a1f4c7e0b3d6a",
}

# A Zuul v2 job on a Jenkins node after change 135635 merged (post pipeline).
ZUUL_V2_ENV = {
    "JENKINS_URL": "https://jenkins03.openstack.org/",
    "JOB_NAME": "nova-branch-tarball",
    "BUILD_NUMBER": "2117",
    "BUILD_ID": "2117",
    "BUILD_TAG": "jenkins-nova-branch-tarball-2117",
    "BUILD_URL": "https://jenkins03.openstack.org/job/nova-branch-tarball/2117/",
    "NODE_NAME": "bare-trusty-rax-iad-5744093",
    "WORKSPACE": "/home/jenkins/workspace/nova-branch-tarball",
    "ZUUL_UUID": "f677f0312811438a8db3fa38953649c7",
    "ZUUL_PIPELINE": "post",
    "ZUUL_PROJECT": "openstack/nova",
    "ZUUL_BRANCH": "master",
    "ZUUL_REF": "refs/heads/master",
    "ZUUL_CHANGE": "",
    "ZUUL_PATCHSET": "",
    "ZUUL_OLDREV": "1c0e5a8d3f6b9e2a4d7c0f3b6e9a2d5c8f1b4e7a",
    "ZUUL_NEWREV": "5a8d1c4f7b0e3a6d9c2f5b8e1a4d7c0f3b6e9a2d",
    "ZUUL_SHORT_NEWREV": "5a8d1c4",
    "ZUUL_URL": "http://zm04.openstack.org/p",
    "ZUUL_VOTING": "1",
}

UUID_SHAPE = re.compile(r"[0-9a-f]{32}")


def test_jenkins_environment() -> None:
    fields = fields_from_environment(JENKINS_ENV)
    uuid_ = fields.pop("build_uuid")
    assert fields == {
        "build_name": JENKINS_ENV["JOB_NAME"],
        "build_node": JENKINS_ENV["NODE_NAME"],
        "build_branch": JENKINS_ENV["GIT_BRANCH"].removeprefix("origin/"),
        "build_newrev": JENKINS_ENV["GIT_COMMIT"],
    }
    assert fields["build_branch"] == "stable/2024.1"  # a slash inside the branch is kept
    assert UUID_SHAPE.fullmatch(uuid_)
    assert uuid.UUID(uuid_).version == 5


def test_jenkins_pull_request_environment() -> None:
    fields = fields_from_environment(JENKINS_PR_ENV)
    assert fields["build_change"] == JENKINS_PR_ENV["CHANGE_ID"]
    assert fields["build_branch"] == JENKINS_PR_ENV["CHANGE_TARGET"]  # not GIT_BRANCH "PR-318"
    assert fields["build_name"] == JENKINS_PR_ENV["JOB_NAME"]


def test_github_pull_request_environment() -> None:
    fields = fields_from_environment(GITHUB_PR_ENV)
    uuid_ = fields.pop("build_uuid")
    build_set = fields.pop("build_set")
    assert fields == {
        "build_name": GITHUB_PR_ENV["GITHUB_JOB"],
        "workflow": GITHUB_PR_ENV["GITHUB_WORKFLOW"],
        "project": GITHUB_PR_ENV["GITHUB_REPOSITORY"],
        "build_queue": GITHUB_PR_ENV["GITHUB_EVENT_NAME"],
        "build_ref": GITHUB_PR_ENV["GITHUB_REF"],
        "build_branch": GITHUB_PR_ENV["GITHUB_BASE_REF"],  # the target, not "318/merge"
        "build_change": "318",
        "build_newrev": GITHUB_PR_ENV["GITHUB_SHA"],
        "build_node": GITHUB_PR_ENV["RUNNER_NAME"],
    }
    assert UUID_SHAPE.fullmatch(uuid_)
    assert UUID_SHAPE.fullmatch(build_set)
    assert uuid_ != build_set


def test_github_push_environment() -> None:
    fields = fields_from_environment(GITHUB_PUSH_ENV)
    assert fields["build_branch"] == GITHUB_PUSH_ENV["GITHUB_REF_NAME"]
    assert fields["build_queue"] == "push"
    assert "build_change" not in fields


def test_github_tag_push_has_no_branch() -> None:
    env = {**GITHUB_PUSH_ENV, "GITHUB_REF": "refs/tags/v2.3.0", "GITHUB_REF_NAME": "v2.3.0"}
    fields = fields_from_environment(env)
    assert "build_branch" not in fields
    assert fields["build_ref"] == "refs/tags/v2.3.0"


def test_zuul_v2_variables_win_over_jenkins_ones() -> None:
    fields = fields_from_environment(ZUUL_V2_ENV)
    assert fields == {
        "build_uuid": ZUUL_V2_ENV["ZUUL_UUID"],  # given, not derived from BUILD_URL
        "build_name": ZUUL_V2_ENV["JOB_NAME"],
        "build_node": ZUUL_V2_ENV["NODE_NAME"],
        "build_queue": ZUUL_V2_ENV["ZUUL_PIPELINE"],
        "project": ZUUL_V2_ENV["ZUUL_PROJECT"],
        "build_branch": ZUUL_V2_ENV["ZUUL_BRANCH"],
        "build_ref": ZUUL_V2_ENV["ZUUL_REF"],
        "build_newrev": ZUUL_V2_ENV["ZUUL_NEWREV"],
        "voting": "1",
    }  # the empty ZUUL_CHANGE and ZUUL_PATCHSET are not given


def test_unrelated_environment_gives_nothing() -> None:
    assert fields_from_environment({"HOME": "/root", "PATH": "/usr/bin", "TERM": "xterm"}) == {}


# --- derived uuids ---------------------------------------------------------------------


@pytest.mark.parametrize("env", [JENKINS_ENV, GITHUB_PR_ENV], ids=["jenkins", "github"])
def test_derived_uuid_is_the_same_when_the_hook_runs_again(env: dict[str, str]) -> None:
    # Another run of the hook: other process, shell and working directory.
    again = {**env, "PATH": "/opt/hook/bin:/usr/bin", "EXECUTOR_NUMBER": "0", "PWD": "/tmp"}
    assert fields_from_environment(env) == fields_from_environment(again)
    first = collect_fields(parse_all(), env, LOG_ROOT)["build_uuid"]
    assert first == collect_fields(parse_all(), again, LOG_ROOT)["build_uuid"]
    assert first == fields_from_environment(env)["build_uuid"]


@pytest.mark.parametrize(
    ("env", "change"),
    [
        (GITHUB_PR_ENV, {"GITHUB_RUN_ATTEMPT": "2"}),  # "Re-run jobs" is another build
        (GITHUB_PR_ENV, {"GITHUB_RUN_ID": "9876543211"}),
        (GITHUB_PR_ENV, {"GITHUB_JOB": "lint"}),
        (GITHUB_PR_ENV, {"GITHUB_REPOSITORY": "example/webapp-fork"}),
        (GITHUB_PR_ENV, {"GITHUB_SERVER_URL": "https://github.example.com"}),
        (JENKINS_ENV, {"BUILD_URL": "https://jenkins.example.org/job/nova-unit-py311/483/"}),
        (JENKINS_ENV, {"BUILD_URL": "https://jenkins2.example.org/job/nova-unit-py311/482/"}),
    ],
)
def test_derived_uuid_differs_for_another_build(
    env: dict[str, str], change: dict[str, str]
) -> None:
    assert (
        fields_from_environment(env)["build_uuid"]
        != fields_from_environment({**env, **change})["build_uuid"]
    )


def test_github_build_set_is_shared_by_the_jobs_of_a_run() -> None:
    unit = fields_from_environment(GITHUB_PR_ENV)
    lint = fields_from_environment({**GITHUB_PR_ENV, "GITHUB_JOB": "lint"})
    rerun = fields_from_environment({**GITHUB_PR_ENV, "GITHUB_RUN_ATTEMPT": "2"})
    assert unit["build_set"] == lint["build_set"] != rerun["build_set"]


def test_matrix_legs_told_apart_by_their_job_names() -> None:
    # Matrix legs share GITHUB_JOB; the hook gives each its name with --job-name.
    py311 = collect_fields(parse_all("--job-name", "unit (3.11)"), GITHUB_PR_ENV, LOG_ROOT)
    py312 = collect_fields(parse_all("--job-name", "unit (3.12)"), GITHUB_PR_ENV, LOG_ROOT)
    again = collect_fields(parse_all("--job-name", "unit (3.11)"), GITHUB_PR_ENV, LOG_ROOT)
    assert py311["build_uuid"] != py312["build_uuid"]
    assert py311["build_uuid"] == again["build_uuid"]
    assert py311["build_short_uuid"] == py311["build_uuid"][:7]


def test_jenkins_without_build_url_derives_from_build_tag() -> None:
    env = {k: v for k, v in JENKINS_ENV.items() if k != "BUILD_URL"}
    fields = fields_from_environment(env)
    assert UUID_SHAPE.fullmatch(fields["build_uuid"])
    other = fields_from_environment({**env, "BUILD_TAG": "jenkins-nova-unit-py311-483"})
    assert fields["build_uuid"] != other["build_uuid"]


def test_derived_uuid_is_not_the_log_root_one() -> None:
    derived = collect_fields(parse_all(), JENKINS_ENV, LOG_ROOT)["build_uuid"]
    assert derived != fields_from_args(parse(), LOG_ROOT)["build_uuid"]


def test_log_root_uuid_when_nothing_identifies_the_build() -> None:
    fields = collect_fields(parse_all("--job-name", "tempest-full"), {"HOME": "/"}, LOG_ROOT)
    assert fields["build_uuid"] == fields_from_args(parse(), LOG_ROOT)["build_uuid"]


# --- precedence -------------------------------------------------------------------------


def test_flags_win_over_files_which_win_over_the_environment() -> None:
    zuul = load_inventory()["all"]["vars"]["zuul"]
    hosts = load_inventory()["all"]["hosts"]
    env = fields_from_environment(ZUUL_V2_ENV)
    args = parse_all(
        "--zuul-inventory",
        str(INVENTORY),
        "--job-name",
        "tempest-full-py3",
        "--change",
        "12346",
        "--status",
        "FAILURE",
    )
    fields = collect_fields(args, ZUUL_V2_ENV, LOG_ROOT)
    # in all three: the flag
    assert zuul["job"] != "tempest-full-py3" != env["build_name"]
    assert fields["build_name"] == "tempest-full-py3"
    assert fields["build_change"] == "12346"
    # in the file and the environment: the file
    assert zuul["build"] != env["build_uuid"]
    assert fields["build_uuid"] == zuul["build"]
    assert fields["build_short_uuid"] == zuul["build"][:7]
    assert zuul["pipeline"] != env["build_queue"]
    assert fields["build_queue"] == zuul["pipeline"]
    assert fields["build_ref"] == zuul["ref"]
    assert fields["build_node"] == next(iter(hosts)) != env["build_node"]
    # only in the environment: the environment
    assert "newrev" not in zuul
    assert fields["build_newrev"] == ZUUL_V2_ENV["ZUUL_NEWREV"]
    # only a flag
    assert fields["build_status"] == "FAILURE"


def test_flag_build_uuid_wins_over_the_inventory() -> None:
    args = parse_all("--zuul-inventory", str(INVENTORY), "--build-uuid", "0" * 32)
    fields = collect_fields(args, GITHUB_PR_ENV, LOG_ROOT)
    assert (fields["build_uuid"], fields["build_short_uuid"]) == ("0" * 32, "0000000")


def test_empty_flag_does_not_hide_the_file_value() -> None:
    args = parse_all("--zuul-inventory", str(INVENTORY), "--pipeline", "", "--voting", "")
    fields = collect_fields(args, {}, LOG_ROOT)
    zuul = load_inventory()["all"]["vars"]["zuul"]
    assert fields["build_queue"] == zuul["pipeline"]
    assert fields["voting"] == "1"


def test_collect_fields_accepts_a_parser_without_source_arguments() -> None:
    fields = collect_fields(parse("--job-name", "tempest-full"), {}, LOG_ROOT)
    assert fields == fields_from_args(parse("--job-name", "tempest-full"), LOG_ROOT)


# --- required fields -------------------------------------------------------------------


def test_missing_build_name_is_one_clear_line() -> None:
    with pytest.raises(ConfigError) as caught:
        collect_fields(parse_all(), {"HOME": "/root"}, LOG_ROOT)
    assert str(caught.value) == (
        "missing build metadata: build_name (give --job-name, a Zuul inventory or vars file,"
        " or JOB_NAME/GITHUB_JOB in the environment)"
    )


def test_every_missing_field_is_named_in_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        collect_fields(
            parse_all("--project", "openstack/nova"),
            {},
            None,
            required=("build_uuid", "build_name", "project", "build_hostids", "build_status"),
        )
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("missing build metadata: build_uuid (give --build-uuid, ")
    assert "ZUUL_UUID/BUILD_URL/BUILD_TAG/GITHUB_RUN_ID in the environment" in message
    assert "build_name (" in message
    assert "project" not in message  # given
    assert "build_hostids (give a Zuul inventory or vars file)" in message
    assert "; build_status (give --status or a Zuul inventory or vars file)" in message


def test_required_fields_given_by_any_source_pass() -> None:
    fields = collect_fields(parse_all(), GITHUB_PUSH_ENV, None, required=("build_set", "project"))
    assert fields["project"] == GITHUB_PUSH_ENV["GITHUB_REPOSITORY"]
