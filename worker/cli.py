"""`log-worker`: run push-log workers against the configured Gearman servers."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Sequence
from types import FrameType

from prometheus_client.multiprocess import mark_process_dead

from worker.arguments import add_allow_argument, add_version_argument
from worker.config import SINK_URL_FORMS, WorkerConfig, load_config
from worker.errors import LogIndexerError
from worker.gearman_worker import LogWorker
from worker.health import SinkProbe
from worker.logs import LOG_FORMATS, configure_logging
from worker.metrics import HealthCheck, MetricsServer
from worker.pool import Supervisor
from worker.redact import mask_url
from worker.sinks import open_sink
from worker.sinks.base import Sink

log = logging.getLogger(__name__)

# Children of a pool are this module run again by the same interpreter.
CHILD_MODULE = "worker.cli"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a port number (0 for none)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="log-worker", description=__doc__)
    add_version_argument(parser)
    parser.add_argument("--config", required=True, help="worker configuration YAML")
    add_allow_argument(parser)
    parser.add_argument(
        "--sink", metavar="URL", help=f"the sink: {SINK_URL_FORMS} (overrides sink.url)"
    )
    parser.add_argument(
        "--processes",
        type=_positive,
        default=os.cpu_count() or 1,
        metavar="N",
        help="worker processes under one supervisor; 1 runs the worker in this process "
        "(default: the number of CPUs, %(default)s here)",
    )
    parser.add_argument(
        "--log-format", choices=LOG_FORMATS, help="override log_format from the configuration"
    )
    parser.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve Prometheus metrics (/metrics) and a health check (/healthz) on this port "
        "(0: none); overrides metrics_port",
    )
    parser.add_argument(
        "--check-config", action="store_true", help="validate the configuration and exit"
    )
    # Given to the children of a pool: a child whose supervisor is gone stops by itself.
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = effective_config(args)
        sink = open_sink(config.sink.url, config.sink)  # a bad URL is reported now
        if args.check_config:
            print(f"{args.config}: ok")
            return 0
        if args.parent_pid is None:
            # A pool's child finds the sink prepared by its supervisor: one restarted
            # while the engine is away must start and wait for it (each job does),
            # not exit at start-up and climb the supervisor's restart backoff.
            sink.prepare()
    except LogIndexerError as exc:
        print(f"log-worker: error: {mask_url(str(exc))}", file=sys.stderr)
        return 2
    configure_logging(config.log_format)
    if args.processes == 1:
        return run_worker(config, sink, parent_pid=args.parent_pid)
    # The supervisor prepared the sink once, so that the children's prepare() finds
    # everything in place instead of racing to create it; it writes nothing itself,
    # and reads only to answer /healthz.
    try:
        return run_pool(args, config, sink)
    finally:
        sink.close()


def effective_config(args: argparse.Namespace) -> WorkerConfig:
    config = load_config(args.config)
    return dataclasses.replace(
        config,
        fetch=dataclasses.replace(config.fetch, allow=(*config.fetch.allow, *args.allow)),
        sink=dataclasses.replace(config.sink, url=args.sink or config.sink.url),
        log_format=args.log_format or config.log_format,
        metrics_port=config.metrics_port if args.metrics_port is None else args.metrics_port,
    )


def run_worker(config: WorkerConfig, sink: Sink, *, parent_pid: int | None = None) -> int:
    """One worker in this process until SIGTERM/SIGINT (or, in a pool, until the
    supervisor is gone): a job still fetching its file is interrupted and left
    unanswered, so that gearmand gives it to another worker once this one disconnects;
    a job past its fetch is finished. Then the sink is closed."""
    metrics_server = None
    probe = None
    if config.metrics_port:
        probe = SinkProbe(sink)
        try:
            metrics_server = MetricsServer(
                config.metrics_port,
                config.metrics_address,
                health=HealthCheck(probe, expected=len(config.gearman)),
            )
        except OSError as exc:
            probe.close()
            sink.close()
            print(f"log-worker: error: metrics port {config.metrics_port}: {exc}", file=sys.stderr)
            return 1
    # Named per process, so that gearmand's `workers` listing tells pool members apart.
    worker = LogWorker(config, sink, name=f"log-worker:{socket.gethostname()}:{os.getpid()}")
    # The handler only records the request: calling into gear, or even setting a
    # threading.Event, could re-enter a lock the interrupted main thread holds.
    requested: list[int] = []

    def request_stop(signum: int, frame: FrameType | None) -> None:
        requested.append(signum)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    loop = threading.Thread(target=worker.run, name="job-loop")
    loop.start()
    stopping = False
    try:
        while loop.is_alive():
            loop.join(0.5)
            orphaned = parent_pid is not None and os.getppid() != parent_pid
            if (requested or orphaned) and not stopping:
                stopping = True
                worker.stop()  # no new job; a fetch in progress ends now
    finally:
        worker.close()
        if metrics_server is not None:
            metrics_server.close()
        if probe is not None:
            probe.close()
        sink.close()
    if not stopping:
        # The job loop died of an error (its traceback is logged): exit non-zero, so that
        # the supervisor or systemd starts a fresh worker.
        log.error("the job loop ended unexpectedly")
        return 1
    return 0


def child_command(args: argparse.Namespace, config: WorkerConfig) -> list[str]:
    """A pool member: this command with --processes 1. It reads the same configuration
    file with the same overrides; the supervisor alone serves metrics."""
    command = [sys.executable, "-m", CHILD_MODULE, "--config", args.config, "--processes", "1"]
    for prefix in args.allow:
        command += ["--allow", prefix]
    if args.sink:
        command += ["--sink", args.sink]
    command += ["--log-format", config.log_format, "--metrics-port", "0"]
    return [*command, "--parent-pid", str(os.getpid())]


def run_pool(args: argparse.Namespace, config: WorkerConfig, sink: Sink) -> int:
    env = dict(os.environ)
    metrics_dir: str | None = None
    metrics_server: MetricsServer | None = None
    probe: SinkProbe | None = None
    on_exit = None
    try:
        if config.metrics_port:
            # Fresh for every supervisor: files left by an earlier run would be summed in.
            metrics_dir = tempfile.mkdtemp(prefix="log-worker-metrics-")
            env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
            # The sink is checked from here, with the configuration the children use.
            probe = SinkProbe(sink)
            expected = args.processes * len(config.gearman)
            try:
                metrics_server = MetricsServer(
                    config.metrics_port,
                    config.metrics_address,
                    health=HealthCheck(probe, expected),
                    multiprocess_dir=metrics_dir,
                )
            except OSError as exc:
                print(
                    f"log-worker: error: metrics port {config.metrics_port}: {exc}",
                    file=sys.stderr,
                )
                return 1
            # A dead child's connections gauge must not count: it can no longer say 0.
            on_exit = functools.partial(mark_process_dead, path=metrics_dir)
        supervisor = Supervisor(
            child_command(args, config), args.processes, env=env, on_exit=on_exit
        )
        signal.signal(signal.SIGTERM, supervisor.request_stop)
        signal.signal(signal.SIGINT, supervisor.request_stop)
        return supervisor.run()
    finally:
        if metrics_server is not None:
            metrics_server.close()
        if probe is not None:
            probe.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
