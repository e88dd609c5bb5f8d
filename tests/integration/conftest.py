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


@pytest.fixture(params=SINK_KINDS)
def sink(request: pytest.FixtureRequest, tmp_path: Path) -> SinkUnderTest:
    kind = request.param
    if kind == "sqlite":
        url = f"sqlite:{tmp_path / 'logs.db'}"
    else:
        url = f"{kind}+{request.getfixturevalue(f'{kind}_url')}"
    # A fresh prefix per test keeps tests independent on the long-running engines.
    prefix = index_prefix()
    config = tmp_path / "worker.yaml"
    config.write_text(yaml.safe_dump({"sink": {"url": url, "index_prefix": prefix}}))
    return SinkUnderTest(url, config)
