"""The same integration cases run against every sink: SQLite, Elasticsearch, OpenSearch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.engines import index_prefix

SINK_KINDS = ("sqlite", "elasticsearch", "opensearch")


@dataclass(frozen=True)
class SinkUnderTest:
    url: str
    config: Path  # a worker.yaml giving this test its own index prefix


def sink_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of the sink a fixture parametrised with SINK_KINDS is at."""
    kind = request.param
    if kind == "sqlite":
        return f"sqlite:{tmp_path / 'logs.db'}"
    return f"{kind}+{request.getfixturevalue(f'{kind}_url')}"


@pytest.fixture(params=SINK_KINDS)
def sink(request: pytest.FixtureRequest, tmp_path: Path) -> SinkUnderTest:
    url = sink_url(request, tmp_path)
    # A fresh prefix per test keeps tests independent on the long-running engines.
    prefix = index_prefix()
    config = tmp_path / "worker.yaml"
    config.write_text(yaml.safe_dump({"sink": {"url": url, "index_prefix": prefix}}))
    return SinkUnderTest(url, config)
