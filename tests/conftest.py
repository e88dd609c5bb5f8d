from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engines import start_engine
from tests.gearmand import Gearmand


# Engines are left running after the session on purpose: the next run reuses them.
@pytest.fixture(scope="session")
def elasticsearch_url() -> str:
    return start_engine("elasticsearch")


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    return start_engine("opensearch")


@pytest.fixture
def gearmand(tmp_path: Path) -> Iterator[Gearmand]:
    """A real gearmand on a free port with its queue in tmp_path; stopped afterwards."""
    server = Gearmand(tmp_path / "gearmand")
    server.start()
    try:
        yield server
    finally:
        server.stop()
