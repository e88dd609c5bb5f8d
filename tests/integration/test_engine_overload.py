"""An overloaded engine (issue 11): a private Elasticsearch node with a write pool of
one thread and a queue of one, `log-worker --processes 4`, 8 files of one build through
Debian gearmand. Back-pressure must slow the workers down instead of failing files or
losing outcomes: every file ok with its exact count, every outcome and the build summary
written. Expected counts come from the generated input.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines import PrivateEngine, private_engine
from tests.gearmand import Gearmand
from tests.httpserver import LogServer, generated_body
from tests.integration.test_engine_outage import (
    WAIT,
    Build,
    assert_indexed_once,
    big_file,
    build,  # noqa: F401 (a fixture)
    config_for,
    logs,  # noqa: F401 (a fixture)
    of_build,
    peak_rss_kib,
    submit_in_background,
)
from tests.paths import count_lines
from tests.test_worker_cli import start_worker, wait_for_workers

FILES = 8
SIZE = 500_000  # bytes per file: about 9,400 lines, 5 bulk requests
OVERLOADED = {"thread_pool.write.size": "1", "thread_pool.write.queue_size": "1"}


@pytest.fixture(scope="module")
def engine() -> Iterator[PrivateEngine]:
    with private_engine("elasticsearch", OVERLOADED) as node:
        yield node


def test_an_overloaded_engine_slows_the_workers_down_and_loses_nothing(
    tmp_path: Path,
    gearmand: Gearmand,
    logs: LogServer,  # noqa: F811
    engine: PrivateEngine,
    build: Build,  # noqa: F811
) -> None:
    config = config_for(engine, gearmand, logs, build)
    names = [f"file-{n}.log" for n in range(FILES)]
    jobs = of_build(build, [big_file(logs, name, SIZE, paced=False) for name in names])
    lines = count_lines(b"".join(generated_body(SIZE)))
    with start_worker(
        tmp_path, config, "--processes", "4", "--allow", logs.base_url + "/"
    ) as worker:
        wait_for_workers(gearmand, 4)
        started = time.monotonic()
        thread, answers = submit_in_background(gearmand, jobs)
        thread.join(timeout=WAIT)
        assert not thread.is_alive(), f"no answer:\n{worker.text()}"
        done = time.monotonic()
        children = worker.started_children(4)
        rss = max(peak_rss_kib(pid) for pid in children)
        rejected = sum("429" in record["message"] for record in worker.records())
        failed = [f"{o.path}: {(o.error or '')[:70]}" for o in answers[0] if not o.ok]
        print(
            f"8 files answered in {done - started:.1f} s; log lines naming 429: {rejected}; "
            f"largest child VmHWM {rss} KiB; failed: {failed}"
        )
        assert_indexed_once(engine, build, answers, dict.fromkeys(names, lines))
