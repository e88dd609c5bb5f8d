"""Start the real search engines that integration tests run against (see tools/engine)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.paths import REPO

ENGINE_SCRIPT = REPO / "tools" / "engine"


def run_engine_tool(
    *args: str, timeout: float = 900, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # Same interpreter as the tests, so the script never depends on what `python3` is on PATH.
    return subprocess.run(
        [sys.executable, str(ENGINE_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def start_engine(
    name: str,
    env: Mapping[str, str] | None = None,
    settings: Mapping[str, str] | None = None,
    nodes: int = 1,
) -> str:
    """Start (or reuse) engine `name`, or its cluster of `nodes` nodes (those not
    running), and return the base URL of its (first) node.

    Raises instead of skipping: a test that needs an engine must fail loudly
    when the engine cannot be started.
    """
    options = [f"--setting={key}={value}" for key, value in (settings or {}).items()]
    result = run_engine_tool("start", name, *options, f"--nodes={nodes}", env=env)
    urls = result.stdout.split()
    if result.returncode != 0 or len(urls) != nodes or not urls[0].startswith("http://"):
        tail = "\n".join(result.stderr.strip().splitlines()[-60:])
        raise RuntimeError(f"tools/engine start {name} failed (exit {result.returncode}):\n{tail}")
    return urls[0]


# This session's part of every index name the tests write, so that sessions running at
# once (two checkouts, a developer's run beside CI) never delete each other's indices.
SESSION = uuid.uuid4().hex[:8]
# Index patterns the tests write under (each test adds its own random part).
TEST_INDICES = tuple(
    f"{kind}-{SESSION}-*"
    for kind in ("test", "sinktest", "e2e", "builds-e2e", "ci-log-builds-test")
)


def index_prefix(kind: str = "test") -> str:
    """A fresh index prefix of this session for one test: `kind` is one of TEST_INDICES'."""
    return f"{kind}-{SESSION}-{uuid.uuid4().hex[:12]}-"


def build_index_for(prefix: str) -> str:
    """A build index of this session beside `prefix`, outside the prefix's pattern."""
    return f"ci-log-builds-{prefix.strip('-')}"


def delete_indices(base_url: str, patterns: Sequence[str]) -> int:
    """Delete the indices matching `patterns`, named one by one: the engines may refuse
    wildcard deletes. Returns how many there were."""
    url = f"{base_url}/_cat/indices/{','.join(patterns)}?format=json&h=index&expand_wildcards=all"
    with urllib.request.urlopen(url, timeout=60) as answer:
        names = [row["index"] for row in json.loads(answer.read())]
    for start in range(0, len(names), 50):
        batch = ",".join(names[start : start + 50])
        request = urllib.request.Request(f"{base_url}/{batch}", method="DELETE")
        with urllib.request.urlopen(request, timeout=60):
            pass
    return len(names)


def delete_test_indices(base_url: str) -> int:
    """Delete what the tests wrote. The engines outlive a run so the next one starts
    fast; hundreds of indices left behind would slow every later run and benchmark."""
    return delete_indices(base_url, TEST_INDICES)


PORT_ENV = {"elasticsearch": "ENGINE_ES_PORT", "opensearch": "ENGINE_OS_PORT"}


@dataclass
class PrivateEngine:
    """A node of its own for a test that stops, kills or overloads its engine (the
    shared nodes on 9250/9260 serve every other test at once). Same data across
    stop/start: a restart finds what was indexed before it."""

    name: str
    url: str
    run_dir: Path
    env: dict[str, str]
    settings: dict[str, str]

    def start(self) -> None:
        start_engine(self.name, self.env, self.settings)

    def stop(self) -> None:
        result = run_engine_tool("stop", self.name, env=self.env, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"tools/engine stop {self.name} failed: {result.stderr.strip()}")

    def kill(self) -> None:
        """SIGKILL the node's whole process group, as the kernel's OOM killer would."""
        kill_node(self.name, self.env, 0)


def kill_node(name: str, env: Mapping[str, str], node: int) -> None:
    result = run_engine_tool("kill", name, f"--node={node}", env=env, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"tools/engine kill {name} failed: {result.stderr.strip()}")


def free_ports(offsets: Sequence[int]) -> int:
    """A port P with P + offset free for every offset (tools/engine's node K of a
    cluster listens on P+K and P+100+K, a single node on P and P+100)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + max(offsets) > 65535:
            continue
        try:
            with ExitStack() as held:
                for offset in offsets:
                    other = held.enter_context(socket.socket())
                    other.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no free ports at offsets {list(offsets)} for a private engine")


def free_port_pair() -> int:
    """A free HTTP port whose transport port (+100, see tools/engine) is free too."""
    return free_ports((0, 100))


@contextmanager
def private_engine(name: str, settings: Mapping[str, str] | None = None) -> Iterator[PrivateEngine]:
    """Start a private node of engine `name` (with extra node `settings`), stop and
    remove it afterwards."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"private-{name}-", dir="/var/tmp"))
    port = free_port_pair()
    env = {"ENGINE_RUN_DIR": str(run_dir), PORT_ENV[name]: str(port)}
    engine = PrivateEngine(name, f"http://127.0.0.1:{port}", run_dir, env, dict(settings or {}))
    try:
        engine.start()
        yield engine
    finally:
        run_engine_tool("stop", name, env=env, timeout=120)
        shutil.rmtree(run_dir, ignore_errors=True)


@dataclass
class PrivateCluster:
    """A cluster of its own (tools/engine start --nodes N) for a test that kills a node
    of it: node K (1..N) at urls[K - 1]. Each node keeps its data across kill/start."""

    name: str
    urls: list[str]
    run_dir: Path
    env: dict[str, str]

    def kill(self, node: int) -> None:
        """SIGKILL node `node`'s whole process group."""
        kill_node(self.name, self.env, node)

    def start(self) -> None:
        """Start the killed nodes again (tools/engine starts whichever nodes of the
        cluster are not running) and wait until all N are in the cluster."""
        start_engine(self.name, self.env, nodes=len(self.urls))


@contextmanager
def private_cluster(name: str, nodes: int) -> Iterator[PrivateCluster]:
    """Start a private cluster of `nodes` nodes of engine `name`, stop and remove it
    afterwards."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"private-{name}-cluster-", dir="/var/tmp"))
    port = free_ports([k for node in range(1, nodes + 1) for k in (node, node + 100)])
    env = {"ENGINE_RUN_DIR": str(run_dir), PORT_ENV[name]: str(port)}
    urls = [f"http://127.0.0.1:{port + node}" for node in range(1, nodes + 1)]
    cluster = PrivateCluster(name, urls, run_dir, env)
    try:
        start_engine(name, env, nodes=nodes)
        yield cluster
    finally:
        run_engine_tool("stop", name, env=env, timeout=180)
        shutil.rmtree(run_dir, ignore_errors=True)
