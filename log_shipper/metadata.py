"""Build metadata: the fields put on every document of a build.

Field names are the historical index's (build_name, build_queue, ...), so existing
queries run unchanged; command-line flags use the names operators know (--job-name,
--pipeline, ...).

Metadata comes from three sources; a later one wins field by field:

1. the environment of the CI system running the hook (`fields_from_environment`),
2. Zuul's `inventory.yaml` and/or a dump of the `zuul` variables (`fields_from_zuul`;
   when both files are given the variables file wins over the inventory),
3. command-line flags (`FLAG_FIELDS`).

Empty values count as not given, so an exported-but-empty `ZUUL_CHANGE` or `--change ""`
does not hide a real value from a lower source.

build_status is in Zuul's words whatever the source (`normalise_status`), so one query
such as `build_status:FAILURE` finds the failed builds of every CI system:

| given (any case) | source | build_status |
|---|---|---|
| success, failure, skipped | GitHub Actions `job.status`, steps | SUCCESS, FAILURE, SKIPPED |
| cancelled | GitHub Actions | CANCELED |
| timed_out | GitHub check-run conclusion | TIMED_OUT |
| SUCCESS, FAILURE, ABORTED | Jenkins `currentBuild.currentResult` | as given |
| UNSTABLE | Jenkins (the build ran, tests failed) | FAILURE |
| NOT_BUILT | Jenkins | SKIPPED |
| true / false | Zuul's `zuul_success` | SUCCESS / FAILURE |
| any of `ZUUL_STATUSES` | Zuul (API results, --status) | as given |

A status none of them knows is kept, in upper case, with a warning naming it: it is
still searchable, and a typo is seen rather than silently turned into another status.

| field | flag | Zuul (`zuul.*` / inventory host) | environment |
|---|---|---|---|
| build_uuid | --build-uuid | build | ZUUL_UUID; else derived (below) |
| build_name | --job-name | job | GITHUB_JOB, JOB_NAME |
| build_queue | --pipeline | pipeline | ZUUL_PIPELINE, GITHUB_EVENT_NAME |
| project | --project | project.name | ZUUL_PROJECT, GITHUB_REPOSITORY |
| build_branch | --branch | branch | ZUUL_BRANCH, GitHub [2], CHANGE_TARGET, GIT_BRANCH [1] |
| build_change | --change | change | ZUUL_CHANGE, N of GITHUB_REF `refs/pull/N/...`, CHANGE_ID |
| build_patchset | --patchset | patchset | ZUUL_PATCHSET |
| build_ref | --ref | ref | ZUUL_REF, GITHUB_REF |
| build_newrev | --newrev | newrev | ZUUL_NEWREV, GITHUB_SHA, GIT_COMMIT |
| build_status | --status | `zuul_success` next to `zuul` | |
| voting | --voting | voting | ZUUL_VOTING |
| build_node | --build-node | name of the first inventory host | RUNNER_NAME, NODE_NAME |
| node_provider | --node-provider | nodepool.provider of the first host having one | |
| build_hostids | | every host's nodepool.host_id | |
| zuul_executor | | executor.hostname | |
| build_set | | buildset | derived for GitHub Actions (below) |
| tenant | | tenant | |
| workflow | | | GITHUB_WORKFLOW |
| build_end_time | --build-end-time | | |

An environment cell names the winning variable first. Zuul v2's `ZUUL_*` win over
Jenkins' variables: Zuul v2 ran its jobs on Jenkins, whose variables are then also set
but less precise. [1] without a leading `origin/`. [2] GITHUB_BASE_REF (the target
branch of a pull request), else GITHUB_REF_NAME if GITHUB_REF is a `refs/heads/` branch
(for a pull request it is "N/merge", for a tag push the tag).

A build without a given uuid gets a uuid5 of what identifies it, so running the hook
again for the same build gives the same uuid and re-indexing replaces documents:
GitHub Actions: server URL, GITHUB_REPOSITORY, GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT and the
job name; Jenkins: BUILD_URL (else BUILD_TAG, else JOB_NAME and BUILD_ID/BUILD_NUMBER) and
the job name. The job name is the final build_name, not GITHUB_JOB: the legs of a GitHub
matrix share GITHUB_JOB, so give each its own --job-name to keep them apart. Without any
of these the uuid is derived from the log root.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from worker.config import yaml_problem
from worker.errors import ConfigError

log = logging.getLogger(__name__)

# flag (without --) -> document field
FLAG_FIELDS: dict[str, str] = {
    "build-uuid": "build_uuid",
    "job-name": "build_name",
    "project": "project",
    "branch": "build_branch",
    "pipeline": "build_queue",
    "change": "build_change",
    "patchset": "build_patchset",
    "ref": "build_ref",
    "newrev": "build_newrev",
    "status": "build_status",
    "voting": "voting",
    "node-provider": "node_provider",
    "build-node": "build_node",
    "build-end-time": "build_end_time",
}

# flag (without --) -> its --help text; every flag of FLAG_FIELDS has one
FLAG_HELP: dict[str, str] = {
    "build-uuid": "the build's uuid (default: the CI system's, else one derived from what "
    "identifies the build or from the log root, so indexing it again replaces documents)",
    "job-name": "the job's name (field build_name)",
    "project": "the project built, e.g. openstack/nova",
    "branch": "the branch built (field build_branch)",
    "pipeline": "the pipeline, e.g. check or gate (field build_queue)",
    "change": "the change or pull request number (field build_change)",
    "patchset": "the patchset number (field build_patchset)",
    "ref": "the git ref built (field build_ref)",
    "newrev": "the commit built (field build_newrev)",
    "status": "the build's result in Zuul's words: SUCCESS, FAILURE, TIMED_OUT, "
    "POST_FAILURE, ... (field build_status)",
    "voting": "whether the job votes: 1 or 0 (true/false, yes/no and non-voting are "
    "understood too)",
    "node-provider": "the cloud provider of the build's node (field node_provider)",
    "build-node": "the name of the build's node (field build_node)",
    "build-end-time": "when the build ended, ISO 8601 (e.g. 2024-05-01T12:00:00Z): the "
    "year of syslog and journald lines, which carry none",
}

# zuul variable -> document field, for the values copied as they are
ZUUL_FIELDS: dict[str, str] = {
    "build": "build_uuid",
    "buildset": "build_set",
    "job": "build_name",
    "pipeline": "build_queue",
    "branch": "build_branch",
    "change": "build_change",
    "patchset": "build_patchset",
    "ref": "build_ref",
    "newrev": "build_newrev",
    "tenant": "tenant",
}
# The results Zuul reports for a build (its web UI's result filter): the vocabulary of
# the historical index's build_status.
ZUUL_STATUSES = frozenset(
    {
        "SUCCESS",
        "FAILURE",
        "TIMED_OUT",
        "POST_FAILURE",
        "NODE_FAILURE",
        "RETRY_LIMIT",
        "RETRY",
        "SKIPPED",
        "ABORTED",
        "CANCELED",
        "ERROR",
        "CONFIG_ERROR",
        "MERGE_CONFLICT",
        "MERGE_FAILURE",
        "DISK_FULL",
        "NO_JOBS",
        "DISCONNECT",
        "LOST",
        "EXCEPTION",
        "NO_HANDLE",
    }
)
# Other CI systems' words (upper-cased) for a Zuul status; the module table says whose.
_STATUS_SYNONYMS: dict[str, str] = {
    "CANCELLED": "CANCELED",
    "UNSTABLE": "FAILURE",
    "NOT_BUILT": "SKIPPED",
}

# Fields fields_from_zuul gives beyond ZUUL_FIELDS (named in the missing-field hint).
_ZUUL_OTHER_FIELDS = frozenset(
    {
        "project",
        "voting",
        "zuul_executor",
        "build_status",
        "build_node",
        "node_provider",
        "build_hostids",
    }
)

# An environment rule: (variable, field, value -> field value or None to skip it).
_EnvRule = tuple[str, str, Callable[[str, Mapping[str, str]], str | None]]


def _as_is(value: str, env: Mapping[str, str]) -> str | None:
    return value


def _jenkins_branch(value: str, env: Mapping[str, str]) -> str | None:
    # The git plugin names the remote-tracking branch; documents carry the branch.
    for prefix in ("refs/remotes/origin/", "refs/heads/", "origin/"):
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def _github_branch(value: str, env: Mapping[str, str]) -> str | None:
    # GITHUB_REF_NAME is "123/merge" for a pull request and the tag for a tag push.
    return value if env.get("GITHUB_REF", "").startswith("refs/heads/") else None


def _github_pull_number(value: str, env: Mapping[str, str]) -> str | None:
    match = re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", value)
    return match.group(1) if match else None


def _voting(value: str, env: Mapping[str, str]) -> str | None:
    return normalise_voting(value)


# Lowest precedence first: a later rule for the same field wins.
_ENV_RULES: tuple[_EnvRule, ...] = (
    ("JOB_NAME", "build_name", _as_is),
    ("NODE_NAME", "build_node", _as_is),
    ("GIT_BRANCH", "build_branch", _jenkins_branch),
    ("CHANGE_TARGET", "build_branch", _as_is),
    ("CHANGE_ID", "build_change", _as_is),
    ("GIT_COMMIT", "build_newrev", _as_is),
    ("GITHUB_JOB", "build_name", _as_is),
    ("GITHUB_WORKFLOW", "workflow", _as_is),
    ("GITHUB_REPOSITORY", "project", _as_is),
    ("GITHUB_EVENT_NAME", "build_queue", _as_is),
    ("GITHUB_REF", "build_ref", _as_is),
    ("GITHUB_REF_NAME", "build_branch", _github_branch),
    ("GITHUB_BASE_REF", "build_branch", _as_is),
    ("GITHUB_REF", "build_change", _github_pull_number),
    ("GITHUB_SHA", "build_newrev", _as_is),
    ("RUNNER_NAME", "build_node", _as_is),
    ("ZUUL_UUID", "build_uuid", _as_is),
    ("ZUUL_PIPELINE", "build_queue", _as_is),
    ("ZUUL_PROJECT", "project", _as_is),
    ("ZUUL_BRANCH", "build_branch", _as_is),
    ("ZUUL_CHANGE", "build_change", _as_is),
    ("ZUUL_PATCHSET", "build_patchset", _as_is),
    ("ZUUL_REF", "build_ref", _as_is),
    ("ZUUL_NEWREV", "build_newrev", _as_is),
    ("ZUUL_VOTING", "voting", _voting),
)
# Variables a derived value can come from (named in the missing-field hint).
_DERIVED_FROM: dict[str, tuple[str, ...]] = {
    "build_uuid": ("BUILD_URL", "BUILD_TAG", "GITHUB_RUN_ID"),
    "build_set": ("GITHUB_RUN_ID",),
}

# Derived uuids get their own namespace so they never equal a log-root-derived one.
_BUILD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:ci-log-indexer:build")
_BUILDSET_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:ci-log-indexer:buildset")


def add_metadata_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("build metadata (put on every document)")
    for flag, field in FLAG_FIELDS.items():
        group.add_argument(f"--{flag}", dest=field, metavar="VALUE", help=FLAG_HELP[flag])


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "build metadata sources (flags win over these files, the files over the environment)"
    )
    group.add_argument(
        "--zuul-inventory",
        metavar="FILE",
        help="inventory.yaml written by the Zuul executor (zuul variables and nodes)",
    )
    group.add_argument(
        "--zuul-vars",
        metavar="FILE",
        help='JSON or YAML of the zuul variables: {"zuul": {...}} or the dict itself',
    )


def fields_from_args(args: argparse.Namespace, log_root: str) -> dict[str, Any]:
    """The fields the flags alone give (no files, no environment)."""
    return collect_fields(args, {}, log_root, required=())


def normalise_voting(value: Any) -> str:
    """Consumers append `AND voting:1`: keep the historical "1"/"0"."""
    text = str(value).strip().lower()
    return "0" if text in ("0", "false", "no", "non-voting") else "1"


def normalise_status(value: Any) -> str:
    """A build status in Zuul's vocabulary (see the module docstring's table).

    An unknown status is kept, upper-cased, and named in a warning.
    """
    given = str(value).strip()
    key = re.sub(r"[-\s]+", "_", given.upper())  # "timed-out", "post failure"
    status = _STATUS_SYNONYMS.get(key, key)
    if status in ZUUL_STATUSES:
        return status
    log.warning(
        "build status %r is none of Zuul's (%s): indexed as %r",
        given,
        ", ".join(sorted(ZUUL_STATUSES)),
        given.upper(),
    )
    return given.upper()


def fields_from_zuul(data: Any) -> dict[str, Any]:
    """Fields from a Zuul inventory, `{"zuul": {...}}`, or the zuul variables themselves.

    Raises ConfigError (without a file name: the caller knows it) if `data` has neither
    zuul variables nor inventory hosts, or they are not shaped as Zuul writes them.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected a mapping at the top, found {_kind(data)}")
    hosts: Any = None
    top: Mapping[str, Any] = data
    if "all" in data:
        group = data["all"]
        if not isinstance(group, Mapping):
            raise ConfigError(f"'all' is {_kind(group)}, not a mapping")
        hosts = group.get("hosts")
        top = group.get("vars") or {}
        if not isinstance(top, Mapping):
            raise ConfigError(f"'all.vars' is {_kind(top)}, not a mapping")
    if "zuul" in top:
        zuul = top["zuul"]
        where = "'all.vars.zuul'" if "all" in data else "'zuul'"
        if not isinstance(zuul, Mapping):
            raise ConfigError(f"{where} is {_kind(zuul)}, not a mapping")
    elif "all" not in data and ("build" in data or "job" in data):
        zuul, top = data, {}
    else:
        zuul = {}
    fields = _fields_from_zuul_vars(zuul)
    if top.get("zuul_success") not in (None, ""):
        # Post-run playbooks get zuul_success; it is the only place Zuul says how it went.
        success = normalise_voting(top["zuul_success"]) == "1"
        fields["build_status"] = "SUCCESS" if success else "FAILURE"
    if hosts is not None:
        if not isinstance(hosts, Mapping):
            raise ConfigError(f"'all.hosts' is {_kind(hosts)}, not a mapping")
        fields.update(_fields_from_hosts(hosts))
    if not fields:
        raise ConfigError(
            "no zuul variables (all.vars.zuul, zuul, or build/job keys) and no inventory hosts"
        )
    return fields


def fields_from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    """Fields from Zuul v2, Jenkins and GitHub Actions variables (see the module table)."""
    fields, identity = _environment_fields(env)
    if "build_uuid" not in fields and identity:
        fields["build_uuid"] = _derived_build_uuid(identity, fields.get("build_name"))
    return fields


def collect_fields(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    log_root: str | None,
    required: Iterable[str] = ("build_uuid", "build_name"),
) -> dict[str, Any]:
    """Environment, then Zuul files, then flags, each overriding the one before.

    Raises ConfigError naming every required field that no source gave, or a Zuul file
    that cannot be read.
    """
    fields, identity = _environment_fields(environ)
    for option in ("zuul_inventory", "zuul_vars"):
        path = getattr(args, option, None)
        if path:
            fields.update(_zuul_file_fields(path))
    fields.update(_flag_fields(args, keep_empty=False))
    if _given(fields.get("build_status")):
        fields["build_status"] = normalise_status(fields["build_status"])
    if "build_uuid" not in fields:
        if identity:
            fields["build_uuid"] = _derived_build_uuid(identity, fields.get("build_name"))
        elif log_root:
            fields["build_uuid"] = uuid_from_log_root(log_root)
    if "build_uuid" in fields:
        fields["build_short_uuid"] = str(fields["build_uuid"])[:7]
    missing = [field for field in required if not _given(fields.get(field))]
    if missing:
        reasons = "; ".join(f"{field} ({_how_to_give(field)})" for field in missing)
        raise ConfigError(f"missing build metadata: {reasons}")
    return fields


def _flag_fields(args: argparse.Namespace, *, keep_empty: bool = True) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for field in FLAG_FIELDS.values():
        value = getattr(args, field, None)
        if value is not None and (keep_empty or value != ""):
            fields[field] = value
    if "voting" in fields:
        fields["voting"] = normalise_voting(fields["voting"])
    return fields


def uuid_from_log_root(log_root: str) -> str:
    """The same log root always gets the same uuid, so re-indexing it replaces documents
    instead of duplicating them. URLs count with and without their final slash alike."""
    if log_root.startswith(("http://", "https://")):
        log_root = log_root.rstrip("/") + "/"
    return uuid.uuid5(uuid.NAMESPACE_URL, log_root).hex


def _fields_from_zuul_vars(zuul: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, field in ZUUL_FIELDS.items():
        if _given(zuul.get(name)):
            fields[field] = str(zuul[name])
    project = zuul.get("project")
    if isinstance(project, Mapping):
        project = project.get("name")
    if _given(project):
        fields["project"] = str(project)
    if _given(zuul.get("voting")):
        fields["voting"] = normalise_voting(zuul["voting"])
    executor = zuul.get("executor")
    if isinstance(executor, Mapping) and _given(executor.get("hostname")):
        fields["zuul_executor"] = str(executor["hostname"])
    return fields


def _fields_from_hosts(hosts: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    host_ids: list[str] = []
    for name, host_vars in hosts.items():
        # Zuul writes the nodeset's nodes in order; the first is the job's main node.
        fields.setdefault("build_node", str(name))
        nodepool = host_vars.get("nodepool") if isinstance(host_vars, Mapping) else None
        if not isinstance(nodepool, Mapping):
            continue
        if _given(nodepool.get("provider")):
            fields.setdefault("node_provider", str(nodepool["provider"]))
        host_id = nodepool.get("host_id")
        # Nodes sharing a hypervisor give one id: the field is for finding bad hypervisors.
        if _given(host_id) and str(host_id) not in host_ids:
            host_ids.append(str(host_id))
    if host_ids:
        fields["build_hostids"] = host_ids
    return fields


class _ZuulLoader(yaml.SafeLoader):
    """Safe YAML that also reads `!unsafe`, the tag Zuul puts on untrusted strings in
    the inventory it gives Ansible (the copy in the build's logs has no tags)."""


def _construct_unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return None


_ZuulLoader.add_constructor("!unsafe", _construct_unsafe)


def _zuul_file_fields(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    try:
        # JSON first: not every JSON document is YAML (tabs, some escapes).
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = yaml.load(text, Loader=_ZuulLoader)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML or JSON: {yaml_problem(exc)}") from exc
    try:
        return fields_from_zuul(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: not a Zuul inventory or zuul variables: {exc}") from exc


def _environment_fields(env: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Fields given by the environment, and what identifies the build for a derived uuid."""
    fields: dict[str, Any] = {}
    for variable, field, convert in _ENV_RULES:
        value = env.get(variable, "").strip()
        if value:
            converted = convert(value, env)
            if _given(converted):
                fields[field] = converted
    identity: list[str] = []
    if env.get("GITHUB_RUN_ID"):
        run = [
            env.get("GITHUB_SERVER_URL") or "https://github.com",
            env.get("GITHUB_REPOSITORY", ""),
            env["GITHUB_RUN_ID"],
            env.get("GITHUB_RUN_ATTEMPT") or "1",
        ]
        # A workflow run's jobs, like a Zuul buildset, are what one trigger started.
        fields.setdefault("build_set", uuid.uuid5(_BUILDSET_NAMESPACE, "\n".join(run)).hex)
        identity = ["github", *run]
    elif env.get("BUILD_URL"):
        identity = ["jenkins", env["BUILD_URL"]]
    elif env.get("BUILD_TAG"):
        identity = ["jenkins", env.get("JENKINS_URL", ""), env["BUILD_TAG"]]
    elif env.get("JOB_NAME") and (env.get("BUILD_ID") or env.get("BUILD_NUMBER")):
        number = env.get("BUILD_ID") or env.get("BUILD_NUMBER", "")
        identity = ["jenkins", env.get("JENKINS_URL", ""), env["JOB_NAME"], number]
    return fields, identity


def _derived_build_uuid(identity: list[str], build_name: Any) -> str:
    name = str(build_name) if _given(build_name) else ""
    return uuid.uuid5(_BUILD_NAMESPACE, "\n".join([*identity, name])).hex


def _how_to_give(field: str) -> str:
    ways = [f"--{flag}" for flag, target in FLAG_FIELDS.items() if target == field]
    if field in ZUUL_FIELDS.values() or field in _ZUUL_OTHER_FIELDS:
        ways.append("a Zuul inventory or vars file")
    variables = list(dict.fromkeys(var for var, target, _ in _ENV_RULES if target == field))
    variables += _DERIVED_FROM.get(field, ())
    if variables:
        ways.append("/".join(variables) + " in the environment")
    if not ways:
        return "no source gives it"
    if len(ways) <= 2:
        return "give " + " or ".join(ways)
    return "give " + ", ".join(ways[:-1]) + ", or " + ways[-1]


def _given(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"
