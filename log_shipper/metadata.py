"""Build metadata: the fields put on every document of a build.

Field names are the historical index's (build_name, build_queue, ...), so existing
queries run unchanged; command-line flags use the names operators know (--job-name,
--pipeline, ...).
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

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


def add_metadata_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("build metadata (put on every document)")
    for flag, field in FLAG_FIELDS.items():
        group.add_argument(f"--{flag}", dest=field, metavar="VALUE")


def fields_from_args(args: argparse.Namespace, log_root: str) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for field in FLAG_FIELDS.values():
        value = getattr(args, field, None)
        if value is not None:
            fields[field] = value
    if "voting" in fields:
        fields["voting"] = normalise_voting(fields["voting"])
    if not fields.get("build_uuid"):
        # The same log root always gets the same uuid, so re-indexing it replaces
        # documents instead of duplicating them.
        fields["build_uuid"] = uuid.uuid5(uuid.NAMESPACE_URL, log_root).hex
    fields["build_short_uuid"] = str(fields["build_uuid"])[:7]
    return fields


def normalise_voting(value: Any) -> str:
    """Consumers append `AND voting:1`: keep the historical "1"/"0"."""
    text = str(value).strip().lower()
    return "0" if text in ("0", "false", "no", "non-voting") else "1"
