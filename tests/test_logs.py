"""Structured logs (worker/logs.py): the JSON formatter on its own, and the per-job lines
of a running `log-worker --log-format json`."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from tests.gearmand import Gearmand
from tests.httpserver import LogServer
from tests.test_worker_cli import (
    CONSOLE,
    CONSOLE_LINES,
    job_for,
    start_worker,
    submit_jobs,
    summary_of,
    wait_for_workers,
    worker_config,
)
from worker.logs import TEXT_FORMAT, JsonFormatter


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    entry = logging.LogRecord("worker.test", logging.WARNING, __file__, 1, message, args, None)
    entry.__dict__.update(extra)
    return entry


def test_json_line_has_the_fixed_keys_and_the_extra_fields() -> None:
    line = JsonFormatter().format(
        record("%s: %d lines", "http://x/a.txt", 3, source_url="http://x/a.txt", lines=3)
    )
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "worker.test"
    assert entry["message"] == "http://x/a.txt: 3 lines"
    assert entry["source_url"] == "http://x/a.txt" and entry["lines"] == 3
    assert isinstance(entry["pid"], int)
    assert entry["time"].endswith("Z")
    datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
    assert not {"args", "msg", "levelno", "pathname", "created"} & set(entry)


def test_json_line_keeps_fixed_keys_over_extras_and_survives_odd_values() -> None:
    entry = orjson.loads(
        JsonFormatter().format(record("x", level="mine", path=Path("/tmp"), big=2**70))
    )
    assert entry["level"] == "WARNING"
    assert entry["path"] == "/tmp"
    assert entry["big"] == 2**70


def test_json_line_carries_a_traceback_in_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        entry = record("crashed")
        entry.exc_info = sys.exc_info()
    line = JsonFormatter().format(entry)
    assert "\n" not in line
    parsed = orjson.loads(line)
    assert parsed["exception"].startswith("Traceback")
    assert "ValueError: boom" in parsed["exception"]


def test_text_lines_name_the_process() -> None:
    assert "%(process)d" in TEXT_FORMAT


@pytest.mark.parametrize("how", ["option", "config"])
def test_worker_job_lines_are_json_with_their_fields(
    tmp_path: Path, gearmand: Gearmand, server: LogServer, how: str
) -> None:
    config = worker_config(tmp_path, [gearmand.address])
    args = ["--processes", "1", "--allow", server.url("")]
    if how == "option":
        args += ["--log-format", "json"]
    else:
        config["log_format"] = "json"
    with start_worker(tmp_path, config, *args) as worker:
        wait_for_workers(gearmand, 1)
        good, missing = server.url(CONSOLE), server.url("missing.txt")
        outcomes = submit_jobs(gearmand.address, [job_for(good, "a.txt"), job_for(missing, "b")])
        summary = summary_of(outcomes[0])
        assert worker.stop() == 0
    lines = worker.text().splitlines()
    assert lines, "nothing logged"
    entries = [orjson.loads(line) for line in lines]  # every line is JSON
    for entry in entries:
        assert {"time", "level", "logger", "message", "pid"} <= set(entry)
        assert entry["pid"] == worker.process.pid

    [done] = [e for e in entries if e.get("source_url") == good and "lines" in e]
    assert done["level"] == "INFO"
    assert done["logger"] == "worker.gearman_worker"
    assert done["lines"] == summary.lines == CONSOLE_LINES
    assert done["indexed"] == summary.indexed > 0
    assert done["failed"] == 0
    assert done["seconds"] == summary.seconds
    assert done["handle"].startswith("H:")

    [failed] = [e for e in entries if e.get("source_url") == missing and "error" in e]
    assert failed["level"] == "WARNING"
    assert "404" in failed["error"]
    assert failed["handle"].startswith("H:") and failed["handle"] != done["handle"]
    starts = [e for e in entries if e["message"].startswith("job ") and "started" in e["message"]]
    assert {e["source_url"] for e in starts} == {good, missing}
