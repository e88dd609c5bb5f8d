"""Start the real search engines that integration tests run against (see tools/engine)."""

import json
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Sequence

from tests.paths import REPO

ENGINE_SCRIPT = REPO / "tools" / "engine"


def run_engine_tool(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    # Same interpreter as the tests, so the script never depends on what `python3` is on PATH.
    return subprocess.run(
        [sys.executable, str(ENGINE_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_engine(name: str) -> str:
    """Start (or reuse) engine `name` and return its base URL.

    Raises instead of skipping: a test that needs an engine must fail loudly
    when the engine cannot be started.
    """
    result = run_engine_tool("start", name)
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
