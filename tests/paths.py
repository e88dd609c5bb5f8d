"""Where test data lives: the shared corpus next to the repository, and tests/data."""

import gzip
import os
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
