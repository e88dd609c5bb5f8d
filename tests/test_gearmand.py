"""gear's Client and Worker against a real gearmand (Debian's gearman-job-server), and the
places where gear's own in-process Server behaves differently.

What production relies on and these tests pin down:
- a foreground job's WORK_COMPLETE, and our WORK_DATA(reason) + WORK_FAIL answer, reach
  the client through gearmand;
- background jobs survive a gearmand restart or crash (libsqlite3 queue) and are then
  handed out exactly once;
- a job whose worker dies is handed to another worker by gearmand; gear.Server instead
  fails it;
- Debian's gearmand is built without TLS: `--ssl` is accepted and ignored. gear.Server
  does TLS with client certificates.
"""

from __future__ import annotations

import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path

import gear
import orjson
import pytest

from tests.gearmand import Gearmand, queue_status
from worker.config import SinkConfig, WorkerConfig
from worker.gearman_worker import LogWorker
from worker.job import FUNCTION_NAME
from worker.sinks import open_sink

# gear builds its TLS contexts with ssl.PROTOCOL_TLS and ssl.OP_NO_TLSv1_3, both
# deprecated since Python 3.10.
pytestmark = pytest.mark.filterwarnings(r"ignore:ssl\.:DeprecationWarning:gear")

WAIT = 10.0


def connect_client(port: int, **tls: str) -> gear.Client:
    client = gear.Client("test-client")
    client.addServer("127.0.0.1", port, **tls)
    client.waitForServer(timeout=WAIT)
    return client


def connect_worker(port: int, name: str = "test-worker", **tls: str) -> gear.Worker:
    worker = gear.Worker(name)
    worker.addServer("127.0.0.1", port, **tls)
    worker.waitForServer(timeout=WAIT)
    worker.registerFunction(FUNCTION_NAME)
    return worker


def next_job(worker: gear.Worker, timeout: float = WAIT) -> gear.WorkerJob | None:
    """The next job assigned to `worker`, or None if none came within `timeout`.

    gear's getJob() has no timeout of its own, so it runs in a thread that is
    interrupted if nothing arrives.
    """
    taken: list[gear.WorkerJob] = []

    def take() -> None:
        with suppress(gear.InterruptedError):
            taken.append(worker.getJob())

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        worker.stopWaitingForJobs()
        thread.join(WAIT)
    return taken[0] if taken else None


def wait_complete(job: gear.Job, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not job.complete:
        assert time.monotonic() < deadline, f"no answer to job {job.handle!r}"
        time.sleep(0.02)


def submit(
    client: gear.Client, arguments: Mapping[str, object], *, unique: bool = True, **options: bool
) -> gear.Job:
    """Like log_shipper/submit.py, a fresh unique key per job (see the test of None)."""
    key = uuid.uuid4().hex if unique else None
    job = gear.Job(FUNCTION_NAME, orjson.dumps(arguments), unique=key)
    client.submitJob(job, timeout=WAIT, **options)
    return job


# --- foreground jobs --------------------------------------------------------------------


def test_work_complete_reaches_the_client(gearmand: Gearmand) -> None:
    client = connect_client(gearmand.port)
    worker = connect_worker(gearmand.port)
    try:
        job = submit(client, {"source_url": "https://logs.example.org/a.txt"})
        taken = next_job(worker)
        assert taken is not None
        assert orjson.loads(taken.arguments) == {"source_url": "https://logs.example.org/a.txt"}
        taken.sendWorkComplete(b'{"lines": 3}')
        wait_complete(job)
        assert not job.failure
        assert b"".join(job.data) == b'{"lines": 3}'
    finally:
        worker.shutdown()
        client.shutdown()


def test_log_worker_failure_reaches_the_client_with_its_reason(
    gearmand: Gearmand, tmp_path: Path
) -> None:
    # The real LogWorker, so its WORK_DATA + WORK_FAIL answer is what goes through gearmand.
    config = WorkerConfig(
        gearman=(gearmand.address,), sink=SinkConfig(url=f"sqlite:{tmp_path / 'logs.db'}")
    )
    sink = open_sink(config.sink.url, config.sink)
    sink.prepare()
    log_worker = LogWorker(config, sink, name="test-log-worker")
    thread = threading.Thread(target=log_worker.run, daemon=True)
    thread.start()
    client = connect_client(gearmand.port)
    try:
        job = submit(client, {"event": {}})
        wait_complete(job)
        assert job.failure
        assert b"".join(job.data) == b"bad job: job has no source_url"
    finally:
        client.shutdown()
        log_worker.stop()
        thread.join(WAIT)
        log_worker.close()
        sink.close()
    assert not thread.is_alive()


def test_two_gearmands_on_one_host_give_out_the_same_handles(
    gearmand: Gearmand, tmp_path: Path
) -> None:
    # Why log_shipper/submit.py tracks the jobs of a lost server by job, not by handle.
    other = Gearmand(tmp_path / "other")
    other.start()
    handles = []
    try:
        for server in (gearmand, other):
            client = connect_client(server.port)
            try:
                handles.append(submit(client, {"source_url": "x"}, background=True).handle)
            finally:
                client.shutdown()
    finally:
        other.stop()
    assert handles[0] == handles[1], handles


# --- persistence ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_background_jobs_survive_a_restart_and_run_once(gearmand: Gearmand, how: str) -> None:
    client = connect_client(gearmand.port)
    sent = [{"source_url": f"https://logs.example.org/{n}.txt"} for n in range(20)]
    try:
        for arguments in sent:
            submit(client, arguments, background=True)
    finally:
        client.shutdown()
    assert queue_status(gearmand.port)[FUNCTION_NAME] == (len(sent), 0, 0)

    # SIGKILL too: the libsqlite3 queue writes each job as it is submitted, so nothing
    # depends on gearmand shutting down cleanly (--store-queue-on-shutdown is not used).
    gearmand.kill() if how == "kill" else gearmand.stop()
    gearmand.start()
    assert queue_status(gearmand.port)[FUNCTION_NAME] == (len(sent), 0, 0)

    worker = connect_worker(gearmand.port)
    received: list[dict[str, str]] = []
    try:
        for _ in sent:
            job = next_job(worker)
            assert job is not None, f"only {len(received)} of {len(sent)} jobs came back"
            received.append(orjson.loads(job.arguments))
            job.sendWorkComplete(b"{}")
        assert next_job(worker, timeout=0.5) is None, "a job was handed out twice"
    finally:
        worker.shutdown()
    assert sorted(received, key=str) == sorted(sent, key=str)
    assert queue_status(gearmand.port).get(FUNCTION_NAME, (0, 0, 0))[:2] == (0, 0)
    with closing(sqlite3.connect(gearmand.queue_db)) as db:
        assert db.execute("SELECT count(*) FROM gearman_queue").fetchone() == (0,)


def test_a_foreground_job_does_not_survive_a_kill(gearmand: Gearmand) -> None:
    # Why log_shipper/submit.py gives a waited-for job to another server when its own
    # goes away: the queue database keeps background jobs only.
    client = connect_client(gearmand.port)
    try:
        submit(client, {"source_url": "https://logs.example.org/a.txt"})
        assert queue_status(gearmand.port)[FUNCTION_NAME][0] == 1
        gearmand.kill()
        gearmand.start()
        assert queue_status(gearmand.port).get(FUNCTION_NAME, (0, 0, 0))[0] == 0
    finally:
        client.shutdown()


def test_background_jobs_without_unique_key_overwrite_each_other_in_the_queue_db(
    gearmand: Gearmand,
) -> None:
    # gear sends an empty unique key unless given one, and the libsqlite3 queue's primary
    # key is (unique_key, function_name): every job replaces the previous one on disk
    # while gearmand's memory still holds them all. Only the last survives a restart.
    client = connect_client(gearmand.port)
    try:
        for n in range(3):
            submit(client, {"n": n}, unique=False, background=True)
    finally:
        client.shutdown()
    assert queue_status(gearmand.port)[FUNCTION_NAME] == (3, 0, 0)
    with closing(sqlite3.connect(gearmand.queue_db)) as db:
        assert db.execute("SELECT unique_key, data FROM gearman_queue").fetchall() == [
            ("", b'{"n":2}')
        ]
    gearmand.restart()
    assert queue_status(gearmand.port)[FUNCTION_NAME] == (1, 0, 0)


# --- a worker dying with a job ----------------------------------------------------------

# A worker in its own process, so that it can really die: it reports the job it took on
# stdout and then waits to be killed, never answering.
DYING_WORKER = """
import sys, time, gear
worker = gear.Worker("dying-worker")
worker.addServer("127.0.0.1", int(sys.argv[1]))
worker.waitForServer(timeout=10)
worker.registerFunction(sys.argv[2])
print("registered", flush=True)
job = worker.getJob()
print(job.arguments.decode(), flush=True)
time.sleep(600)
"""


@dataclass
class DyingWorker:
    process: subprocess.Popen[str]

    def readline(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the dying worker exited early"
        return line.strip()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(WAIT)


@pytest.fixture
def dying_worker() -> Iterator[Callable[[int], DyingWorker]]:
    """Starts DyingWorkers on a port; kills whatever is left of them afterwards."""
    started: list[DyingWorker] = []

    def start(port: int) -> DyingWorker:
        process = subprocess.Popen(
            [sys.executable, "-c", DYING_WORKER, str(port), FUNCTION_NAME],
            stdout=subprocess.PIPE,
            text=True,
        )
        running = DyingWorker(process)
        started.append(running)
        assert running.readline() == "registered"
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            running.kill()
        if running.process.stdout is not None:
            running.process.stdout.close()


def wait_for_worker(port: int) -> None:
    """Until gearmand counts a worker for the function: registering is asynchronous."""
    deadline = time.monotonic() + WAIT
    while queue_status(port).get(FUNCTION_NAME, (0, 0, 0))[2] < 1:
        assert time.monotonic() < deadline, "the worker never registered"
        time.sleep(0.02)


def test_gearmand_gives_a_dead_workers_job_to_another_worker(
    gearmand: Gearmand, dying_worker: Callable[[int], DyingWorker]
) -> None:
    first = dying_worker(gearmand.port)
    wait_for_worker(gearmand.port)
    client = connect_client(gearmand.port)
    second = None
    try:
        job = submit(client, {"source_url": "https://logs.example.org/x.txt"})
        assert orjson.loads(first.readline()) == {"source_url": "https://logs.example.org/x.txt"}
        assert queue_status(gearmand.port)[FUNCTION_NAME] == (1, 1, 1)
        first.kill()

        second = connect_worker(gearmand.port, name="second-worker")
        taken = next_job(second)
        assert taken is not None, "gearmand did not hand the job out again"
        assert taken.handle == job.handle
        assert not job.complete, "the client heard of the first worker's death"
        taken.sendWorkComplete(b'{"by": "second"}')
        wait_complete(job)
        assert not job.failure
        assert b"".join(job.data) == b'{"by": "second"}'
    finally:
        if second is not None:
            second.shutdown()
        client.shutdown()


def test_gearmand_job_retries_gives_up_on_a_job_that_kills_its_workers(
    tmp_path: Path, dying_worker: Callable[[int], DyingWorker]
) -> None:
    # config/systemd/gearmand.service sets --job-retries so that a log file that crashes
    # every worker (out of memory, say) is dropped after a few tries, not retried forever.
    server = Gearmand(tmp_path / "gearmand-retries", options=["--job-retries", "2"])
    server.start()
    client = None
    try:
        first = dying_worker(server.port)
        wait_for_worker(server.port)
        client = connect_client(server.port)
        job = submit(client, {"source_url": "https://logs.example.org/huge.txt"})
        first.readline()
        first.kill()
        second = dying_worker(server.port)
        second.readline()
        assert not job.complete
        second.kill()
        wait_complete(job)
        assert job.failure
        assert job.data == []
        assert queue_status(server.port)[FUNCTION_NAME][:2] == (0, 0)
    finally:
        if client is not None:
            client.shutdown()
        server.stop()


def test_gear_server_fails_a_dead_workers_job_instead(
    dying_worker: Callable[[int], DyingWorker],
) -> None:
    # gear.Server answers WORK_FAIL (no data) to the client and forgets the job: it is not
    # a drop-in for gearmand where a worker can die mid-job.
    server = gear.Server(port=0, host="127.0.0.1")
    client = second = None
    try:
        first = dying_worker(server.port)
        deadline = time.monotonic() + WAIT
        while not any(FUNCTION_NAME.encode() in c.functions for c in server.active_connections):
            assert time.monotonic() < deadline, "the worker never registered"
            time.sleep(0.02)
        client = connect_client(server.port)
        job = submit(client, {"source_url": "https://logs.example.org/x.txt"})
        first.readline()
        first.kill()
        wait_complete(job)
        assert job.failure
        assert job.data == []

        second = connect_worker(server.port, name="second-worker")
        assert next_job(second, timeout=1.0) is None
    finally:
        if second is not None:
            second.shutdown()
        if client is not None:
            client.shutdown()
        server.shutdown()


# --- TLS --------------------------------------------------------------------------------


@dataclass
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # signed by another CA
    stranger_key: Path

    def client(self) -> dict[str, str]:
        """gear's addServer() arguments for a client holding a certificate of our CA."""
        return {
            "ssl_ca": str(self.ca),
            "ssl_cert": str(self.client_cert),
            "ssl_key": str(self.client_key),
        }


def _openssl(*arguments: str | Path) -> None:
    subprocess.run(["openssl", *map(str, arguments)], check=True, capture_output=True)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-days", "1", "-subj", f"/CN={name}", "-keyout", key, "-out", cert,
    )  # fmt: skip
    return cert, key


def _make_signed(directory: Path, name: str, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    cert, key, request = (directory / f"{name}{suffix}" for suffix in (".pem", ".key", ".csr"))
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", key, "-out", request,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
        "-days", "1", "-copy_extensions", "copy", "-out", cert,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    directory = tmp_path / "tls"
    directory.mkdir()
    ca = _make_ca(directory, "test-ca")
    other_ca = _make_ca(directory, "other-ca")
    server = _make_signed(directory, "server", ca)
    client = _make_signed(directory, "client", ca)
    stranger = _make_signed(directory, "stranger", other_ca)
    return Certificates(ca[0], *server, *client, *stranger)


def _tls_handshake(port: int, context: ssl.SSLContext) -> None:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=WAIT) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        # With TLS 1.3 a refused client certificate is only reported on the first read.
        tls.sendall(gear.Packet(gear.constants.REQ, gear.constants.ECHO_REQ, b"x").toBinary())
        assert tls.recv(64)


def _client_context(certificates: Certificates, cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=certificates.ca)
    context.load_cert_chain(cert, key)
    return context


def test_debian_gearmand_ignores_ssl_and_speaks_plaintext(
    tmp_path: Path, certificates: Certificates
) -> None:
    # Debian builds gearmand without TLS: /usr/sbin/gearmand links no libssl of its own
    # and has no SSL_* symbols, and --ssl only changes its "with SSL: true" log line.
    # If this test fails, a TLS-capable gearmand has arrived: revisit the deployment.
    server = Gearmand(
        tmp_path / "gearmand-ssl",
        tls=(certificates.ca, certificates.server_cert, certificates.server_key),
    )
    server.start()
    client = worker = None
    try:
        with pytest.raises((ssl.SSLError, OSError)):
            _tls_handshake(
                server.port,
                _client_context(certificates, certificates.client_cert, certificates.client_key),
            )
        client = connect_client(server.port)
        worker = connect_worker(server.port)
        job = submit(client, {"source_url": "https://logs.example.org/plain.txt"})
        taken = next_job(worker)
        assert taken is not None
        taken.sendWorkComplete(b"{}")
        wait_complete(job)
        assert not job.failure
        assert "invalid magic value" in server.log_tail(100)
    finally:
        if worker is not None:
            worker.shutdown()
        if client is not None:
            client.shutdown()
        server.stop()


def test_gear_client_and_worker_over_tls_to_gear_server(certificates: Certificates) -> None:
    server = gear.Server(
        port=0,
        host="127.0.0.1",
        ssl_key=str(certificates.server_key),
        ssl_cert=str(certificates.server_cert),
        ssl_ca=str(certificates.ca),
    )
    client = worker = None
    try:
        client = connect_client(server.port, **certificates.client())
        worker = connect_worker(server.port, **certificates.client())
        job = submit(client, {"source_url": "https://logs.example.org/tls.txt"})
        taken = next_job(worker)
        assert taken is not None
        assert orjson.loads(taken.arguments) == {"source_url": "https://logs.example.org/tls.txt"}
        taken.sendWorkData(b"refused")
        taken.sendWorkFail()
        wait_complete(job)
        assert job.failure
        assert b"".join(job.data) == b"refused"
        assert {c.ssl_subject for c in server.active_connections} == {"client"}

        # A certificate from another CA is refused during the handshake. Done last: a
        # failed handshake stalls gear.Server's accept loop for a second.
        with pytest.raises((ssl.SSLError, OSError)):
            _tls_handshake(
                server.port,
                _client_context(
                    certificates, certificates.stranger_cert, certificates.stranger_key
                ),
            )
    finally:
        if worker is not None:
            worker.shutdown()
        if client is not None:
            client.shutdown()
        server.shutdown()
