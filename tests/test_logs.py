"""Structured logs (worker/logs.py): the JSON formatter on its own, and the per-job lines
of a running `log-worker --log-format json`."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
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
from worker.logs import TEXT_FORMAT, JsonFormatter, configure_logging


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


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def log_with_traceback(logger: str, message: str, *args: object) -> None:
    try:
        raise IndexError("list index out of range")
    except IndexError:
        logging.getLogger(logger).exception(message, *args)


def test_gear_tracebacks_become_one_warning_line(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("text")
    # What gear logs when a gearmand restarted before a job's answer (JOB_NOT_FOUND).
    log_with_traceback("gear.Worker.host-1", "Exception while handling error packet:")
    log_with_traceback("gear.Connection.host-1", "Exception while connecting to %s", "g1:4730")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith(
        f"WARNING [{os.getpid()}] Exception while handling error packet: "
        "IndexError: list index out of range"
    ), lines[0]
    assert lines[1].endswith(
        "Exception while connecting to g1:4730 IndexError: list index out of range"
    ), lines[1]


def test_our_own_tracebacks_are_kept(
    root_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("text")
    log_with_traceback("worker.gearman_worker", "job crashed")
    err = capsys.readouterr().err
    assert "ERROR" in err and "Traceback (most recent call last)" in err
    assert "IndexError: list index out of range" in err


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
