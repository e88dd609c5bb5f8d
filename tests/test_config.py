"""Worker configuration: the shipped worker.yaml, defaults, and errors that name the key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.paths import REPO
from worker.config import (
    FetchConfig,
    ParseConfig,
    SinkConfig,
    WorkerConfig,
    load_config,
    parse_config,
)
from worker.errors import ConfigError

SHIPPED = REPO / "config" / "worker.yaml"


def shipped_values() -> dict[str, Any]:
    raw = yaml.safe_load(SHIPPED.read_text())
    assert isinstance(raw, dict)
    return raw


def test_shipped_worker_yaml_loads_with_its_values() -> None:
    config = load_config(SHIPPED)
    raw = shipped_values()
    assert config.gearman == tuple(raw["gearman"])
    for section in ("sink", "fetch", "parse"):
        loaded = getattr(config, section)
        for key, value in raw[section].items():
            expected = tuple(value) if isinstance(value, list) else value
            assert getattr(loaded, key) == expected, f"{section}.{key}"
    assert config.fetch.allow == ("https://logs.example.org/",)
    assert config.fetch.max_decompressed_bytes == 17179869184  # 16 GiB, as the file says


def test_shipped_values_are_the_defaults_except_examples() -> None:
    """worker.yaml: "the values shown are the defaults unless marked example"."""
    text = SHIPPED.read_text()
    # The one uncommented example: the allow list item.
    assert re.search(r"^\s*- https://logs\.example\.org/\s+# example$", text, re.MULTILINE)
    defaults = parse_config({})
    raw = shipped_values()
    assert defaults.gearman == tuple(raw["gearman"])
    assert defaults.fetch.allow == ()
    for section in ("sink", "fetch", "parse"):
        for key, value in raw[section].items():
            if (section, key) != ("fetch", "allow"):
                assert getattr(getattr(defaults, section), key) == value, f"{section}.{key}"


def test_empty_and_missing_sections_give_defaults() -> None:
    assert parse_config(None) == WorkerConfig()
    assert parse_config({}) == WorkerConfig()
    config = parse_config({"sink": None, "fetch": {}, "parse": None})
    assert config == WorkerConfig()
    assert config.gearman == ("127.0.0.1:4730",)
    assert config.sink.url == "sqlite:./logs.db"
    assert config.fetch.allow == ()
    assert config.fetch.allow_local is False
    assert config.parse == ParseConfig(max_event_lines=500, lookahead_lines=2000)


def test_partial_section_keeps_other_defaults() -> None:
    config = parse_config({"fetch": {"read_timeout": 5, "allow": ["/srv/logs"]}})
    assert config.fetch == FetchConfig(read_timeout=5, allow=("/srv/logs",))
    assert config.sink == SinkConfig()


def test_single_string_is_accepted_as_a_one_item_list() -> None:
    config = parse_config({"gearman": "gearman.example.org:4730"})
    assert config.gearman == ("gearman.example.org:4730",)


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "worker.yaml"
    path.write_text("# nothing but a comment\n")
    assert load_config(path) == WorkerConfig()


@pytest.mark.parametrize(
    ("raw", "key", "problem"),
    [
        ({"gearmen": ["h:1"]}, "gearmen", "unknown key"),
        ({"sink": {"uri": "sqlite:x"}}, "sink.uri", "unknown key"),
        ({"fetch": {"read_timout": 3}}, "fetch.read_timout", "unknown key"),
        ({"parse": {"max_lines": 3}}, "parse.max_lines", "unknown key"),
        ({"fetch": {"read_timeout": "60s"}}, "fetch.read_timeout", "non-negative number"),
        ({"fetch": {"read_timeout": -1.5}}, "fetch.read_timeout", "non-negative number"),
        ({"fetch": {"retries": -1}}, "fetch.retries", "non-negative number"),
        ({"fetch": {"retries": True}}, "fetch.retries", "non-negative number"),
        ({"fetch": {"retries": 2.5}}, "fetch.retries", "whole number"),
        ({"sink": {"chunk_bytes": None}}, "sink.chunk_bytes", "non-negative number"),
        ({"parse": {"max_event_lines": [500]}}, "parse.max_event_lines", "number"),
        ({"sink": {"verify_certs": "no"}}, "sink.verify_certs", "true or false"),
        ({"sink": {"install_template": 1}}, "sink.install_template", "true or false"),
        ({"fetch": {"allow_local": None}}, "fetch.allow_local", "true or false"),
        ({"fetch": {"allow": 5}}, "fetch.allow", "list of strings"),
        ({"fetch": {"allow": ["https://a/", 5]}}, "fetch.allow", "list of strings"),
        ({"fetch": {"allow": {"url": "https://a/"}}}, "fetch.allow", "list of strings"),
        ({"gearman": [4730]}, "gearman", "list of strings"),
        ({"sink": {"url": 5}}, "sink.url", "must be a string"),
        ({"sink": {"password": ["x"]}}, "sink.password", "must be a string"),
        ({"fetch": {"ca_certs": True}}, "fetch.ca_certs", "must be a string"),
        ({"sink": "sqlite:x"}, "sink", "must be a mapping"),
        ({"parse": [1, 2]}, "parse", "must be a mapping"),
        ({"sink": {"chunk_documents": 0}}, "sink.chunk_documents", "at least 1"),
        ({"sink": {"concurrent_requests": 0}}, "sink.concurrent_requests", "at least 1"),
    ],
)
def test_mistakes_name_the_key(raw: dict[str, Any], key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    message = str(info.value)
    assert message.startswith(key), message
    assert problem in message


@pytest.mark.parametrize("raw", [[1, 2], "gearman: x", 42])
def test_top_level_must_be_a_mapping(raw: Any) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        parse_config(raw)


@pytest.mark.parametrize(
    "server", ["localhost", "localhost:", ":4730", "localhost:gear", "host:47 30", ""]
)
def test_bad_gearman_server_is_named(server: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"gearman": ["127.0.0.1:4730", server]})
    assert str(info.value) == f"gearman: {server!r} is not HOST:PORT"


@pytest.mark.parametrize("server", ["gearman.example.org:4730", "10.0.0.1:1", "[::1]:4730"])
def test_good_gearman_servers(server: str) -> None:
    assert parse_config({"gearman": [server]}).gearman == (server,)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my-worker.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("fetch:\n  read_timeout: soon\n", "fetch.read_timeout"),
        ("fetch:\n  read_timeout: -3\n", "fetch.read_timeout"),
        ("sink:\n  colour: blue\n", "sink.colour"),
        ("colour: blue\n", "colour"),
        ("sink:\n  verify_certs: maybe\n", "sink.verify_certs"),
        ("gearman: localhost\n", "gearman"),
        ("fetch:\n  allow: 7\n", "fetch.allow"),
    ],
)
def test_load_config_names_the_file_and_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}"), message


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "sink:\n  url: [unclosed\nfetch: {\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: not valid YAML")


def test_tab_indented_yaml_is_invalid(tmp_path: Path) -> None:
    path = write(tmp_path, "sink:\n\turl: sqlite:x\n")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: cannot read")
    assert "No such file" in message


def test_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_build_index_inside_the_line_indices_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"sink\.build_index"):
        parse_config({"sink": {"index_prefix": "logs-", "build_index": "logs-builds"}})
