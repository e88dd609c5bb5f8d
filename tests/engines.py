"""Start the real search engines that integration tests run against (see tools/engine)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
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
    name: str, env: Mapping[str, str] | None = None, settings: Mapping[str, str] | None = None
) -> str:
    """Start (or reuse) engine `name` and return its base URL.

    Raises instead of skipping: a test that needs an engine must fail loudly
    when the engine cannot be started.
    """
    options = [f"--setting={key}={value}" for key, value in (settings or {}).items()]
    result = run_engine_tool("start", name, *options, env=env)
    url = result.stdout.strip()
    if result.returncode != 0 or not url.startswith("http://"):
        tail = "\n".join(result.stderr.strip().splitlines()[-60:])
        raise RuntimeError(f"tools/engine start {name} failed (exit {result.returncode}):\n{tail}")
    return url


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
        state = json.loads((self.run_dir / self.name / "state.json").read_text())
        os.killpg(int(state["pgid"]), signal.SIGKILL)


def free_port_pair() -> int:
    """A free HTTP port whose transport port (+100, see tools/engine) is free too."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + 100 > 65535:
            continue
        with socket.socket() as other:
            try:
                other.bind(("127.0.0.1", port + 100))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a private engine")


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
