"""push-log jobs to Gearman: the one submitting path shared by index, submit and backfill."""

from __future__ import annotations

import dataclasses
import logging
import socket
import struct
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gear

from log_shipper.plan import Submission
from worker.config import GearmanTLSConfig, split_address
from worker.errors import ConfigError, LogIndexerError
from worker.job import FUNCTION_NAME, JobSummary


class SubmitError(LogIndexerError):
    """No Gearman server took the jobs."""


class NotGearmanError(LogIndexerError):
    """A peer accepted the connection but did not speak Gearman."""


# gear reports connection trouble by logging, tracebacks included (a DNS failure was 13
# lines on stderr through logging's last-resort handler). The user gets our one line
# instead; a program that configures logging (log-worker) still receives gear's records.
logging.getLogger("gear").addHandler(logging.NullHandler())

# How long closing waits for gear's threads: its connect thread may be inside a connect()
# that has no timeout (a firewalled address), which must not hold up the CI job.
SHUTDOWN_WAIT = 1.0
# How long the explanation of an unreachable server may try to connect once more.
DIAGNOSE_WAIT = 2.0

_MAGIC_REQ, _MAGIC_RES = b"\x00REQ", b"\x00RES"
_GET_STATUS, _STATUS_RES = 15, 20
_HEADER = struct.Struct("!4sII")
_STATUS_RES_START = _MAGIC_RES + struct.pack("!I", _STATUS_RES)


def status_request(handle: bytes) -> bytes:
    """GET_STATUS of a job handle: gearmand and gear's server both answer it, even for a
    handle they never gave out (ECHO_REQ, the obvious probe, gear's server ignores)."""
    return _HEADER.pack(_MAGIC_REQ, _GET_STATUS, len(handle)) + handle


def answer_problem(answer: bytes, handle: bytes) -> str | None:
    """What is wrong with `answer` as the reply to status_request(handle): None when it is
    that reply, "" while it is a beginning of it."""
    not_gearman = f"not a Gearman server (it answered {answer[:16]!r})"
    if not _STATUS_RES_START.startswith(answer[: len(_STATUS_RES_START)]):
        return not_gearman
    if len(answer) < _HEADER.size:
        return ""
    size = _HEADER.unpack_from(answer)[2]
    if len(answer) < _HEADER.size + size:
        return ""
    return None if answer[_HEADER.size :].split(b"\x00", 1)[0] == handle else not_gearman


def gearman_handshake(sock: socket.socket, timeout: float) -> None:
    """Ask `sock`'s peer for a job's status; raise NotGearmanError unless it answers as a
    Gearman server within `timeout` seconds. Reads nothing beyond the answer."""
    handle = b"log-shipper-probe-" + uuid.uuid4().hex.encode()
    answer = b""
    previous = sock.gettimeout()
    sock.settimeout(timeout)
    try:
        sock.sendall(status_request(handle))
        while (problem := answer_problem(answer, handle)) == "":
            # The header first, then exactly the body it announces: whatever follows
            # belongs to gear's reader.
            wanted = _HEADER.size - len(answer)
            if wanted <= 0:
                wanted = _HEADER.size + _HEADER.unpack_from(answer)[2] - len(answer)
            chunk = sock.recv(wanted)
            if not chunk:
                raise NotGearmanError(f"closed the connection, answering {answer[:16]!r}")
            answer += chunk
    except TimeoutError:
        raise NotGearmanError(
            f"accepted the connection but gave no Gearman answer within {timeout:g}s"
        ) from None
    except OSError as exc:
        raise NotGearmanError(f"connection lost during the Gearman handshake: {exc}") from None
    finally:
        sock.settimeout(previous)
    if problem is not None:
        raise NotGearmanError(problem)


def why_unreachable(host: str, port: int, timeout: float = DIAGNOSE_WAIT) -> str:
    """What stops a TCP connection to host:port (gear's connect keeps the reason to itself)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return "accepts connections but gave no Gearman answer"
    except socket.gaierror as exc:
        return f"cannot resolve {host!r}: {exc.strerror}"
    except TimeoutError:
        return f"no TCP connection within {timeout:g}s"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()


@dataclass(slots=True)
class Outcome:
    path: str
    summary: JobSummary | None = None
    error: str | None = None  # why the file was not indexed

    @property
    def ok(self) -> bool:
        return self.error is None and self.summary is not None and self.summary.failed == 0


class _Client(gear.Client):
    """gear's client, checking that each server speaks Gearman before using it, and
    remembering the jobs whose server connection was lost.

    gear sends each job to the next connected server in turn and skips a server it finds
    broken, so failing over is gear's; what this adds is knowing which servers were tried
    and which went away, to say so.
    """

    def __init__(self, client_id: str, handshake_timeout: float) -> None:
        self.attempted: set[tuple[str, int]] = set()  # servers gear has tried to connect to
        self.attempts = threading.Condition()
        self.lost: dict[tuple[str, int], None] = {}  # servers that went away while in use
        super().__init__(client_id)
        self.handshake_timeout = handshake_timeout
        # The jobs whose server went away. Jobs, not handles: two gearmands on one host
        # give out the same handles.
        self.orphans: weakref.WeakSet[gear.Job] = weakref.WeakSet()
        # (host, port) -> why that server, which accepted the connection, is not used.
        self.refused: dict[tuple[str, int], str] = {}

    def _connectLoop(self) -> bool:
        # One pass of gear's connect thread: every server then inactive has been tried.
        tried = {(conn.host, conn.port) for conn in self.inactive_connections}
        try:
            return bool(super()._connectLoop())
        finally:
            with self.attempts:
                self.attempted |= tried
                self.attempts.notify_all()

    def _lostConnection(self, conn: gear.Connection) -> None:
        if self.running and conn in self.active_connections:
            self.lost[(conn.host, conn.port)] = None
        # A job being submitted to this server waits for an answer that cannot come
        # (gear would wait the whole accept timeout): let it go on to the next server.
        for task in list(conn.pending_tasks):
            task.setComplete()
        super()._lostConnection(conn)

    def _onConnect(self, conn: gear.Connection) -> None:
        # gear's hook between opening a server's socket and polling it. Without this check
        # a peer that is not Gearman is used: gear's reader fails on its every byte (millions
        # of logged IndexErrors, one CPU busy), and a silent one holds each job 30 s.
        # Raising here leaves the connection inactive; gear retries it later.
        where = (conn.host, conn.port)
        self.refused[where] = "accepted the connection but gave no Gearman answer yet"
        try:
            gearman_handshake(conn.conn, self.handshake_timeout)
        except NotGearmanError as exc:
            self.refused[where] = str(exc)
            raise
        self.refused.pop(where, None)
        super()._onConnect(conn)

    def handleDisconnect(self, job: gear.Job) -> gear.Job:
        self.orphans.add(job)
        return job


def parse_servers(servers: Sequence[str]) -> list[tuple[str, int]]:
    parsed: dict[tuple[str, int], None] = {}  # gear refuses a server added twice
    for address in servers:
        try:
            parsed[split_address(address)] = None
        except ValueError:
            raise ConfigError(f"Gearman server {address!r} is not HOST:PORT") from None
    if not parsed:
        raise ConfigError("no Gearman server given (--gearman HOST:PORT or --config)")
    return list(parsed)


class Submitter:
    """A Gearman client of several servers: each job goes to the next connected one in
    turn (gear's round robin), so a server that is down or goes away is skipped.

    Time is bounded: `connect_timeout` seconds to reach a server (a few more to say why
    none was), and as long for a server to accept each job before it is given up.
    """

    def __init__(
        self,
        servers: Sequence[str],
        *,
        connect_timeout: float = 10.0,
        tls: GearmanTLSConfig | None = None,
    ) -> None:
        addresses = parse_servers(servers)
        self.addresses = addresses
        self.accept_timeout = connect_timeout
        self.client = _Client("log-shipper", handshake_timeout=connect_timeout)
        tls = tls or GearmanTLSConfig()
        for host, port in addresses:
            self.client.addServer(host, port, ssl_key=tls.key, ssl_cert=tls.cert, ssl_ca=tls.ca)
        try:
            self.client.waitForServer(timeout=connect_timeout)
        except gear.TimeoutError:
            self.close()
            reasons = "; ".join(f"{h}:{p}: {self._why_not(h, p)}" for h, p in addresses)
            raise SubmitError(
                f"no Gearman server reachable within {connect_timeout:g}s ({reasons})"
            ) from None
        # host:port -> why, for each server given but not connected: its share of the
        # jobs goes to the others.
        self.unreachable = self._not_connected(min(connect_timeout, DIAGNOSE_WAIT))

    def _not_connected(self, timeout: float) -> dict[str, str]:
        client = self.client
        deadline = time.monotonic() + timeout
        with client.attempts:
            # Until gear has tried every server once: the first one up ends waitForServer.
            client.attempts.wait_for(
                lambda: client.attempted >= set(self.addresses),
                timeout=max(0.0, deadline - time.monotonic()),
            )
        down = {}
        for host, port in self.addresses:
            if not self._connected(host, port):
                reason = self._why_not(host, port)
                if not self._connected(host, port):  # it may have come up meanwhile
                    down[f"{host}:{port}"] = reason
        return down

    def _connected(self, host: str, port: int) -> bool:
        return any((c.host, c.port) == (host, port) for c in self.client.active_connections)

    def went_away(self) -> list[str]:
        """host:port of each server lost while in use (submitting, or waiting for answers)."""
        return [f"{host}:{port}" for host, port in self.client.lost]

    def _why_not(self, host: str, port: int) -> str:
        return self.client.refused.get((host, port)) or why_unreachable(host, port)

    def __enter__(self) -> Submitter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        stopper = threading.Thread(target=self.client.shutdown, name="gear-shutdown", daemon=True)
        stopper.start()
        stopper.join(timeout=SHUTDOWN_WAIT)

    def start(
        self, submission: Submission, *, wait: bool = True, low_priority: bool = False
    ) -> Pending:
        """Queue one file's job; `poll` the result to learn its outcome."""
        pending = Pending(Outcome(submission.path), submission, low_priority)
        error = self._send(pending, wait=wait)
        if error is not None:
            return pending.fail(error)
        pending.finished = not wait
        return pending

    def _send(self, pending: Pending, *, wait: bool) -> str | None:
        """Give `pending`'s job to the next server that takes it; why not, if none did."""
        precedence = gear.PRECEDENCE_LOW if pending.low_priority else gear.PRECEDENCE_NORMAL
        payload = dataclasses.replace(pending.submission.job, submitted_at=time.time())
        job = gear.Job(FUNCTION_NAME, payload.to_payload(), unique=uuid.uuid4().hex.encode())
        try:
            self.client.submitJob(
                job, background=not wait, precedence=precedence, timeout=self.accept_timeout
            )
        except gear.NoConnectedServersError:
            return "not submitted: the Gearman server went away"
        except gear.GearmanError:
            # gear gives this when every connected server failed to take the job in time.
            return f"not submitted: no Gearman server took the job within {self.accept_timeout:g}s"
        pending.job = job
        pending.sent += 1
        return None

    def poll(self, pending: Pending, timeout: float | None = None) -> bool:
        """True once the job has an outcome (answer, lost server, or `timeout` seconds)."""
        if pending.finished:
            return True
        job = pending.job
        if job.complete:
            read_answer(pending.outcome, job)
        elif job in self.client.orphans:
            # gearmand keeps no foreground job across its end: another server may run it
            # (once per server at most; ids are deterministic, so a second run replaces).
            if pending.sent < len(self.addresses) and self._send(pending, wait=True) is None:
                return False
            pending.outcome.error = "the Gearman server went away before the job finished"
        elif timeout is not None and time.monotonic() - pending.started > timeout:
            pending.outcome.error = f"no answer within {timeout:g}s"
        else:
            return False
        pending.finished = True
        return True

    def submit(
        self,
        submissions: Iterable[Submission],
        *,
        wait: bool,
        low_priority: bool = False,
        timeout: float | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Queue one job per file; with `wait`, collect every answer (or a timeout).

        The first file no server takes stops the submitting: the others are not tried, so
        a server gone away costs `connect_timeout` once, not once per file.
        `on_outcome` is called with each file's outcome as soon as it is known."""
        pending: list[Pending] = []
        refusal: str | None = None
        for submission in submissions:
            if refusal is not None:
                pending.append(Pending(Outcome(submission.path), submission).fail(refusal))
                continue
            pending.append(self.start(submission, wait=wait, low_priority=low_priority))
            refusal = pending[-1].outcome.error
        reported: set[int] = set()
        while True:
            finished = [self.poll(item, timeout) for item in pending]
            for number, done in enumerate(finished):
                if done and number not in reported and on_outcome is not None:
                    reported.add(number)
                    on_outcome(pending[number].outcome)
            if all(finished):
                return [item.outcome for item in pending]
            time.sleep(0.05)


@dataclass(slots=True)
class Pending:
    """A submitted job, until its outcome is known."""

    outcome: Outcome
    submission: Submission
    low_priority: bool = False
    job: Any = None  # gear.Job; None when submission failed
    sent: int = 0  # how many times the job was given to a server
    finished: bool = False
    started: float = field(default_factory=time.monotonic)

    def fail(self, error: str) -> Pending:
        self.outcome.error = error
        self.finished = True
        return self


def read_answer(outcome: Outcome, job: gear.Job) -> None:
    if job.failure:
        # Our workers send the reason as WORK_DATA before WORK_FAIL.
        reason = job.exception or b"".join(job.data)
        outcome.error = reason.decode(errors="replace") if reason else "job failed"
        return
    try:
        outcome.summary = JobSummary.from_json(b"".join(job.data))
    except (ValueError, TypeError) as exc:
        outcome.error = f"unreadable answer from worker: {exc}"
