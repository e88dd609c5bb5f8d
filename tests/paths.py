"""Where test data lives: the shared corpus next to the repository, and tests/data."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("LOG_INDEXER_CORPUS", REPO.parent / "shared" / "corpus"))
DATA = REPO / "tests" / "data"
