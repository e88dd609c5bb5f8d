import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.engines import private_engine, run_engine_tool, start_engine


def get(url: str) -> tuple[dict[str, Any], dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        headers = {key.lower(): value for key, value in response.headers.items()}
        return json.loads(response.read()), headers


def test_elasticsearch_is_version_8(elasticsearch_url: str) -> None:
    # `GET /` is not served by the integ-test-zip (no rest-root module, it answers
    # 405), so the version comes from the local node's info instead.
    body, headers = get(f"{elasticsearch_url}/_nodes/_local?filter_path=nodes.*.version")
    assert headers.get("x-elastic-product") == "Elasticsearch"
    (node,) = body["nodes"].values()
    assert node["version"].startswith("8.")


def test_opensearch_root_reports_distribution(opensearch_url: str) -> None:
    body, _ = get(f"{opensearch_url}/")
    assert body["version"]["distribution"] == "opensearch"
    assert body["version"]["number"].startswith("3.")


@pytest.mark.parametrize("engine", ["elasticsearch", "opensearch"])
def test_cluster_is_healthy(engine: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(f"{engine}_url")
    body, _ = get(f"{url}/_cluster/health")
    assert body["status"] in ("green", "yellow")


@pytest.mark.parametrize("engine", ["elasticsearch", "opensearch"])
def test_status_reports_running(engine: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue(f"{engine}_url")
    result = run_engine_tool("status", engine, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"{engine}: running {url}" in result.stdout


@pytest.mark.parametrize("engine", ["elasticsearch", "opensearch"])
def test_starting_a_running_engine_is_quick_and_stable(
    engine: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{engine}_url")
    began = time.monotonic()
    assert start_engine(engine) == url
    assert time.monotonic() - began < 10


def test_a_private_node_runs_with_its_settings_and_keeps_its_data_across_a_restart() -> None:
    settings = {"thread_pool.write.size": "1", "thread_pool.write.queue_size": "1"}
    with private_engine("opensearch", settings) as engine:
        assert engine.url not in ("http://127.0.0.1:9250", "http://127.0.0.1:9260")
        nodes = json.loads(urllib.request.urlopen(f"{engine.url}/_nodes/settings").read())
        (node,) = nodes["nodes"].values()
        assert node["settings"]["thread_pool"]["write"] == {"size": "1", "queue_size": "1"}
        put = urllib.request.Request(
            f"{engine.url}/kept/_doc/1?refresh=true",
            data=b'{"a": 1}',
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        urllib.request.urlopen(put).read()
        engine.stop()
        engine.start()
        count = json.loads(urllib.request.urlopen(f"{engine.url}/kept/_count").read())
        assert count["count"] == 1


def test_a_malformed_setting_is_one_line_and_exit_1() -> None:
    result = run_engine_tool("start", "opensearch", "--setting", "no-equals-sign")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "engine: error: --setting 'no-equals-sign': expected KEY=VALUE, KEY a dotted setting name"
    ]


@pytest.mark.parametrize("nodes", ["0", "10"])
def test_a_cluster_size_out_of_range_is_one_line_and_exit_1(nodes: str) -> None:
    result = run_engine_tool("start", "opensearch", "--nodes", nodes)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"engine: error: --nodes {nodes}: expected 1 to 9"
    ]


def test_killing_a_node_that_does_not_run_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = run_engine_tool(
        "kill", "opensearch", "--node", "2", env={"ENGINE_RUN_DIR": str(tmp_path)}
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["engine: error: opensearch node 2 is not running"]
