"""The worker's log output: text for people, or one JSON object per line for machines.

JSON lines carry `time`, `level`, `logger`, `message` and `pid`, plus every `extra=`
field of the call, so a log pipeline can filter per-job lines by `source_url` or sum
`lines` without parsing messages:

    log.info("%s: done", url, extra={"source_url": url, "lines": 12})
    -> {"time": "2024-05-01T12:00:00.123Z", "level": "INFO", ..., "lines": 12}
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

from worker.errors import one_line

LOG_FORMATS = ("text", "json")
# The pid tells the processes of a `--processes N` pool apart: under systemd they share
# one journal stream, which records only the supervisor's pid.
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(message)s"

# Everything a LogRecord has of its own; any other attribute came in through `extra=`.
_PLAIN_RECORD = logging.LogRecord("", logging.INFO, "", 0, "", None, None)
_RECORD_ATTRIBUTES = frozenset(vars(_PLAIN_RECORD)) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (tracebacks included, escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            # The fixed keys win: a reader must be able to rely on them.
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            return orjson.dumps(entry, default=str).decode()
        except orjson.JSONEncodeError:
            # orjson refuses what json merely stringifies (integers beyond 64 bits, say);
            # a log line must never be lost to its own formatting.
            return json.dumps(entry, default=str, ensure_ascii=False)


def _iso_utc(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Send every log record to stderr in `log_format` ("text" or "json")."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}: {log_format!r}")
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(gear_in_one_line)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # gear logs every packet at INFO; only its warnings interest an operator.
    logging.getLogger("gear").setLevel(logging.WARNING)


def gear_in_one_line(record: logging.LogRecord) -> bool:
    """gear logs a traceback when a Gearman server goes away under it (killed while a
    connection was set up, or restarted before a job's answer: JOB_NOT_FOUND). The worker
    reconnects and the server hands the job out again, so nothing is lost: an operator
    gets one warning line naming the exception, not a traceback that reads like a crash.

    On the handler, not on the "gear" logger: a logger's filters do not see the records
    of its children (gear.Connection.x, gear.Worker.x)."""
    if record.name.startswith("gear.") and record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        record.msg = f"{record.getMessage()} {type(error).__name__}: {one_line(str(error))}"
        record.args = None
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True
