"""The version of ci-log-indexer, as `--version` prints it."""

from __future__ import annotations

import configparser
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "ci-log-indexer"
# A checkout run without installing it (PYTHONPATH=.) has no package metadata, but has
# the file the metadata is made from.
_SETUP_CFG = Path(__file__).resolve().parents[1] / "setup.cfg"


def package_version() -> str:
    """The installed distribution's version, else the checkout's setup.cfg, else "unknown"."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    parser = configparser.ConfigParser()
    try:
        parser.read(_SETUP_CFG, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return "unknown"
    return parser.get("metadata", "version", fallback="unknown")
