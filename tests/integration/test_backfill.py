"""`log-shipper backfill` against real services: a real gearmand, LogWorker threads writing
to each sink (SQLite, Elasticsearch, OpenSearch), log trees served over HTTP, and a small
stand-in for a Zuul tenant's `/builds` API answering from recorded build records.

The recorded builds (tests/data/zuul-api, newest first):

    _id    uuid     job                  pipeline  result        end (UTC)            logs
    81237  074d703  tempest-full         gate      SUCCESS       2026-11-23 08:40:12  full
    81103  b73bdf6  tempest-full         check     SKIPPED       2026-11-22 16:05:41  none (null)
    81102  4f51409  openstack-tox-py311  check     FAILURE       2026-11-22 16:05:40  small
    80954  9fb23cf  tempest-full         check     FAILURE       2026-11-21 14:30:00  full
    80711  09fd79c  nova-next            gate      POST_FAILURE  2026-11-20 10:00:00  404
    80533  0a35783  openstack-tox-pep8   check     SUCCESS       2026-11-19 11:20:00  small
    80391  1ae3a5a  tempest-full         periodic  SUCCESS       2026-11-18 06:10:00  full
    80244  e328a4e  tempest-full         gate      SUCCESS       2026-11-17 19:45:30  full

The first four are in the newer record shape (project, change... in a `ref` object,
pipeline in `buildset`), the others in the older flat one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import urllib3
import yaml

from log_shipper.backfill import Checkpoint
from log_shipper.build_sources import ZuulFilters, builds_from_zuul, parse_time
from log_shipper.cli import main
from tests.engines import build_index_for, index_prefix
from tests.gearmand import Gearmand, queue_status
from tests.httpserver import LogServer, free_port, serve_directory
from tests.integration.conftest import SinkUnderTest
from tests.integration.trees import make_tree
from tests.paths import CORPUS, DATA, REPO, count_lines
from worker.config import SinkConfig, load_config
from worker.errors import ConfigError
from worker.gearman_worker import LogWorker
from worker.job import FUNCTION_NAME
from worker.sinks import open_sink
from worker.sinks.base import Sink
from worker.sinks.engine import template_name

WAIT = 60.0
TENANT = "openstack"
RECORDED_LOG_SERVER = "https://logs.example.org/"  # where the recorded builds' logs live

# Log trees, from corpus files: tempest-full builds have the full one, others the small one.
FULL = {
    "job-output.txt": "zuul-jobs-fixture/job-output.txt",  # 2018-08-01
    "logs/devstack@c-vol.service.log.txt": "os-loganalyze/devstack@c-vol.service.log.txt",
    "logs/screen-c-api.txt": "os-loganalyze/screen-c-api.txt",  # 2013-09-27
}
SMALL = {
    "job-output.txt": "zuul-jobs-fixture/job-output.txt",
    "logs/devstack@c-api.service.log.txt": "os-loganalyze/devstack@c-api.service.log.txt",
}
GONE = "09fd79cfe9d74c1ca71180db5015deca"  # its logs were never uploaded: the root is a 404

REPORT = re.compile(
    r"^builds seen (?P<seen>\d+), skipped (?P<skipped>\d+), submitted (?P<submitted>\d+), "
    r"failed (?P<failed>\d+)(?:, planned (?P<planned>\d+))?; "
    r"lines read (?P<lines>\d+), documents indexed (?P<documents>\d+)$",
    re.MULTILINE,
)


def load_records() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for name in ("builds-nested.json", "builds-flat.json"):
        records += json.loads((DATA / "zuul-api" / name).read_text())
    assert [r["_id"] for r in records] == sorted((r["_id"] for r in records), reverse=True)
    return records


RECORDS = load_records()
BY_UUID = {record["uuid"]: record for record in RECORDS}


def layout_of(record: Mapping[str, Any]) -> dict[str, str] | None:
    if record["log_url"] is None or record["uuid"] == GONE:
        return None
    return FULL if record["job_name"] == "tempest-full" else SMALL


def lines_of(layout: Mapping[str, str]) -> int:
    return sum(count_lines((CORPUS / source).read_bytes()) for source in layout.values())


def derived_uuid(log_root: str) -> str:
    """The uuid of a build known only by its log root (the README's promise)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, log_root.rstrip("/") + "/").hex


def write_manifest(root: Path) -> None:
    """zuul-manifest.json as Zuul's upload-logs role writes it for a build's log root."""

    def node(path: Path) -> dict[str, Any]:
        if path.is_dir():
            children = [node(child) for child in sorted(path.iterdir())]
            return {"name": path.name, "mimetype": "application/directory", "children": children}
        stat = path.stat()
        return {
            "name": path.name,
            "mimetype": "text/plain",
            "encoding": None,
            "last_modified": int(stat.st_mtime),
            "size": stat.st_size,
        }

    manifest = {"tree": [node(child) for child in sorted(root.iterdir())], "index_links": False}
    (root / "zuul-manifest.json").write_text(json.dumps(manifest))


def serve_tree(root: Path, url_path: str, layout: Mapping[str, str]) -> None:
    build = make_tree(root / url_path.strip("/"), dict(layout))
    write_manifest(build)


# --- a stand-in for Zuul's /api/tenant/{tenant}/builds ---------------------------------------


class ZuulApi:
    """Answers `/api/tenant/openstack/builds` from the recorded builds, filtered by the
    query parameters Zuul documents for it (exact matches), newest first, paged with
    limit (default 50) and skip. Log URLs are moved to the test's log server."""

    FILTERS = ("job_name", "project", "pipeline", "branch", "result")

    def __init__(self, records: list[dict[str, Any]], log_server: str) -> None:
        self.records = [
            {**r, "log_url": r["log_url"] and r["log_url"].replace(RECORDED_LOG_SERVER, log_server)}
            for r in records
        ]
        self.requests: list[dict[str, str]] = []
        self.base_url = ""

    @property
    def url(self) -> str:
        return f"{self.base_url}/api/tenant/{TENANT}"

    def log_url(self, build_uuid: str) -> str:
        return str(next(r["log_url"] for r in self.records if r["uuid"] == build_uuid))

    @staticmethod
    def value(record: Mapping[str, Any], name: str) -> Any:
        ref = record.get("ref")
        if name in ("project", "branch"):
            return ref[name] if isinstance(ref, dict) else record.get(name)
        if name == "pipeline":
            return record.get("pipeline") or (record.get("buildset") or {}).get("pipeline")
        return record.get(name)

    def answer(self, query: dict[str, str]) -> list[dict[str, Any]]:
        self.requests.append(query)
        chosen = [
            record
            for record in self.records
            if all(str(self.value(record, k)) == query[k] for k in self.FILTERS if k in query)
        ]
        skip = int(query.get("skip", 0))
        return chosen[skip : skip + int(query.get("limit", 50))]


class _ZuulHandler(BaseHTTPRequestHandler):
    server: _ZuulServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != f"/api/tenant/{TENANT}/builds":
            self._send(404, {"error": "not found"})
            return
        raw = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(raw) - {*ZuulApi.FILTERS, "limit", "skip"}
        if unknown or any(len(values) != 1 for values in raw.values()):
            self._send(400, {"error": f"unsupported query {parts.query}"})
            return
        self._send(200, self.server.api.answer({k: v[0] for k, v in raw.items()}))

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _ZuulServer(ThreadingHTTPServer):
    daemon_threads = True
    api: ZuulApi


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[LogServer]:
    """The recorded builds' log trees (each with its zuul-manifest.json), but the 404 one."""
    root = tmp_path / "log-server"
    for record in RECORDS:
        layout = layout_of(record)
        if layout is not None:
            serve_tree(root, urlsplit(record["log_url"]).path, layout)
    with serve_directory(root) as server:
        yield server


@pytest.fixture
def zuul(logs: LogServer) -> Iterator[ZuulApi]:
    api = ZuulApi(RECORDS, logs.base_url + "/")
    server = _ZuulServer(("127.0.0.1", 0), _ZuulHandler)
    server.api = api
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- the sink, the workers, and running backfill -------------------------------------------


@dataclass
class Store:
    """A sink with this test's own index prefix and build index: the engines are shared by
    every test, and the recorded build uuids are the same in every run."""

    url: str
    config: SinkConfig

    @classmethod
    def fresh(cls, url: str) -> Store:
        prefix = index_prefix()
        build_index = build_index_for(prefix)
        return cls(url, SinkConfig(url=url, index_prefix=prefix, build_index=build_index))

    def open(self) -> Sink:
        return open_sink(self.url, self.config)

    def count(self, query: str = "*") -> int:
        sink = self.open()
        try:
            sink.refresh()
            return sink.count(query)
        finally:
            sink.close()

    def hits(self, query: str, size: int = 100) -> list[dict[str, Any]]:
        sink = self.open()
        try:
            sink.refresh()
            return sink.search(query, size=size).hits
        finally:
            sink.close()

    def build(self, build_uuid: str) -> dict[str, Any] | None:
        sink = self.open()
        try:
            return sink.get_build(build_uuid)
        finally:
            sink.close()

    def write_config(self, path: Path, gearman: str, allow: list[str]) -> Path:
        """worker.yaml for the workers and for `backfill --config`."""
        config = {
            "gearman": [gearman],
            "sink": {
                "url": self.url,
                "index_prefix": self.config.index_prefix,
                "build_index": self.config.build_index,
            },
            "fetch": {"allow": allow, "connect_timeout": 2.0, "retries": 0},
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def drop(self) -> None:
        """Remove this test's indices and template from an engine (not to fill it up)."""
        if self.url.startswith("sqlite:"):
            return
        base = self.url.split("+", 1)[1].rstrip("/")
        http = urllib3.PoolManager()
        prefix = self.config.index_prefix
        answer = http.request("GET", f"{base}/_cat/indices/{prefix}*?format=json&h=index")
        names = [row["index"] for row in orjson.loads(answer.data)] if answer.status == 200 else []
        for name in [*names, self.config.build_index]:
            http.request("DELETE", f"{base}/{name}")
        http.request("DELETE", f"{base}/_index_template/{template_name(prefix)}")


@dataclass
class Run:
    code: int
    out: str
    err: str
    seen: int = 0
    skipped: int = 0
    submitted: int = 0
    failed: int = 0
    planned: int = 0
    lines: int = 0
    documents: int = 0
    report: str = ""

    @classmethod
    def of(cls, code: int, out: str, err: str) -> Run:
        match = REPORT.search(out)
        assert match is not None, f"no report line (exit {code}):\n{out}\n{err}"
        numbers = {k: int(v or 0) for k, v in match.groupdict().items()}
        return cls(code, out, err, report=match.group(0), **numbers)

    def counts(self) -> tuple[int, int, int, int]:
        return self.seen, self.skipped, self.submitted, self.failed

    def progress(self) -> dict[str, str]:
        """Progress lines (stderr, not a terminal): build key -> status."""
        found = re.findall(r"^\[\d+\] (\w+) (\S+) ", self.err, re.MULTILINE)
        return {key: status for status, key in found}


@dataclass
class Env:
    store: Store
    config: Path
    gearmand: Gearmand
    logs: LogServer
    zuul: ZuulApi
    listing_root: Path  # served with directory index pages at listing_url
    listing_url: str
    capsys: pytest.CaptureFixture[str]
    runs: list[Run] = field(default_factory=list)

    def args(self, *args: str) -> list[str]:
        source = [] if {"--builds-file", "--log-root-url"} & set(args) else ["--zuul-api"]
        source += [self.zuul.url] if source else []
        common = ["--config", str(self.config), "--gearman", self.gearmand.address]
        return ["backfill", *source, *common, "--timeout", str(WAIT), *args]

    def backfill(self, *args: str) -> Run:
        self.capsys.readouterr()
        code = main(self.args(*args))
        out, err = self.capsys.readouterr()
        run = Run.of(code, out, err)
        self.runs.append(run)
        return run

    def count_build(self, build_uuid: str) -> int:
        return self.store.count(f"build_uuid:{build_uuid}")


class _QuietDirectoryHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_index_pages(root: Path) -> Iterator[str]:
    """A log server that writes directory index pages (the stdlib's autoindex HTML)."""
    handler = partial(_QuietDirectoryHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def log_workers(config_path: Path, count: int) -> Iterator[None]:
    """`count` real LogWorkers in threads, each with its own sink connection."""
    config = load_config(config_path)
    running: list[tuple[LogWorker, Sink, threading.Thread]] = []
    try:
        for number in range(count):
            sink = open_sink(config.sink.url, config.sink)
            sink.prepare()
            worker = LogWorker(config, sink, name=f"backfill-test-worker-{number}")
            thread = threading.Thread(target=worker.run, name=worker.gearman.client_id)
            thread.daemon = True
            thread.start()
            running.append((worker, sink, thread))
        yield
    finally:
        for worker, _, _ in running:
            worker.stop()
        for worker, sink, thread in running:
            thread.join(timeout=WAIT)
            worker.close()
            sink.close()
    assert not any(thread.is_alive() for _, _, thread in running), "a worker did not stop"


@pytest.fixture
def env(
    sink: SinkUnderTest,
    gearmand: Gearmand,
    logs: LogServer,
    zuul: ZuulApi,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Env]:
    store = Store.fresh(sink.url)
    listing_root = tmp_path / "listing"
    listing_root.mkdir()
    try:
        with serve_index_pages(listing_root) as listing_url:
            allow = [logs.base_url + "/", listing_url + "/"]
            config = store.write_config(tmp_path / "worker.yaml", gearmand.address, allow)
            with log_workers(config, 2):
                yield Env(store, config, gearmand, logs, zuul, listing_root, listing_url, capsys)
    finally:
        store.drop()


def matching(
    since: str | None = None, until: str | None = None, **equal: str
) -> list[dict[str, Any]]:
    """The recorded builds a backfill should index: in [since, until) by end time, equal
    in the given record fields (pipeline read where either shape keeps it), with logs."""
    start = parse_time(since, "since") if since else None
    end = parse_time(until, "until") if until else None
    chosen = []
    for record in RECORDS:
        moment = parse_time(record["end_time"], "end_time")
        if (start and moment < start) or (end and moment >= end) or not record["log_url"]:
            continue
        if all(str(ZuulApi.value(record, k)) == v for k, v in equal.items()):
            chosen.append(record)
    return chosen


def index_date(timestamp: str) -> str:
    return timestamp[:10].replace("-", ".")


# --- a window of Zuul builds ---------------------------------------------------------------


def test_a_window_indexes_exactly_its_builds_then_skips_them_and_force_redoes_them(
    env: Env,
) -> None:
    window = ("--since", "2026-11-18", "--until", "2026-11-23", "--job", "tempest-full")
    builds = matching("2026-11-18", "2026-11-23", job_name="tempest-full")
    # One of each record shape; the skipped build in the window has no logs, so is not seen.
    assert [b["uuid"][:7] for b in builds] == ["9fb23cf", "1ae3a5a"]
    wanted = {b["uuid"] for b in builds}

    first = env.backfill(*window)

    assert first.code == 0, first.out + first.err
    assert first.counts() == (2, 0, 2, 0) and first.planned == 0, first.report
    assert first.lines == lines_of(FULL) * 2
    assert first.documents == env.store.count() > 0
    assert first.progress() == dict.fromkeys(wanted, "indexed")
    assert "FAILED" not in first.out
    for record in RECORDS:
        count = env.count_build(record["uuid"])
        assert (count > 0) == (record["uuid"] in wanted), (record["uuid"], count)
    counts = {build_uuid: env.count_build(build_uuid) for build_uuid in wanted}
    assert sum(counts.values()) == env.store.count()
    assert env.zuul.requests == [{"job_name": "tempest-full", "limit": "100", "skip": "0"}]

    for record in builds:
        build_uuid = record["uuid"]
        summary = env.store.build(build_uuid)
        assert summary is not None and summary["files_failed"] == 0
        assert summary["indexed"] == counts[build_uuid]
        nested = isinstance(record["ref"], dict)
        where = record["ref"] if nested else record
        console = env.store.hits(f'build_uuid:{build_uuid} AND filename:"job-output.txt"')
        assert console
        prefix = env.store.config.index_prefix
        for hit in console:
            assert hit["build_name"] == record["job_name"] == "tempest-full"
            assert hit["build_queue"] == ZuulApi.value(record, "pipeline")
            assert hit["build_status"] == record["result"]
            assert hit["project"] == where["project"]
            assert hit["build_branch"] == where["branch"]
            assert hit.get("build_change") == (where["change"] and str(where["change"]))
            assert hit["build_set"] == record["buildset"]["uuid"]
            assert hit["voting"] == ("1" if record["voting"] else "0")
            assert hit["log_url"] == env.zuul.log_url(build_uuid) + "job-output.txt"
            # The log's own date, not today's, and the daily index of that date.
            assert hit["@timestamp"].startswith("2018-08-01T"), hit["@timestamp"]
            assert hit["_index"] == f"{prefix}2018.08.01", hit["_index"]
        # journald lines carry no year: it comes from the build's end time in the record.
        service = env.store.hits(
            f'build_uuid:{build_uuid} AND filename:"logs/devstack@c-vol.service.log.txt"'
        )
        assert service
        for hit in service:
            assert hit["@timestamp"].startswith(record["end_time"][:4] + "-05-26T"), hit
            assert hit["_index"] == prefix + index_date(hit["@timestamp"])
            assert datetime.fromisoformat(hit["@timestamp"]) < parse_time(record["end_time"], "")

    second = env.backfill(*window)

    assert second.code == 0, second.out + second.err
    assert second.counts() == (2, 2, 0, 0), second.report
    assert (second.lines, second.documents) == (0, 0)
    assert second.progress() == dict.fromkeys(wanted, "skipped")
    assert second.err.count("(fully indexed)") == 2
    assert env.store.count() == sum(counts.values())

    forced = env.backfill(*window, "--force")

    assert forced.code == 0, forced.out + forced.err
    assert forced.counts() == (2, 0, 2, 0), forced.report
    assert forced.lines == first.lines and forced.documents == first.documents
    assert env.store.count() == sum(counts.values())
    assert {build_uuid: env.count_build(build_uuid) for build_uuid in wanted} == counts


def test_a_build_whose_logs_are_gone_fails_alone(env: Env) -> None:
    window = ("--since", "2026-11-19", "--until", "2026-11-21")
    builds = matching("2026-11-19", "2026-11-21")
    assert [b["uuid"] for b in builds] == [GONE, "0a357832624e4e6dbdc28ba2345eeece"]
    indexed = builds[1]

    run = env.backfill(*window)

    assert run.code == 1, run.out + run.err
    assert run.counts() == (2, 0, 1, 1), run.report
    assert run.lines == lines_of(SMALL)
    [failed] = [line for line in run.out.splitlines() if line.startswith("FAILED")]
    assert failed.startswith(f"FAILED {GONE} {env.zuul.log_url(GONE)}: "), failed
    assert "HTTP 404" in failed, failed
    assert run.progress() == {GONE: "failed", indexed["uuid"]: "indexed"}
    assert env.count_build(GONE) == 0
    assert env.count_build(indexed["uuid"]) == env.store.count() == run.documents > 0
    assert env.store.build(GONE) is None

    again = env.backfill(*window)  # the indexed one is skipped, the 404 fails again

    assert again.code == 1
    assert again.counts() == (2, 1, 0, 1), again.report
    assert again.progress() == {GONE: "failed", indexed["uuid"]: "skipped"}


def test_dry_run_lists_the_builds_and_submits_nothing(env: Env) -> None:
    builds = matching(pipeline="check")
    assert len(builds) == 3  # the skipped check build has no log_url

    run = env.backfill("--pipeline", "check", "--dry-run")

    assert run.code == 0, run.out + run.err
    assert run.counts() == (3, 0, 0, 0) and run.planned == 3, run.report
    assert (run.lines, run.documents) == (0, 0)
    assert run.progress() == {b["uuid"]: "planned" for b in builds}
    for record in builds:
        assert env.zuul.log_url(record["uuid"]) in run.err
    assert env.zuul.requests == [{"pipeline": "check", "limit": "100", "skip": "0"}]
    assert queue_status(env.gearmand.port)[FUNCTION_NAME][:2] == (0, 0)
    assert env.store.count() == 0
    assert not [path for path in env.logs.hits if not path.endswith("/zuul-manifest.json")]


# --- resuming ------------------------------------------------------------------------------


def checkpoint_builds(path: Path) -> list[str]:
    """The builds of a checkpoint's complete lines."""
    if not path.exists():
        return []
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]
    return [orjson.loads(line)["build"] for line in complete.splitlines() if line.strip()]


def test_a_killed_backfill_resumes_from_its_checkpoint(env: Env, tmp_path: Path) -> None:
    window = ("--since", "2026-11-21")
    builds = [b["uuid"] for b in matching("2026-11-21")]
    assert len(builds) == 3
    checkpoint = tmp_path / "checkpoint.jsonl"
    slow = ("--max-in-flight", "1", "--max-jobs-per-second", "2")
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    environment = {**os.environ, "PYTHONPATH": path}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "log_shipper.cli",
            *env.args(*window, "--checkpoint", str(checkpoint), *slow),
        ],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + WAIT
        while not checkpoint_builds(checkpoint):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no build finished"
            time.sleep(0.01)
        assert process.poll() is None, "finished before it could be killed"
        process.kill()
        _, killed_err = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == -9
    done = checkpoint_builds(checkpoint)
    assert 1 <= len(done) < len(builds) and set(done) <= set(builds), (done, killed_err)

    resumed = env.backfill(*window, "--checkpoint", str(checkpoint), "--max-in-flight", "1")

    assert resumed.code == 0, resumed.out + resumed.err
    assert resumed.seen == len(builds) and resumed.failed == 0, resumed.report
    assert resumed.skipped >= len(done), resumed.report
    assert resumed.skipped + resumed.submitted == len(builds)
    for build_uuid in done:
        assert resumed.progress()[build_uuid] == "skipped"
    assert resumed.err.count("(in checkpoint)") == len(done)
    recorded = checkpoint_builds(checkpoint)
    assert sorted(recorded) == sorted(builds), recorded  # each build once
    assert checkpoint.read_text().endswith("\n")

    # The same window, indexed in one clean run into a store of its own.
    url = env.store.url
    reference = Store.fresh(
        f"sqlite:{tmp_path / 'reference.db'}" if url.startswith("sqlite:") else url
    )
    try:
        # --sink runs its own Gearman server and workers: the address is never used.
        config = reference.write_config(
            tmp_path / "reference.yaml", "127.0.0.1:1", [env.logs.base_url + "/"]
        )
        clean = env.backfill(*window, "--sink", reference.url, "--config", str(config))
        assert clean.code == 0 and clean.counts() == (3, 0, 3, 0), clean.out + clean.err
        for build_uuid in builds:
            expected = reference.count(f"build_uuid:{build_uuid}")
            assert env.count_build(build_uuid) == expected > 0, build_uuid
        assert env.store.count() == reference.count()
    finally:
        reference.drop()


# --- the other sources ---------------------------------------------------------------------


def test_builds_file_indexes_its_builds_with_their_metadata(env: Env, tmp_path: Path) -> None:
    root = Path(env.logs.root or "")
    serve_tree(root, "/manual/swift-tox/", SMALL)
    serve_tree(root, "/manual/legacy/", FULL)
    described, bare = env.logs.url("manual/swift-tox/"), env.logs.url("manual/legacy/")
    fields = {
        "build_uuid": "5b1e9f3c0d2a4e6b8c7d9e0f1a2b3c4d",
        "build_name": "swift-tox-py311",
        "build_queue": "post",
        "project": "openstack/swift",
    }
    listing = tmp_path / "builds.txt"
    comment = "# builds whose upload was lost in the outage"
    listing.write_text(f"{comment}\n\n{described} {json.dumps(fields)}\n{bare}\n")

    run = env.backfill("--builds-file", str(listing))

    assert run.code == 0, run.out + run.err
    assert run.counts() == (2, 0, 2, 0), run.report
    assert run.lines == lines_of(SMALL) + lines_of(FULL)
    assert run.documents == env.store.count()
    derived = derived_uuid(bare)
    assert run.progress() == {fields["build_uuid"]: "indexed", derived: "indexed"}
    hits = env.store.hits(f"build_uuid:{fields['build_uuid']}")
    assert hits and env.count_build(fields["build_uuid"]) > 0
    for hit in hits:
        assert {k: hit[k] for k in fields} == fields
        assert hit["build_short_uuid"] == fields["build_uuid"][:7]
        assert hit["log_url"].startswith(described)
    hits = env.store.hits(f"build_uuid:{derived}")
    assert hits and env.count_build(derived) > 0
    for hit in hits:
        assert hit["build_short_uuid"] == derived[:7] and "build_name" not in hit
    assert env.count_build(fields["build_uuid"]) + env.count_build(derived) == env.store.count()


def test_log_root_url_finds_every_build_below_it(env: Env) -> None:
    make_tree(env.listing_root / "check/openstack-tox-py311/4c2d9e1", SMALL)
    make_tree(env.listing_root / "periodic/tempest-full/8a7f6e5", FULL)
    (env.listing_root / "gate").mkdir()  # nothing in it
    (env.listing_root / "README.txt").write_text("logs of the CI system\n")
    roots = [
        f"{env.listing_url}/check/openstack-tox-py311/4c2d9e1/",
        f"{env.listing_url}/periodic/tempest-full/8a7f6e5/",
    ]

    run = env.backfill("--log-root-url", env.listing_url + "/")

    assert run.code == 0, run.out + run.err
    assert run.counts() == (2, 0, 2, 0), run.report
    assert run.lines == lines_of(SMALL) + lines_of(FULL)
    assert run.documents == env.store.count() > 0
    uuids = [derived_uuid(root) for root in roots]
    assert run.progress() == dict.fromkeys(uuids, "indexed")
    for root, build_uuid in zip(roots, uuids, strict=True):
        hits = env.store.hits(f'build_uuid:{build_uuid} AND filename:"job-output.txt"')
        assert hits and all(hit["log_url"] == root + "job-output.txt" for hit in hits)
    assert sum(env.count_build(build_uuid) for build_uuid in uuids) == env.store.count()

    again = env.backfill("--log-root-url", env.listing_url + "/")
    assert again.code == 0 and again.counts() == (2, 2, 0, 0), again.report


# --- without a sink --------------------------------------------------------------------------


def test_zuul_pages_stop_at_the_first_page_older_than_since(zuul: ZuulApi) -> None:
    since = parse_time("2026-11-22", "--since")

    builds = list(builds_from_zuul(zuul.url, ZuulFilters(since=since), page_size=3))

    # Page 1: 081237, 81103 (no logs), 81102; page 2 is all older: no page 3 is asked for.
    assert [b.fields["build_uuid"][:7] for b in builds] == ["074d703", "4f51409"]
    assert zuul.requests == [{"limit": "3", "skip": "0"}, {"limit": "3", "skip": "3"}]

    zuul.requests.clear()
    everything = list(
        builds_from_zuul(zuul.url, ZuulFilters(project="openstack/nova"), page_size=3)
    )
    assert [b.fields["build_uuid"] for b in everything] == [
        r["uuid"] for r in RECORDS if ZuulApi.value(r, "project") == "openstack/nova"
    ]
    assert [q["skip"] for q in zuul.requests] == ["0", "3"]


def test_dry_run_needs_no_gearman_server(zuul: ZuulApi, capsys: pytest.CaptureFixture[str]) -> None:
    builds = matching(pipeline="check")
    closed = f"127.0.0.1:{free_port()}"  # nothing listens: a connection attempt would fail

    args = ["--gearman", closed, "--pipeline", "check", "--dry-run"]
    code = main(["backfill", "--zuul-api", zuul.url, *args])
    run = Run.of(code, *capsys.readouterr())

    assert run.code == 0, run.out + run.err
    assert run.counts() == (3, 0, 0, 0) and run.planned == len(builds) == 3, run.report
    assert run.progress() == {b["uuid"]: "planned" for b in builds}
    for record in builds:
        assert f"PLANNED {record['uuid']} {zuul.log_url(record['uuid'])} (" in run.out


def test_a_zuul_record_with_an_unreadable_time_is_one_line_naming_the_build(
    zuul: ZuulApi, capsys: pytest.CaptureFixture[str]
) -> None:
    builds = matching(pipeline="check")
    bad = builds[1]["uuid"]
    next(r for r in zuul.records if r["uuid"] == bad)["end_time"] = "yesterday at noon"

    code = main(["backfill", "--zuul-api", zuul.url, "--dry-run", "--pipeline", "check"])
    run = Run.of(code, *capsys.readouterr())

    assert run.code == 1, run.out + run.err
    assert "Traceback" not in run.err
    [line] = [line for line in run.err.splitlines() if bad in line]
    assert line.startswith(f"[2] failed {bad} "), line
    assert line.endswith(
        "(Zuul API record: end_time: not an ISO-8601 date or time: 'yesterday at noon')"
    ), line
    assert run.progress() == {
        b["uuid"]: "failed" if b["uuid"] == bad else "planned" for b in builds
    }
    assert run.counts() == (3, 0, 0, 1) and run.planned == 2, run.report


def test_a_checkpoint_cut_short_by_a_kill_loses_only_that_line(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.jsonl"
    Checkpoint(path).record("a")
    with path.open("ab") as out:
        out.write(b'{"build": "b", "a')  # killed in the middle of writing a line

    resumed = Checkpoint(path)
    assert resumed.done == {"a"}
    resumed.record("c")
    resumed.record("d")

    assert Checkpoint(path).done == {"a", "c", "d"}
    assert checkpoint_builds(path) == ["a", "c", "d"]


def test_a_damaged_checkpoint_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.jsonl"
    path.write_text('{"build": "a", "at": 1}\nnot json\n{"build": "c", "at": 2}\n')
    with pytest.raises(ConfigError, match=r"checkpoint\.jsonl:2: not a checkpoint line"):
        Checkpoint(path)
