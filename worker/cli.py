"""`log-worker`: run a push-log worker against the configured Gearman servers."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from worker.config import load_config
from worker.errors import LogIndexerError
from worker.gearman_worker import LogWorker
from worker.sinks import open_sink


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="log-worker", description=__doc__)
    parser.add_argument("--config", required=True, help="worker configuration YAML")
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="URL_PREFIX",
        help="also allow fetching under this prefix (repeatable)",
    )
    parser.add_argument("--sink", help="override sink.url from the configuration")
    parser.add_argument(
        "--check-config", action="store_true", help="validate the configuration and exit"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # gear logs every packet at INFO; only its warnings interest an operator.
    logging.getLogger("gear").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
        config = dataclasses.replace(
            config,
            fetch=dataclasses.replace(config.fetch, allow=(*config.fetch.allow, *args.allow)),
            sink=dataclasses.replace(config.sink, url=args.sink or config.sink.url),
        )
        sink = open_sink(config.sink.url, config.sink)
        if args.check_config:
            print(f"{args.config}: ok")
            return 0
        sink.prepare()
    except LogIndexerError as exc:
        print(f"log-worker: error: {exc}", file=sys.stderr)
        return 2
    worker = LogWorker(config, sink)
    # The handler only records the request: calling into gear from a signal handler
    # could re-enter a lock the interrupted job loop holds.
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    loop = threading.Thread(target=worker.run, name="job-loop")
    loop.start()
    try:
        while loop.is_alive():
            if stop_requested.wait(0.5):
                worker.stop()  # the current job finishes; no new one is taken
                loop.join(0.5)
    finally:
        worker.close()
        sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
