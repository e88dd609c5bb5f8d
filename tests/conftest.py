import pytest

from tests.engines import start_engine


# Engines are left running after the session on purpose: the next run reuses them.
@pytest.fixture(scope="session")
def elasticsearch_url() -> str:
    return start_engine("elasticsearch")


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    return start_engine("opensearch")
