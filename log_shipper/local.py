"""The all-in-one mode: a Gearman server and workers inside this process.

One machine, no daemons: `log-shipper index` (and `submit --sink`) start this, queue
jobs exactly as they would to a real Gearman server, and wait for the answers.
"""

from __future__ import annotations

import dataclasses
import threading

import gear

from worker.config import WorkerConfig
from worker.gearman_worker import LogWorker
from worker.sinks import open_sink


class LocalCluster:
    def __init__(self, config: WorkerConfig, workers: int = 2) -> None:
        # Opened first: a malformed sink URL must not leave a Gearman server running.
        self.sink = open_sink(config.sink.url, config.sink)
        self.server = gear.Server(port=0, host="127.0.0.1")
        self.address = f"127.0.0.1:{self.server.port}"
        self.config = dataclasses.replace(config, gearman=(self.address,))
        # gear's server fails the job of a worker that hangs up instead of queuing it
        # again: a job whose engine is away is answered, naming the engine.
        self.workers = [
            LogWorker(self.config, self.sink, name=f"local-worker-{i}", requeue=False)
            for i in range(workers)
        ]
        self.threads = [
            threading.Thread(target=worker.run, name=f"local-worker-{i}", daemon=True)
            for i, worker in enumerate(self.workers)
        ]

    def __enter__(self) -> LocalCluster:
        try:
            self.sink.prepare()
        except BaseException:
            self.close()
            raise
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        for thread in self.threads:
            if thread.is_alive():
                thread.join(timeout=30)
        for worker in self.workers:
            worker.close()
        self.server.shutdown()
        self.sink.close()
