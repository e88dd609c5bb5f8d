"""Prometheus metrics (worker/metrics.py), scraped from a running `log-worker`: a pool's
supervisor summing its children (multiprocess mode), and a single process; /healthz
following the Gearman connections and the sink, and the log lines of lost and regained
Gearman connections."""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.gearmand import Gearmand
from tests.httpserver import LogServer, free_port
from tests.paths import CORPUS
from tests.test_gearmand import connect_client, submit, wait_complete
from tests.test_worker_cli import (
    WAIT,
    WorkerProcess,
    job_for,
    start_worker,
    submit_jobs,
    summary_of,
    wait_for_workers,
    worker_config,
)

CONSOLE = "zuul-jobs-fixture/job-output.txt"  # 3942 bytes; its 50th line ends at byte 3665
STALL = 0.5

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    deadline = time.monotonic() + WAIT
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                text = answer.read().decode()
            break
        except OSError:
            assert time.monotonic() < deadline, "the metrics endpoint never answered"
            time.sleep(0.1)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[("log_indexer_" + name, frozenset(labels.items()))]


def count_lines(data: bytes) -> int:
    assert b"\r" not in data
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def test_pool_metrics_are_the_sum_of_the_children(
    tmp_path: Path, gearmand: Gearmand, server: LogServer
) -> None:
    port = free_port()
    temp = tmp_path / "tmp"
    temp.mkdir()
    # Small reads: the stall below then falls after the pipeline's 50-line format sniff,
    # inside sink.write(), which is what bulk_seconds must not count.
    config = worker_config(
        tmp_path, [gearmand.address], metrics_address="127.0.0.1", fetch={"chunk_bytes": 256}
    )
    args = ["--processes", "2", "--log-format", "json", "--metrics-port", str(port)]
    args += ["--allow", server.url("")]
    raw = (CORPUS / CONSOLE).read_bytes()
    with start_worker(tmp_path, config, *args, env={"TMPDIR": str(temp)}) as pool:
        pool.started_children(2)
        wait_for_workers(gearmand, 2)  # each child has created its metrics
        before = scrape(port)
        for outcome in ("ok", "failed", "bad_job"):
            assert value(before, "jobs_total", outcome=outcome) == 0
        for kind in ("fetch", "sink", "job", "internal"):
            assert value(before, "errors_total", kind=kind) == 0
        assert len(list(temp.iterdir())) == 1  # the children's metric files

        # The same file twice, each stalling near its end: a child busy with one job
        # leaves the other to the other child.
        server.behave(CONSOLE, stall_after=3900, stall=STALL)
        jobs = [job_for(server.url(CONSOLE), f"file-{n}.txt") for n in range(2)]
        summaries = [summary_of(outcome) for outcome in submit_jobs(gearmand.address, jobs)]
        assert len({r["pid"] for r in pool.records() if "indexed" in r}) == 2

        after = scrape(port)
        assert value(after, "jobs_total", outcome="ok") == 2
        assert value(after, "lines_total") == 2 * count_lines(raw)
        assert value(after, "bytes_total") == 2 * len(raw)
        assert value(after, "fetched_bytes_total") == 2 * len(raw)  # not compressed
        assert value(after, "documents_total") == sum(s.indexed for s in summaries) > 0
        assert value(after, "documents_failed_total") == 0
        assert value(after, "job_seconds_count") == 2
        assert value(after, "job_seconds_sum") >= 2 * STALL
        assert value(after, "bulk_seconds_count") == 2
        assert value(after, "bulk_seconds_sum") < STALL  # the sink was not the slow part
        assert value(after, "queue_lag_seconds_count") == 2  # log-shipper sets submitted_at

        [missing] = submit_jobs(gearmand.address, [job_for(server.url("nothing.txt"), "n.txt")])
        assert missing.error is not None and "404" in missing.error
        client = connect_client(gearmand.port)
        try:
            bad = submit(client, {"event": {}})
            wait_complete(bad)
        finally:
            client.shutdown()
        final = scrape(port)
        assert value(final, "jobs_total", outcome="failed") == 1
        assert value(final, "errors_total", kind="fetch") == 1
        assert value(final, "jobs_total", outcome="bad_job") == 1
        assert value(final, "errors_total", kind="job") == 1
        assert value(final, "jobs_total", outcome="ok") == 2
        assert value(final, "lines_total") == 2 * count_lines(raw)

        assert pool.stop() == 0, pool.text()
    assert list(temp.iterdir()) == [], "the metrics directory was left behind"


def test_single_process_serves_its_own_metrics(
    tmp_path: Path, gearmand: Gearmand, server: LogServer
) -> None:
    port = free_port()
    config = worker_config(tmp_path, [gearmand.address], metrics_port=port)
    config["metrics_address"] = "127.0.0.1"
    args = ("--processes", "1", "--allow", server.url(""))
    raw = (CORPUS / CONSOLE).read_bytes()
    with start_worker(tmp_path, config, *args) as worker:
        assert value(scrape(port), "lines_total") == 0
        [outcome] = submit_jobs(gearmand.address, [job_for(server.url(CONSOLE), "x.txt")])
        assert summary_of(outcome).lines == count_lines(raw) == 54
        samples = scrape(port)
        assert value(samples, "lines_total") == 54
        assert value(samples, "jobs_total", outcome="ok") == 1
        assert ("process_cpu_seconds_total", frozenset()) in samples  # the default registry
        assert worker.stop() == 0, worker.text()


# --- /healthz ---------------------------------------------------------------------------


def get(port: int, path: str) -> tuple[int, str]:
    """The status and body of GET `path`, once the server answers at all."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except OSError:
            assert time.monotonic() < deadline, "the metrics endpoint never answered"
            time.sleep(0.1)


def wait_health(port: int, want: Callable[[int, str], bool]) -> tuple[int, str]:
    """/healthz's answer once `want` accepts it (gear reconnects every 2 s)."""
    deadline = time.monotonic() + WAIT
    while True:
        status, body = get(port, "/healthz")
        if want(status, body):
            return status, body
        assert time.monotonic() < deadline, f"/healthz still answers {status} {body!r}"
        time.sleep(0.1)


def warning(worker: WorkerProcess, text: str) -> dict[str, object]:
    return worker.wait_for(lambda r: r["level"] == "WARNING" and text in r["message"])


def test_healthz_follows_the_gearman_connection(
    tmp_path: Path, gearmand: Gearmand, server: LogServer
) -> None:
    port = free_port()
    config = worker_config(tmp_path, [gearmand.address], metrics_port=port)
    gearmand.stop()  # the worker starts with no Gearman server to connect to
    args = ("--processes", "1", "--log-format", "json", "--allow", server.url(""))
    with start_worker(tmp_path, config, *args) as worker:
        status, body = get(port, "/healthz")
        assert status == 503
        assert body == "unhealthy: no Gearman connection up (0 of 1)\n"

        gearmand.start()
        status, body = wait_health(port, lambda status, body: status == 200)
        assert body.startswith("ok: 1 of 1 Gearman connections up; sink answered ")
        assert body.endswith(" s ago\n") and body.count("\n") == 1
        connected = worker.wait_for(lambda r: "connected to Gearman" in r["message"])
        assert connected["level"] == "INFO"  # a first connection is no news
        assert value(scrape(port), "gearman_connections") == 1

        gearmand.stop()
        status, body = wait_health(port, lambda status, body: status == 503)
        assert body == "unhealthy: no Gearman connection up (0 of 1)\n"
        lost = warning(worker, f"lost the connection to Gearman server {gearmand.address}")
        assert lost["gearman"] == gearmand.address
        assert value(scrape(port), "gearman_connections") == 0

        gearmand.start()
        wait_health(port, lambda status, body: status == 200)
        warning(worker, f"reconnected to Gearman server {gearmand.address} after ")
        # Still a worker: the regained connection takes jobs.
        [outcome] = submit_jobs(gearmand.address, [job_for(server.url(CONSOLE), "x.txt")])
        assert summary_of(outcome).lines == 54

        assert get(port, "/") == (404, "not found: try /metrics or /healthz\n")
        assert get(port, "/metricsx")[0] == 404
        assert worker.stop() == 0, worker.text()
    assert "Traceback" not in worker.text()


def test_healthz_is_503_while_the_sink_does_not_answer(tmp_path: Path, gearmand: Gearmand) -> None:
    port = free_port()
    engine = f"elasticsearch+http://indexer:s3cret@127.0.0.1:{free_port()}"  # nothing there
    config = worker_config(tmp_path, [gearmand.address], metrics_port=port)
    config["sink"] = {"url": engine, "install_template": False, "request_timeout": 2.0}
    with start_worker(tmp_path, config, "--processes", "1", "--log-format", "json") as worker:
        wait_for_workers(gearmand, 1)
        status, body = wait_health(port, lambda status, body: "sink" in body)
        assert status == 503
        assert body.startswith("unhealthy: the sink failed its last check: ")
        assert "unreachable" in body
        assert "s3cret" not in body
        assert worker.stop() == 0, worker.text()


def listening_addresses(port: int) -> set[str]:
    """The local addresses of sockets listening on TCP `port` (IPv4), from the kernel."""
    addresses = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            addresses.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return addresses


def test_pool_healthz_counts_the_connections_of_live_children(
    tmp_path: Path, gearmand: Gearmand
) -> None:
    port = free_port()
    config = worker_config(tmp_path, [gearmand.address], metrics_port=port)
    gearmand.stop()
    with start_worker(tmp_path, config, "--processes", "2", "--log-format", "json") as pool:
        first, second = pool.started_children(2)
        status, body = get(port, "/healthz")
        assert (status, body) == (503, "unhealthy: no Gearman connection up (0 of 2)\n")
        # No metrics_address in the configuration: only this host may connect.
        assert listening_addresses(port) == {"127.0.0.1"}

        gearmand.start()
        wait_health(port, lambda status, body: body.startswith("ok: 2 of 2 Gearman connections"))

        # A child killed holding its connection can no longer say it lost it: the
        # supervisor stops counting it, and its replacement counts instead.
        os.kill(first, signal.SIGKILL)
        pool.started_children(3)
        wait_for_workers(gearmand, 2)
        status, body = wait_health(port, lambda status, body: "ok: 2 of 2" in body)
        assert status == 200
        assert value(scrape(port), "gearman_connections") == 2

        gearmand.stop()
        status, body = wait_health(port, lambda status, body: status == 503)
        assert body == "unhealthy: no Gearman connection up (0 of 2)\n"
        for record in [warning(pool, f"lost the connection to Gearman server {gearmand.address}")]:
            assert record["pid"] in {second, *pool.child_pids}
        assert pool.stop() == 0, pool.text()
