"""Golden files: for each format, real and tricky lines with the events they must become,
written out by hand (tests/formats/golden/<format>.yaml; see its README.md).

The lines go through the same stages a worker runs (decode, format, event grouping:
`worker.pipeline.parse_events`), so line numbers, timestamps, grouping and fields are
checked together, as a document would hold them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.config import WorkerConfig
from worker.decode import DecodeStats
from worker.events import EventStats
from worker.job import FileOptions, Job
from worker.pipeline import parse_events

GOLDEN = Path(__file__).parent / "golden"
CASE_KEYS = {"name", "source", "lines", "raw", "events", "reference_time", "filename"}
EVENT_KEYS = {"line_number", "timestamp", "message", "fields", "line_count"}


@dataclass(frozen=True)
class Case:
    file: str
    format: str
    spec: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.file}: {self.spec['name']}"


def load_cases() -> list[Case]:
    cases = []
    for path in sorted(GOLDEN.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        for spec in document["cases"]:
            unknown = set(spec) - CASE_KEYS
            assert not unknown, f"{path.name}: {spec.get('name')}: unknown keys {unknown}"
            cases.append(Case(path.name, document["format"], {**document, **spec}))
    return cases


CASES = load_cases()


def case_bytes(spec: dict[str, Any]) -> bytes:
    """`lines` is text, one log line per YAML line; `raw` is a Python bytes literal for
    what YAML cannot hold (lone CRs, NULs, invalid UTF-8)."""
    if "raw" in spec:
        raw = ast.literal_eval(spec["raw"])
        assert isinstance(raw, bytes), spec["name"]
        return raw
    text: str = spec["lines"]
    return text.encode()


def run(case: Case) -> list[dict[str, Any]]:
    spec = case.spec
    filename = spec.get("filename", f"golden.{case.format}.txt")
    job = Job(
        source_url=f"file:///golden/{filename}",
        fields={"filename": filename},
        tags=(),
        options=FileOptions(format=case.format),
    )
    reference = datetime.fromisoformat(str(spec.get("reference_time", "2013-09-27T23:00:00Z")))
    _, events = parse_events(
        [case_bytes(spec)],
        job,
        WorkerConfig(),
        last_modified=reference,
        decode_stats=DecodeStats(),
        event_stats=EventStats(),
    )
    return [
        {
            "line_number": event.line_number,
            "timestamp": event.timestamp,
            "message": event.message,
            "fields": event.fields,
            "line_count": event.line_count,
        }
        for event in events
    ]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_golden(case: Case) -> None:
    # Only what the golden file spells out is compared, but line_count always: an event
    # written without it is one line.
    expected = [{"line_count": 1, **want} for want in case.spec["events"]]
    for want in expected:
        unknown = set(want) - EVENT_KEYS
        assert not unknown, f"{case.id}: unknown event keys {unknown}"
    got = run(case)
    seen = [{key: have[key] for key in want} for want, have in zip(expected, got, strict=False)]
    assert seen == expected[: len(seen)]
    assert len(got) == len(expected), f"{case.id}: {len(got)} events, expected {len(expected)}"


def test_every_format_has_a_golden_file() -> None:
    from worker.formats import FORMATS

    covered = {case.format for case in CASES}
    assert covered == set(FORMATS)
