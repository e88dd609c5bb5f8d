"""An engine's error object as one line (worker/sinks/engine_errors.py), on answers as
the engines give them."""

from __future__ import annotations

from typing import Any

from worker.sinks.engine_errors import describe

# OpenSearch 3.6's answer to `@timestamp:notadate` (Elasticsearch 8.19's differs only
# in index names and ids, dropped here).
DATE_ERROR: dict[str, Any] = {
    "type": "search_phase_execution_exception",
    "reason": "all shards failed",
    "caused_by": {
        "type": "parse_exception",
        "reason": "failed to parse date field [notadate] with format [strict_date_optional_time"
        "||epoch_millis]: [failed to parse date field [notadate] with format "
        "[strict_date_optional_time||epoch_millis]]",
        "caused_by": {
            "type": "illegal_argument_exception",
            "reason": "failed to parse date field [notadate] with format "
            "[strict_date_optional_time||epoch_millis]",
            "caused_by": {
                "type": "date_time_parse_exception",
                "reason": "Failed to parse with all enclosed parsers",
            },
        },
    },
}


def test_each_cause_is_said_once() -> None:
    assert describe(DATE_ERROR) == (
        "search_phase_execution_exception: all shards failed caused by: parse_exception: "
        "failed to parse date field [notadate] with format "
        "[strict_date_optional_time||epoch_millis] caused by: date_time_parse_exception: "
        "Failed to parse with all enclosed parsers"
    )


def test_a_bracketed_part_that_is_no_repetition_stays() -> None:
    query = {"type": "query_shard_exception", "reason": "Failed to parse query [message:[a TO]"}
    assert describe(query) == "query_shard_exception: Failed to parse query [message:[a TO]"
    other: dict[str, Any] = {
        "type": "x",
        "reason": "a: [b]",
        "caused_by": {"type": "y", "reason": "c"},
    }
    assert describe(other) == "x: a: [b] caused by: y: c"
