"""`log-shipper submit`, the job-completion hook, against real services only: a real
gearmand (the `gearmand` fixture), a LogWorker in a thread, the HTTP log server of
tests/httpserver.py, and SQLite. The hook must never fail the CI build: problems are
warnings and exit 0, unless --strict."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gear
import pytest
import yaml

from log_shipper.cli import main
from tests.gearmand import Gearmand, queue_status
from tests.httpserver import LogServer, free_port, make_certificate, serve_directory
from tests.integration.trees import make_tree
from tests.paths import DATA, REPO, corpus_lines
from worker.config import FetchConfig, GearmanTLSConfig, SinkConfig, WorkerConfig
from worker.gearman_worker import LogWorker
from worker.job import FUNCTION_NAME
from worker.sinks import open_sink

INVENTORY = DATA / "zuul" / "inventory.yaml"
WAIT = 20.0

# Files the rules select: small ones, so each test indexes in well under a second.
SELECTED = {
    "job-output.txt.gz": "zuul-jobs-fixture/job-output.txt.gz",
    "logs/devstack@c-api.service.log.txt": "os-loganalyze/devstack@c-api.service.log.txt",
    "logs/devstack@c-vol.service.log.txt": "os-loganalyze/devstack@c-vol.service.log.txt",
}
# devstacklog.txt has lone \r inside lines (progress bars): they are text, not line ends.
WITH_CR = {**SELECTED, "logs/devstacklog.txt.gz": "os-loganalyze/devstacklog.txt.gz"}
# Files the rules skip -> (corpus file copied there, part of the reason printed).
SKIPPED: dict[str, tuple[str, str]] = {
    "job-output.txt": ("zuul-jobs-fixture/job-output.txt", "same file as job-output.txt.gz"),
    "logs/testrepository.subunit": ("ci-log-processing/testrepository.subunit", "excluded"),
    "zuul-info/inventory.yaml": ("zuul-jobs-fixture/job-output.txt", "excluded"),
    "logs/README": ("zuul-jobs-fixture/job-output.txt", "no rule matched"),
}
# Variables from which collect_fields takes build metadata; cleared so that the CI
# running these tests cannot leak its own build into them.
CI_VARIABLE = re.compile(r"(ZUUL|GITHUB|JENKINS|BUILD|GIT|CHANGE|RUNNER)_|JOB_NAME$|NODE_NAME$")


@pytest.fixture(autouse=True)
def no_ci_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if CI_VARIABLE.match(name):
            monkeypatch.delenv(name)


# --- helpers ------------------------------------------------------------------------------


def submit_args(served: tuple[LogServer, Path], *extra: str) -> list[str]:
    """`log-shipper submit` of the served build tree with the Zuul inventory, and `extra`."""
    server, root = served
    return [
        "submit",
        *("--log-url", server.url("build/"), "--log-dir", str(root)),
        *("--zuul-inventory", str(INVENTORY)),
        *extra,
    ]


def tree(root: Path, selected: Mapping[str, str] = SELECTED, skipped: bool = True) -> Path:
    layout = dict(selected)
    if skipped:
        layout.update({path: source for path, (source, _) in SKIPPED.items()})
    return make_tree(root, layout)


def inventory_fields() -> dict[str, Any]:
    """The build fields the inventory gives, read here independently of metadata.py."""
    inventory = yaml.safe_load(INVENTORY.read_text())
    zuul = inventory["all"]["vars"]["zuul"]
    hosts = inventory["all"]["hosts"]
    first = next(iter(hosts))
    return {
        "build_uuid": zuul["build"],
        "build_short_uuid": zuul["build"][:7],
        "build_set": zuul["buildset"],
        "build_name": zuul["job"],
        "build_queue": zuul["pipeline"],
        "build_branch": zuul["branch"],
        "build_change": zuul["change"],
        "build_patchset": zuul["patchset"],
        "build_ref": zuul["ref"],
        "tenant": zuul["tenant"],
        "project": zuul["project"]["name"],
        "voting": "1" if zuul["voting"] else "0",
        "zuul_executor": zuul["executor"]["hostname"],
        "build_node": first,
        "node_provider": hosts[first]["nodepool"]["provider"],
        "build_hostids": [host["nodepool"]["host_id"] for host in hosts.values()],
    }


BUILD_UUID = str(inventory_fields()["build_uuid"])


def report_rows(report: str) -> dict[str, str]:
    """The per-file rows of the report or of the --dry-run listing, by their path."""
    known = set(WITH_CR) | set(SKIPPED)
    rows: dict[str, str] = {}
    for line in report.splitlines():
        words = line.split()
        if len(words) > 1 and words[0] in ("submit", "skip"):
            words = words[1:]
        if words and words[0] in known:
            rows[words[0]] = line
    return rows


def get_build(sink_url: str, build_uuid: str = BUILD_UUID) -> dict[str, Any] | None:
    sink = open_sink(sink_url)
    try:
        return sink.get_build(build_uuid)
    finally:
        sink.close()


def count_documents(sink_url: str) -> int:
    sink = open_sink(sink_url)
    try:
        return sink.count("*")
    finally:
        sink.close()


def wait_for_build(sink_url: str, run_id: str | None = None) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        build = get_build(sink_url)
        if build is not None and (run_id is None or build["run_id"] != run_id):
            return build
        time.sleep(0.1)
    raise AssertionError(f"no build summary for {BUILD_UUID} within {WAIT:g}s")


def assert_summary(build: dict[str, Any], selected: Mapping[str, str]) -> None:
    assert build["type"] == "build"
    assert build["file_count"] == len(selected)
    assert build["files_failed"] == 0, build["errors"]
    assert build["lines"] == sum(corpus_lines(source) for source in selected.values())
    assert sorted(f["filename"] for f in build["files"]) == sorted(
        path.removesuffix(".gz") for path in selected
    )
    for field, value in inventory_fields().items():
        assert build[field] == value, field


@contextmanager
def log_worker(gearmand: Gearmand, sink_url: str, server: LogServer) -> Iterator[LogWorker]:
    """A real LogWorker of gearmand in a thread, fetching from `server`."""
    config = WorkerConfig(
        gearman=(gearmand.address,),
        sink=SinkConfig(url=sink_url),
        fetch=FetchConfig(allow=(server.base_url + "/",), connect_timeout=2.0, retries=0),
    )
    sink = open_sink(sink_url, config.sink)
    sink.prepare()
    worker = LogWorker(config, sink, name="submit-test-worker")
    thread = threading.Thread(target=worker.run, name="submit-test-worker", daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=WAIT)
        worker.close()
        sink.close()
    assert not thread.is_alive(), "the worker did not stop"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LogServer, Path]]:
    """An HTTP log server, and the build tree it serves at /build/."""
    root = tmp_path / "srv"
    build = tree(root / "build")
    with serve_directory(root) as server:
        yield server, build


def clean_environment() -> dict[str, str]:
    """An environment with no CI variables: nothing gives build metadata."""
    env = {name: value for name, value in os.environ.items() if not CI_VARIABLE.match(name)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "log_shipper.cli", *args],
        cwd=REPO,
        env=clean_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    process = start_cli(*args)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(f"log-shipper {args} hung:\n{stdout}\n{stderr}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def interrupt(
    process: subprocess.Popen[str],
    ready: Callable[[], bool],
    act: Callable[[], None],
    within: float = WAIT,
) -> subprocess.CompletedProcess[str]:
    """Once `ready()` (within `within` seconds) while `process` runs, `act()`; then the
    process's end (killed if it does not end within WAIT seconds, which fails the test)."""
    try:
        deadline = time.monotonic() + within
        while not ready():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"{ready.__name__}: never within {within:g}s"
            time.sleep(0.02)
        act()
        stdout, stderr = process.communicate(timeout=WAIT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


# --- dry run ------------------------------------------------------------------------------


def test_dry_run_lists_every_file_with_its_fate_and_submits_nothing(
    gearmand: Gearmand, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tree(tmp_path / "logs")

    code = main(
        [
            "submit", "--dry-run",
            "--log-url", "https://logs.example.org/build/",
            "--log-dir", str(root),
            "--zuul-inventory", str(INVENTORY),
            "--gearman", gearmand.address,
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()

    assert code == 0, err
    assert err == ""
    assert f"build {BUILD_UUID}: {len(SELECTED)} files" in out
    rows = report_rows(out)
    assert set(rows) == set(SELECTED) | set(SKIPPED), out
    assert len(out.splitlines()) == 1 + len(SELECTED) + len(SKIPPED), out
    for path in SELECTED:
        assert rows[path].split()[0] == "submit", rows[path]
    for path, (_, reason) in SKIPPED.items():
        assert rows[path].split()[0] == "skip", rows[path]
        assert reason in rows[path], rows[path]
    assert queue_status(gearmand.port).get(FUNCTION_NAME, (0, 0, 0))[:2] == (0, 0)


# --- the build is never failed ------------------------------------------------------------


@pytest.mark.parametrize("strict", [False, True])
def test_missing_job_name_is_one_warning_line_or_exit_2_with_strict(
    tmp_path: Path, strict: bool
) -> None:
    root = tree(tmp_path / "logs", skipped=False)
    closed = free_port()  # never reached: metadata is checked first
    args = ["submit", "--log-url", f"http://127.0.0.1:{closed}/build/", "--log-dir", str(root)]
    args += ["--gearman", f"127.0.0.1:{closed}", "--connect-timeout", "1"]

    result = run_cli(*args, *(["--strict"] if strict else []))

    assert result.returncode == (2 if strict else 0), result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    level = "error" if strict else "warning"
    assert line.startswith(f"log-shipper submit: {level}: missing build metadata"), line
    assert "build_name" in line and "--job-name" in line
    assert "build_uuid" not in line  # derived from the log root


# Peers that are not a working Gearman server, each a real listener on 127.0.0.1 (or a
# name that cannot resolve), and a word of the one line that must explain it.
def _ssh_banner(conn: socket.socket) -> None:
    conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")


def _http_answer(conn: socket.socket) -> None:
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


def _silent(conn: socket.socket) -> None:
    pass


PEERS: dict[str, tuple[Any, str]] = {
    "closed port": (None, "connection refused"),
    "unresolvable name": ("nonexistent.invalid", "cannot resolve 'nonexistent.invalid'"),
    "ssh banner": (_ssh_banner, "not a Gearman server (it answered b'SSH-2.0-Open"),
    "http answer": (_http_answer, "not a Gearman server (it answered b'HTTP/1.1 400"),
    "silent": (_silent, "accepted the connection but gave no Gearman answer"),
}


@contextmanager
def listener(greet: Any) -> Iterator[int]:
    """A TCP server on a free port: each connection gets `greet(conn)`, then is held open
    (its input read and dropped) until the server stops; yields the port."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            greet(conn)
            while conn.recv(4096):
                pass

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                held.append(conn)
                threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        server.close()
        for conn in held:
            conn.close()


@contextmanager
def peer(kind: str) -> Iterator[str]:
    behaviour, _ = PEERS[kind]
    if behaviour is None:
        yield f"127.0.0.1:{free_port()}"
    elif isinstance(behaviour, str):
        yield f"{behaviour}:4730"
    else:
        with listener(behaviour) as port:
            yield f"127.0.0.1:{port}"


def assert_one_line(result: subprocess.CompletedProcess[str], strict: bool) -> str:
    """The hook's failure contract: one stderr line, no traceback, a small output."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert len(result.stderr) < 1000 and len(result.stdout) < 2000, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith(f"log-shipper submit: {'error' if strict else 'warning'}: "), line
    return line


@pytest.mark.timeout(60)  # the command's bound: it returns, whatever the peer does
@pytest.mark.parametrize("strict", [False, True])
@pytest.mark.parametrize("kind", list(PEERS))
def test_no_gearman_server_is_one_warning_line_or_exit_2_with_strict(
    tmp_path: Path, kind: str, strict: bool
) -> None:
    root = tree(tmp_path / "logs", skipped=False)
    with peer(kind) as address:
        args = ["submit", "--log-url", "https://logs.example.org/build/", "--log-dir", str(root)]
        args += ["--gearman", address, "--connect-timeout", "2", "--job-name", "j"]

        result = run_cli(*args, *(["--strict"] if strict else []))

    assert result.returncode == (2 if strict else 0), result.stderr
    assert result.stdout == ""
    line = assert_one_line(result, strict)
    assert "no Gearman server reachable within 2s" in line, line
    assert f"{address}: {PEERS[kind][1]}" in line, line


# --- a real gearmand and a worker elsewhere: failures ---------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("strict", [False, True])
def test_gearmand_killed_while_submitting_is_one_warning_line(
    gearmand: Gearmand, tmp_path: Path, strict: bool
) -> None:
    files = 4000  # enough to be submitting still when gearmand is killed
    root = tmp_path / "build"
    (root / "logs").mkdir(parents=True)
    for number in range(files):
        (root / "logs" / f"screen-n-{number}.txt").write_text("one line\n")
    process = start_cli(
        "submit",
        *("--log-url", "https://logs.example.org/build/", "--log-dir", str(root)),
        *("--gearman", gearmand.address, "--connect-timeout", "2", "--job-name", "j"),
        *(["--strict"] if strict else []),
    )

    def submitting() -> bool:
        return queue_status(gearmand.port).get(FUNCTION_NAME, (0, 0, 0))[0] > 0

    result = interrupt(process, submitting, gearmand.kill, within=60.0)  # a busy machine

    stdout = result.stdout
    assert result.returncode == (1 if strict else 0), result.stderr
    queued = re.fullmatch(rf"(\d+) of {files} files queued for build \w+\n", stdout)
    assert queued is not None, stdout
    lost = files - int(queued.group(1))
    assert 0 < lost < files, stdout  # killed while submitting, not before or after
    line = assert_one_line(result, strict)
    assert f": {lost} of {files} files not indexed: not submitted: " in line, line
    assert " more)" in line, line


@pytest.mark.timeout(60)
@pytest.mark.parametrize("strict", [False, True])
def test_wait_with_no_worker_gives_up_after_the_timeout_with_one_warning_line(
    gearmand: Gearmand, served: tuple[LogServer, Path], strict: bool
) -> None:
    args = submit_args(served, "--gearman", gearmand.address, "--wait", "--timeout", "1")

    result = run_cli(*args, *(["--strict"] if strict else []))

    assert result.returncode == (1 if strict else 0), result.stderr
    line = assert_one_line(result, strict)
    n = len(SELECTED)
    assert f": {n} of {n} files not indexed: no answer within 1s (" in line, line
    assert line.endswith(f" and {n - 1} more)"), line
    rows = report_rows(result.stdout)
    for path in SELECTED:
        assert rows[path].endswith("FAILED: no answer within 1s"), rows[path]


def test_help_states_the_time_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["submit", "--help"])
    text = " ".join(capsys.readouterr().out.split())

    assert "given up after --connect-timeout seconds" in text
    assert "--wait waits at most --timeout seconds" in text
    wait = "--wait: give up on a file not answered within SECONDS seconds of its submission"
    assert f"{wait} (default: 600)" in text
    assert "not taking a job, within SECONDS seconds (default: 10)" in text


# --- in-process worker (--sink) -----------------------------------------------------------


def test_submit_to_a_sink_indexes_the_tree_and_writes_the_build_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tree(tmp_path / "logs", WITH_CR)
    sink_url = f"sqlite:{tmp_path / 'logs.db'}"

    code = main(
        ["submit", "--sink", sink_url, "--log-dir", str(root), "--zuul-inventory", str(INVENTORY)]
    )
    out, err = capsys.readouterr()

    assert code == 0, err
    assert err == ""
    rows = report_rows(out)
    for path, source in WITH_CR.items():
        assert rows[path].endswith(" ok"), rows[path]
        assert int(rows[path].split()[2]) == corpus_lines(source), rows[path]
    for path in SKIPPED:
        assert "skipped:" in rows[path], rows[path]
    assert f"{len(WITH_CR)} files submitted, 0 failed, {len(SKIPPED)} skipped" in out
    assert count_documents(sink_url) > 0

    build = get_build(sink_url)
    assert build is not None
    assert_summary(build, WITH_CR)
    assert build["indexed"] == count_documents(sink_url)


# --- a real gearmand and a worker elsewhere -----------------------------------------------


def test_submit_wait_reports_every_file_and_a_second_run_replaces_the_first(
    gearmand: Gearmand,
    served: tuple[LogServer, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, _ = served
    sink_url = f"sqlite:{tmp_path / 'logs.db'}"
    args = submit_args(served, "--gearman", gearmand.address, "--wait", "--timeout", str(WAIT))

    with log_worker(gearmand, sink_url, server):
        assert main(args) == 0
        out, err = capsys.readouterr()
        assert err == ""
        rows = report_rows(out)
        for path, source in SELECTED.items():
            assert rows[path].endswith(" ok"), rows[path]
            assert int(rows[path].split()[2]) == corpus_lines(source), rows[path]
            assert server.hits[f"/build/{path}"] == 1
        for path in SKIPPED:
            assert server.hits[f"/build/{path}"] == 0  # listed locally, never fetched
        first = get_build(sink_url)
        assert first is not None
        assert_summary(first, SELECTED)
        documents = count_documents(sink_url)
        assert documents == first["indexed"] > 0

        assert main(args) == 0
        out, err = capsys.readouterr()
        assert err == "" and f"{len(SELECTED)} files submitted, 0 failed" in out

    second = get_build(sink_url)
    assert second is not None
    assert_summary(second, SELECTED)
    assert second["run_id"] != first["run_id"]
    assert second["finished"] >= first["finished"]
    assert count_documents(sink_url) == documents


def test_background_submit_returns_at_once_and_gearmand_keeps_the_jobs(
    gearmand: Gearmand,
    served: tuple[LogServer, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, _ = served
    sink_url = f"sqlite:{tmp_path / 'logs.db'}"
    args = submit_args(served, "--gearman", gearmand.address)

    started = time.monotonic()
    code = main(args)  # no worker exists yet: waiting would never end
    out, err = capsys.readouterr()

    assert code == 0, err
    assert time.monotonic() - started < 10
    n = len(SELECTED)
    assert out.strip() == f"{n} of {n} files queued for build {BUILD_UUID}"
    assert queue_status(gearmand.port)[FUNCTION_NAME] == (n, 0, 0)
    assert sum(server.hits.values()) == 0

    with log_worker(gearmand, sink_url, server):
        build = wait_for_build(sink_url)
    assert_summary(build, SELECTED)
    assert queue_status(gearmand.port)[FUNCTION_NAME][:2] == (0, 0)
    assert count_documents(sink_url) == build["indexed"] > 0


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_gearmand_going_away_during_a_wait_is_a_warning_not_a_hang(
    gearmand: Gearmand, served: tuple[LogServer, Path], tmp_path: Path, how: str
) -> None:
    server, root = served
    slow = "logs/devstack@c-vol.service.log.txt"
    server.behave(f"/build/{slow}", delay=3.0)
    sink_url = f"sqlite:{tmp_path / 'logs.db'}"

    with log_worker(gearmand, sink_url, server):
        process = start_cli(
            "submit", "--wait",
            "--log-url", server.url("build/"),
            "--log-dir", str(root),
            "--gearman", gearmand.address,
            "--zuul-inventory", str(INVENTORY),
        )  # fmt: skip

        def worker_has_the_slow_job() -> bool:
            return server.hits[f"/build/{slow}"] > 0

        stop = gearmand.kill if how == "kill" else gearmand.stop
        result = interrupt(process, worker_has_the_slow_job, stop)

    assert result.returncode == 0, result.stderr
    line = assert_one_line(result, strict=False)
    assert "the Gearman server went away before the job finished" in line, line
    assert "FAILED: the Gearman server went away" in report_rows(result.stdout)[slow]


def test_submit_over_tls_to_a_tls_gearman_server(
    served: tuple[LogServer, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Debian's gearmand has no TLS (tests/test_gearmand.py); gear's own server does and
    # refuses clients without a certificate of its CA. One self-signed certificate plays
    # the CA, the server and both clients.
    server, _ = served
    cert, key = make_certificate(tmp_path)
    gearman = gear.Server(
        port=0, host="127.0.0.1", ssl_key=str(key), ssl_cert=str(cert), ssl_ca=str(cert)
    )
    address = f"127.0.0.1:{gearman.port}"
    tls = GearmanTLSConfig(key=str(key), cert=str(cert), ca=str(cert))
    sink_url = f"sqlite:{tmp_path / 'logs.db'}"
    config = WorkerConfig(
        gearman=(address,),
        gearman_tls=tls,
        sink=SinkConfig(url=sink_url),
        fetch=FetchConfig(allow=(server.base_url + "/",), connect_timeout=2.0, retries=0),
    )
    config_file = tmp_path / "submit.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "gearman": [address],
                "gearman_tls": {"key": str(key), "cert": str(cert), "ca": str(cert)},
            }
        )
    )
    sink = open_sink(sink_url, config.sink)
    worker = LogWorker(config, sink, name="tls-worker")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        args = submit_args(
            served, "--config", str(config_file), "--wait", "--strict", "--timeout", str(WAIT)
        )
        assert main(args) == 0
        out, _ = capsys.readouterr()
        assert f"{len(SELECTED)} files submitted, 0 failed" in out
        assert {c.ssl_subject for c in gearman.active_connections} == {"127.0.0.1"}
        assert count_documents(sink_url) > 0
    finally:
        worker.stop()
        thread.join(timeout=WAIT)
        worker.close()
        sink.close()
        gearman.shutdown()
