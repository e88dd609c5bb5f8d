"""What /healthz says (worker/health.py), from a hand-written table of situations; the
endpoint itself, served by a real worker, is tested in tests/test_metrics.py."""

from __future__ import annotations

import pytest

from worker.health import SINK_FRESH_SECONDS, SinkState, assess

NOW = 1000.0

# connections up, expected, sink state -> healthy?, the one line
CASES = [
    (1, 1, SinkState(NOW - 5), True, "ok: 1 of 1 Gearman connections up; sink answered 5 s ago"),
    (3, 4, SinkState(NOW), True, "ok: 3 of 4 Gearman connections up; sink answered 0 s ago"),
    (
        0,
        2,
        SinkState(NOW - 1),
        False,
        "unhealthy: no Gearman connection up (0 of 2)",
    ),
    (1, 1, SinkState(), False, "unhealthy: the sink has not answered yet"),
    (
        1,
        1,
        SinkState(NOW - SINK_FRESH_SECONDS - 12),
        False,
        f"unhealthy: the sink has not answered for {SINK_FRESH_SECONDS + 12:.0f} s",
    ),
    (
        1,
        1,
        SinkState(NOW - 2, "Elasticsearch at http://e:9200 unreachable"),
        False,
        "unhealthy: the sink failed its last check: Elasticsearch at http://e:9200 unreachable",
    ),
    (
        0,
        1,
        SinkState(None, "no such table"),
        False,
        "unhealthy: no Gearman connection up (0 of 1); "
        "the sink failed its last check: no such table",
    ),
]


@pytest.mark.parametrize(("connections", "expected", "sink", "ok", "line"), CASES)
def test_assess(connections: int, expected: int, sink: SinkState, ok: bool, line: str) -> None:
    health = assess(connections, expected, sink, NOW)
    assert health.ok is ok
    assert health.reason == line
