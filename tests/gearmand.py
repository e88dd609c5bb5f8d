"""A real gearmand (Debian's `gearman-job-server`) for tests, run as a child process.

    server = Gearmand(tmp_path)
    server.start()
    client.addServer("127.0.0.1", server.port)
    server.restart()  # same port, same queue db: queued background jobs survive
    server.stop()

The queue is kept in SQLite (`--queue-type libsqlite3`) under `directory`, so a stopped
or killed server starts again with the background jobs it had not handed out. If gearmand
does not come up, `start()` raises RuntimeError with the end of its log: a test that needs
it fails, it is never skipped.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import gear

from worker.job import FUNCTION_NAME

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gearmand:
    """One gearmand on 127.0.0.1 whose files (queue db, log, pid) live in `directory`.

    `tls` is (CA, certificate, key) PEM files for `--ssl`; Debian's gearmand accepts
    and ignores them (see tests/test_gearmand.py). `options` are more gearmand options.
    """

    def __init__(
        self,
        directory: Path,
        *,
        tls: tuple[Path, Path, Path] | None = None,
        options: Sequence[str] = (),
    ) -> None:
        self.directory = directory
        self.tls = tls
        self.options = tuple(options)
        self.queue_db = directory / "queue.db"
        self.log_file = directory / "gearmand.log"
        # gearmand writes early failures (bad option, unreadable file) to stderr, not its log.
        self.output_file = directory / "gearmand.out"
        # Chosen once: a restarted server keeps its address, so connected clients and
        # workers find it again.
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        executable = shutil.which("gearmand") or "/usr/sbin/gearmand"
        command = [
            executable,
            "--listen", "127.0.0.1",
            "--port", str(self.port),
            "--queue-type", "libsqlite3",
            "--libsqlite3-db", str(self.queue_db),
            "--log-file", str(self.log_file),
            "--verbose", "INFO",
            # The defaults are /var/gearmand.pid and /etc/gearmand.conf: keep the test
            # server away from anything a system-wide gearmand owns.
            "--pid-file", str(self.directory / "gearmand.pid"),
            "--threads", "2",
        ]  # fmt: skip
        if self.tls is not None:
            ca, certificate, key = self.tls
            command += [
                "--ssl",
                "--ssl-ca-file", str(ca),
                "--ssl-certificate", str(certificate),
                "--ssl-key", str(key),
            ]  # fmt: skip
        return command + list(self.options)

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"gearmand is already running on {self.address}")
        self.directory.mkdir(parents=True, exist_ok=True)
        if shutil.which("gearmand") is None and not Path("/usr/sbin/gearmand").exists():
            raise RuntimeError("gearmand is not installed (apt-get install gearman-job-server)")
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        self._output = open(self.output_file, "ab")  # noqa: SIM115 (closed in _reaped)
        # No --daemon: as our child it cannot outlive a crashed test run unnoticed, and
        # stop()/kill() signal the server itself rather than a pid file's guess.
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self._reaped()
                raise RuntimeError(f"gearmand exited with status {code}:\n{self.log_tail()}")
            if self._listening(log_offset) and self._accepts_connections():
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(
            f"gearmand did not listen on {self.address} within {START_TIMEOUT:.0f} s:\n"
            f"{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM and wait: gearmand closes its connections and shuts down cleanly."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to write or tidy anything."""
        self._signal(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for path in (self.output_file, self.log_file):
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _signal(self, signum: signal.Signals) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reaped()

    def _reaped(self) -> None:
        self.process = None
        if self._output is not None:
            self._output.close()
            self._output = None

    def _listening(self, log_offset: int) -> bool:
        # A connection alone proves nothing: gearmand binds with SO_REUSEPORT, so another
        # gearmand may share the port, and when a plain listener holds the port gearmand
        # keeps retrying the bind instead of exiting. Only its own log says it has bound.
        try:
            with open(self.log_file, "rb") as log:
                log.seek(log_offset)
                return f"Listening on {self.address} ".encode() in log.read()
        except FileNotFoundError:
            return False

    def _accepts_connections(self) -> bool:
        # A bare TCP connect is enough even with --ssl: the listening socket is what we
        # wait for, the handshake is the client's business.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def __enter__(self) -> Gearmand:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


__all__ = ["Gearmand"]


def queue_status(port: int, timeout: float = 30.0) -> dict[str, tuple[int, int, int]]:
    """gearmand's admin `status`: function -> (queued, running, available workers)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"status\n")
        answer = b""
        while not (answer == b".\n" or answer.endswith(b"\n.\n")):
            chunk = sock.recv(4096)
            assert chunk, f"gearmand hung up during status: {answer!r}"
            answer += chunk
    status: dict[str, tuple[int, int, int]] = {}
    for line in answer.decode().splitlines()[:-1]:
        name, queued, running, workers = line.split("\t")
        status[name] = (int(queued), int(running), int(workers))
    return status


def queued_jobs(port: int) -> list[dict[str, Any]]:
    """Take every push-log job queued on the gearmand at `port`; their JSON arguments."""
    queued = queue_status(port).get(FUNCTION_NAME, (0, 0, 0))[0]
    if not queued:
        return []
    worker = gear.Worker("test-queued-jobs")
    worker.addServer("127.0.0.1", port)
    try:
        worker.waitForServer()
        worker.registerFunction(FUNCTION_NAME)
        jobs = []
        for _ in range(queued):  # all queued already, so getJob never waits long
            job = worker.getJob()
            jobs.append(json.loads(job.arguments))
            job.sendWorkComplete(b"{}")
        return jobs
    finally:
        worker.shutdown()
