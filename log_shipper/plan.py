"""What to submit for one build: its files, the rules' decisions, one job per file.

The one way `index`, `submit` and `backfill` turn a build's log root into jobs.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from log_shipper.listing import list_tree
from log_shipper.rules import Rules, Selected
from worker.job import BuildTracking, Job


@dataclass(slots=True)
class Submission:
    path: str  # relative to the build's log root: what the operator recognises
    job: Job


@dataclass(slots=True)
class BuildPlan:
    fields: dict[str, Any]
    decisions: list[Selected]  # every listed file, selected or skipped with a reason
    submissions: list[Submission]

    @property
    def skipped(self) -> list[Selected]:
        return [item for item in self.decisions if not item.indexed]


def plan_build(
    listing_root: str,
    fields: dict[str, Any],
    rules: Rules,
    *,
    url_root: str | None = None,
) -> BuildPlan:
    """List `listing_root` (local directory or URL) and decide each file.

    `url_root` is where workers fetch the files from when the listing is local but the
    workers are elsewhere (the Zuul executor lists its copy, workers read the log server).
    """
    entries = list_tree(listing_root)
    if url_root is not None:
        base = url_root.rstrip("/") + "/"
        entries = [dataclasses.replace(entry, url=base + entry.path) for entry in entries]
    decisions = rules.select(entries, fields)
    selected = [item for item in decisions if item.indexed]
    tracking = BuildTracking(
        files=len(selected), rules_digest=rules.digest, run_id=uuid.uuid4().hex
    )
    submissions = [
        Submission(
            path=item.path,
            job=Job(
                source_url=item.url,
                fields={**fields, "filename": item.filename, "log_url": item.url},
                tags=item.tags,
                options=item.options,
                build=tracking,
                size=item.size,
            ),
        )
        for item in selected
    ]
    return BuildPlan(fields, decisions, submissions)
