"""Start the real search engines that integration tests run against (see tools/engine)."""

import subprocess
import sys

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
