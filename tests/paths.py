"""Where test data lives: the shared corpus next to the repository, and tests/data."""

import gzip
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("LOG_INDEXER_CORPUS", REPO.parent / "shared" / "corpus"))
DATA = REPO / "tests" / "data"


def read_lines(path: Path) -> list[str]:
    """A corpus file's lines, read independently of the decoder under test (gunzipped
    when .gz, split on "\\n" only, no final empty line)."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    lines = data.decode().split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def count_lines(data: bytes) -> int:
    """Lines as a log server numbers them (`wc -l`, plus a final line without its
    newline), counted independently of the decoder under test: a lone \\r is text."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def corpus_lines(source: str) -> int:
    """count_lines of a corpus file (a path under CORPUS), gunzipped when .gz."""
    data = (CORPUS / source).read_bytes()
    return count_lines(gzip.decompress(data) if source.endswith(".gz") else data)


def write_log_shipper(directory: Path) -> Path:
    """A `log-shipper` command in `directory` (put it first on PATH) running this
    worktree's code with this interpreter, as the installed entry point would."""
    directory.mkdir(parents=True, exist_ok=True)
    command = directory / "log-shipper"
    command.write_text(
        f'#!/bin/sh\nPYTHONPATH="{REPO}${{PYTHONPATH:+:$PYTHONPATH}}" '
        f'exec "{sys.executable}" -m log_shipper.cli "$@"\n'
    )
    command.chmod(0o755)
    return command
