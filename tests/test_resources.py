"""The shipped files (worker/resources.py): found from the imported package, in a checkout
and in a wheel built from it."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import worker
from tests.paths import REPO
from worker.errors import ConfigError
from worker.resources import resource_path

# What the team edits, and what an install must carry.
CONFIG_FILES = ["rules.yaml", "worker.yaml", "index-template.json"]


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_each_shipped_file_is_the_one_in_config(name: str) -> None:
    path = resource_path(name)
    assert path == REPO / "config" / name
    assert path.read_bytes() == (REPO / "config" / name).read_bytes()


def test_the_lookup_goes_through_the_imported_package() -> None:
    # worker/shipped is what the wheel carries; in a checkout its entries point into config/.
    shipped = Path(worker.__file__).parent / "shipped"
    assert sorted(p.name for p in shipped.iterdir()) == sorted(CONFIG_FILES)
    for name in CONFIG_FILES:
        assert (shipped / name).is_symlink()
        assert (shipped / name).resolve() == REPO / "config" / name


def test_a_missing_resource_is_named() -> None:
    with pytest.raises(ConfigError, match=re.escape("no-such-file.json: not found in")):
        resource_path("no-such-file.json")


def test_setup_cfg_packages_exactly_the_shipped_files() -> None:
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    packaged = setup["options.package_data"]["worker"].split()
    assert sorted(packaged) == sorted(f"shipped/{name}" for name in CONFIG_FILES)


def test_a_wheel_carries_the_config_files(tmp_path: Path) -> None:
    # Built from a copy, so the build leaves nothing in the repository; offline, with the
    # environment's setuptools and wheel.
    source = tmp_path / "src"
    source.mkdir()
    for name in ["setup.cfg", "pyproject.toml", "README.md", "LICENSE"]:
        shutil.copy(REPO / name, source / name)
    for name in ["config", "log_shipper", "worker"]:
        shutil.copytree(
            REPO / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    build = ["wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist")]
    result = subprocess.run([*pip, *build, str(source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in CONFIG_FILES:
            assert archive.read(f"worker/shipped/{name}") == (REPO / "config" / name).read_bytes()
        assert not [n for n in archive.namelist() if n.startswith("config/")]
