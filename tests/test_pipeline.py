"""worker.pipeline: where redaction is wired (the stages themselves have their own tests)."""

from __future__ import annotations

from worker.config import WorkerConfig
from worker.decode import DecodeStats
from worker.events import EventStats
from worker.job import Job
from worker.pipeline import parse_documents
from worker.redact import MASK, parse_redact_config

LINES = b"2014-03-17 16:14:05.112 | + export OS_PASSWORD=hunter2\n2014-03-17 16:14:05.113 | + ls\n"


def documents(config: WorkerConfig, fields: dict[str, str]) -> list[dict]:
    job = Job(
        source_url="http://logs.example.org/b/job-output.txt", fields=fields, tags=("console",)
    )
    _, made = parse_documents(
        [LINES],
        job,
        config,
        last_modified=None,
        decode_stats=DecodeStats(),
        event_stats=EventStats(),
    )
    return [document.source for document in made]


def test_messages_and_the_jobs_fields_are_redacted_before_documents_exist() -> None:
    fields = {"build_name": "tempest", "build_ref": "refs/x?token=s3cr3t"}
    first, second = documents(WorkerConfig(), fields)
    assert first["message"] == f"+ export OS_PASSWORD={MASK}"
    assert second["message"] == "+ ls"
    assert first["build_ref"] == second["build_ref"] == f"refs/x?token={MASK}"
    assert first["build_name"] == "tempest"
    assert fields["build_ref"] == "refs/x?token=s3cr3t"  # the job's own dict is kept


def test_the_configured_rules_are_the_ones_applied() -> None:
    off = WorkerConfig(redact=parse_redact_config({"builtin": False}))
    first, _ = documents(off, {})
    assert first["message"] == "+ export OS_PASSWORD=hunter2"
