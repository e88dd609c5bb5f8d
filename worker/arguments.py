"""Command-line options that log-worker and log-shipper share, worded the same on both.

Kept apart from worker.cli so that the submitting side can use them without loading the
worker's runtime (pipeline, metrics, Gearman worker).
"""

from __future__ import annotations

import argparse

from worker.version import package_version


def add_allow_argument(parser: argparse.ArgumentParser) -> None:
    """--allow, added to fetch.allow: the same option wherever a worker runs."""
    parser.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="URL_PREFIX",
        help="also allow fetching under this prefix (repeatable)",
    )


def add_version_argument(parser: argparse.ArgumentParser) -> None:
    """--version: the same option on both commands."""
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {package_version()}",
        help="print the version of ci-log-indexer and exit",
    )
