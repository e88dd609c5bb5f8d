"""A data node of a real cluster SIGKILLed in the middle of a load, and started again:
the `log-shipper submit` hook, Debian's gearmand, a real `log-worker` process, the real
HTTP log server, and a private 2-node OpenSearch cluster (tools/engine start --nodes 2).

Why 2 nodes: the smallest cluster that can lose a data node and go on, once every shard
has a copy on each node (sink.replicas: 1, for the log indices and the build index). Node
1 bootstraps the cluster and is its only voting master (tools/engine), so node 2 is the
one a 2-node cluster survives losing; 3 nodes would survive losing any one, at the cost
of one more JVM start in CI. Node 2 is also the first node of the sink's URL, so the
requests the worker sends to it find a dead node and the client must carry them to node
1; the shards node 2 held are promoted to primaries on node 1.

Why OpenSearch: one engine keeps the test's cost to one cluster start; both engines
answered the same node loss the same way when tried by hand (no item refused, only
connection errors on the killed node), and their clients' failover between the nodes of
a URL is tested against both engines in tests/sinks/test_engine.py.

The expected count comes from the file itself (tests.paths.corpus_lines: syslog.txt is
one syslog event, so one document, per line), and every line number of every file must
be found exactly once among the indexed documents.
"""

from __future__ import annotations

import shutil
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.engines import PrivateCluster, build_index_for, index_prefix, private_cluster
from tests.gearmand import Gearmand
from tests.httpserver import serve_directory
from tests.paths import CORPUS, corpus_lines
from tests.test_submit_cli import run_cli
from tests.test_worker_cli import start_worker, wait_for_workers, worker_config
from worker.config import load_config
from worker.sinks import open_sink

ENGINE = "opensearch"
BUILD = {
    "logs/syslog.txt": "os-loganalyze/syslog.txt",  # 25,939 lines, 4 MB
    "logs/screen-c-api.txt": "os-loganalyze/screen-c-api.txt",  # 3,695 lines
}
# The big file's body stops this far in, for STALL seconds: the node is killed while
# the load is under way (documents visible, the rest of the file still to come).
STALL_AFTER = 1024 * 1024
STALL = 6.0
WAIT = 240.0  # a busy machine; the figures, not this bound, say how long it took


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    with private_cluster(ENGINE, nodes=2) as running:
        yield running


def get_json(url: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else orjson.dumps(body)
    request = urllib.request.Request(
        url,
        data=data,
        headers={"Content-Type": "application/json"},
        method="POST" if data else "GET",
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return orjson.loads(answer.read())


def visible(url: str, prefix: str) -> int:
    """Documents of `prefix` that node `url` can count now (after a refresh); none while
    the engine answers 503: an index just created has no started shard yet."""
    try:
        get_json(f"{url}/{prefix}*/_refresh?ignore_unavailable=true&allow_no_indices=true", {})
        answer = get_json(f"{url}/{prefix}*/_count?ignore_unavailable=true&allow_no_indices=true")
    except urllib.error.HTTPError as error:
        if error.code != 503:
            raise
        return 0
    return int(answer["count"])


def line_numbers(url: str, prefix: str) -> Counter[tuple[str, int]]:
    """(filename, line_number) of every indexed document, and how often each is there,
    read with a scroll from node `url` only (its own copies of the shards)."""
    seen: Counter[tuple[str, int]] = Counter()
    body = {"size": 5000, "_source": ["filename", "line_number"], "sort": ["_doc"]}
    page = get_json(f"{url}/{prefix}*/_search?scroll=1m&preference=_only_local", body)
    while page["hits"]["hits"]:
        for hit in page["hits"]["hits"]:
            seen[(hit["_source"]["filename"], hit["_source"]["line_number"])] += 1
        page = get_json(f"{url}/_search/scroll", {"scroll": "1m", "scroll_id": page["_scroll_id"]})
    return seen


def wait_for_green(url: str) -> None:
    answer = get_json(f"{url}/_cluster/health?wait_for_status=green&timeout=120s")
    assert answer["status"] == "green", answer


def in_background(action: Callable[[], None]) -> Callable[[], None]:
    """Run `action` in a thread now; the returned call waits for it and re-raises."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:  # re-raised by the caller's join
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> None:
        thread.join(WAIT)
        assert not thread.is_alive(), f"{action} still running after {WAIT:g}s"
        if failures:
            raise failures[0]

    return join


@pytest.mark.timeout(900)
def test_a_data_node_killed_mid_load_loses_nothing(
    cluster: PrivateCluster, gearmand: Gearmand, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "build"
    for path, source in BUILD.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS / source, root / path)
    expected = {path: corpus_lines(source) for path, source in BUILD.items()}
    assert expected == {"logs/syslog.txt": 25939, "logs/screen-c-api.txt": 3695}
    total = sum(expected.values())
    node1, node2 = cluster.urls
    prefix = index_prefix("e2e")
    hosts = ",".join(url.removeprefix("http://") for url in (node2, node1))  # node 2 first
    sink = {
        "url": f"{ENGINE}+http://{hosts}",
        "index_prefix": prefix,
        "build_index": build_index_for(prefix),
        "replicas": 1,
    }
    build_uuid = uuid.uuid4().hex

    with serve_directory(tmp_path / "srv") as server:
        server.behave("/build/logs/syslog.txt", stall_after=STALL_AFTER, stall=STALL)
        config = worker_config(
            tmp_path,
            [gearmand.address],
            sink=sink,
            fetch={"allow": [server.base_url + "/"], "read_timeout": 4 * STALL},
            log_format="json",
        )
        # One process: the files one after the other, the load lasting as long as can be.
        with start_worker(tmp_path, config, "--processes", "1") as worker:
            wait_for_workers(gearmand, 1)
            hook = ["submit", "--log-url", server.url("build/"), "--log-dir", str(root)]
            hook += ["--build-uuid", build_uuid, "--job-name", "node-loss"]
            result = run_cli(*hook, "--gearman", gearmand.address)
            assert result.returncode == 0, result.stderr

            deadline = time.monotonic() + WAIT
            while not (at_kill := visible(node1, prefix)):
                assert worker.process.poll() is None, worker.text()
                assert time.monotonic() < deadline, f"no document indexed:\n{worker.text()}"
                time.sleep(0.1)
            killed = time.monotonic()
            cluster.kill(2)
            restarted = in_background(cluster.start)

            # Read from node 1 only: node 2 may still be coming back.
            reader = open_sink(f"{ENGINE}+{node1}", load_config(tmp_path / "worker-0.yaml").sink)
            try:
                while (build := reader.get_build(build_uuid)) is None:
                    assert worker.process.poll() is None, worker.text()
                    assert time.monotonic() < deadline + WAIT, f"no build summary:\n{worker.text()}"
                    time.sleep(0.2)
            finally:
                reader.close()
            loaded = time.monotonic()
            restarted()
            wait_for_green(node1)
            recovered = time.monotonic()
            assert worker.stop() == 0, worker.text()

    print(
        f"\nnode loss: {at_kill} of {total} documents visible when node 2 was killed; "
        f"load done {loaded - killed:.1f}s after, node 2 back and the cluster green "
        f"{recovered - killed:.1f}s after"
    )
    assert at_kill < total, "the load was over before the node was killed"
    assert build["files_failed"] == 0 and build["errors"] == [], build
    assert build["file_count"] == len(BUILD)
    assert build["lines"] == total
    assert {f["filename"]: f["status"] for f in build["files"]} == dict.fromkeys(BUILD, "ok")
    every_line = Counter(
        {(path, number): 1 for path, lines in expected.items() for number in range(1, lines + 1)}
    )
    assert visible(node1, prefix) == total
    # Each node's own copies: node 1 held everything while node 2 was away, and node 2
    # has caught up since. Each line once: no document lost, none twice.
    for node in (node1, node2):
        assert line_numbers(node, prefix) == every_line, node
    assert "Traceback" not in worker.text()
