"""`--version` of both commands: the version setup.cfg gives the distribution."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import REPO
from tests.test_worker_cli import environment


def setup_cfg_version() -> str:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg", encoding="utf-8")
    return parser["metadata"]["version"]


def run_python(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("module", "prog"), [("log_shipper.cli", "log-shipper"), ("worker.cli", "log-worker")]
)
def test_version_prints_the_version_of_setup_cfg(tmp_path: Path, module: str, prog: str) -> None:
    result = run_python(tmp_path, "-m", module, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{prog} {setup_cfg_version()}\n"
    assert result.stderr == ""


def test_a_checkout_that_is_not_installed_reads_setup_cfg(tmp_path: Path) -> None:
    # -S: no site-packages, so no installed distribution metadata can be found.
    code = "from worker.version import package_version; print(package_version())"
    result = run_python(tmp_path, "-S", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{setup_cfg_version()}\n"
