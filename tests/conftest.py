from collections.abc import Iterator
from pathlib import Path

import gear
import pytest

from tests.engines import delete_test_indices, start_engine
from tests.gearmand import Gearmand
from tests.httpserver import LogServer, serve_directory
from tests.paths import CORPUS


# Engines are left running after the session on purpose: the next run reuses them;
# the indices the session wrote are deleted.
@pytest.fixture(scope="session")
def elasticsearch_url() -> Iterator[str]:
    url = start_engine("elasticsearch")
    yield url
    delete_test_indices(url)


@pytest.fixture(scope="session")
def opensearch_url() -> Iterator[str]:
    url = start_engine("opensearch")
    yield url
    delete_test_indices(url)


@pytest.fixture
def gearmand(tmp_path: Path) -> Iterator[Gearmand]:
    """A real gearmand on a free port with its queue in tmp_path; stopped afterwards."""
    server = Gearmand(tmp_path / "gearmand")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server() -> Iterator[LogServer]:
    """A real HTTP server on a free port serving the corpus directory."""
    with serve_directory(CORPUS) as running:
        yield running


@pytest.fixture
def gearman() -> Iterator[gear.Server]:
    """gear's own Gearman server, in this process, on a free port."""
    running = gear.Server(port=0, host="127.0.0.1")
    try:
        yield running
    finally:
        running.shutdown()
