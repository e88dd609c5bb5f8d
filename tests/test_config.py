"""Worker configuration: the shipped worker.yaml, defaults, and errors that name the key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from log_shipper.cli import main as shipper_main
from tests.paths import REPO
from worker.cli import main as worker_main
from worker.config import (
    FetchConfig,
    ParseConfig,
    SinkConfig,
    SinkURL,
    WorkerConfig,
    load_config,
    parse_config,
    parse_sink_url,
)
from worker.errors import ConfigError
from worker.sinks import open_sink

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


@pytest.mark.parametrize(("value", "expected"), [(None, None), (0, 0), (1, 1), (2, 2)])
def test_sink_replicas_is_a_count_or_unset(value: int | None, expected: int | None) -> None:
    assert SinkConfig().replicas is None  # the template's own setting
    assert parse_config({"sink": {"replicas": value}}).sink.replicas == expected


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
        ({"parse": {"max_events": 3}}, "parse.max_events", "unknown key"),
        ({"fetch": {"read_timeout": "60s"}}, "fetch.read_timeout", "positive number"),
        ({"fetch": {"read_timeout": -1.5}}, "fetch.read_timeout", "positive number"),
        ({"fetch": {"retries": -1}}, "fetch.retries", "non-negative number"),
        ({"fetch": {"retries": True}}, "fetch.retries", "non-negative number"),
        ({"fetch": {"retries": 2.5}}, "fetch.retries", "whole number"),
        ({"fetch": {"reread_attempts": -1}}, "fetch.reread_attempts", "non-negative number"),
        ({"fetch": {"reread_attempts": 1.5}}, "fetch.reread_attempts", "whole number"),
        ({"sink": {"chunk_bytes": None}}, "sink.chunk_bytes", "positive number"),
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
        ({"sink": {"chunk_documents": 0}}, "sink.chunk_documents", "positive number"),
        ({"sink": {"concurrent_requests": 0}}, "sink.concurrent_requests", "positive number"),
        # Sizes, timeouts and caps of which zero means nothing but "index nothing".
        ({"fetch": {"chunk_bytes": 0}}, "fetch.chunk_bytes", "positive number"),
        ({"fetch": {"max_line_bytes": 0}}, "fetch.max_line_bytes", "positive number"),
        ({"fetch": {"max_line_bytes": -5}}, "fetch.max_line_bytes", "positive number"),
        ({"fetch": {"max_compressed_bytes": 0}}, "fetch.max_compressed_bytes", "positive"),
        ({"fetch": {"max_decompressed_bytes": 0}}, "fetch.max_decompressed_bytes", "positive"),
        ({"fetch": {"connect_timeout": 0}}, "fetch.connect_timeout", "positive number"),
        ({"fetch": {"read_timeout": 0.0}}, "fetch.read_timeout", "positive number"),
        ({"sink": {"chunk_bytes": 0}}, "sink.chunk_bytes", "positive number"),
        ({"sink": {"request_timeout": 0}}, "sink.request_timeout", "positive number"),
        ({"parse": {"max_event_lines": 0}}, "parse.max_event_lines", "positive number"),
        # The caps against decompression bombs (issue 10).
        ({"parse": {"max_lines": 0}}, "parse.max_lines", "positive number"),
        ({"parse": {"max_lines": 1e6}}, "parse.max_lines", "whole number"),
        ({"fetch": {"max_decompression_ratio": 0}}, "fetch.max_decompression_ratio", "positive"),
        (
            {"fetch": {"max_decompression_ratio": "100x"}},
            "fetch.max_decompression_ratio",
            "positive",
        ),
        ({"fetch": {"ratio_after_bytes": -1}}, "fetch.ratio_after_bytes", "non-negative number"),
        ({"fetch": {"ratio_after_bytes": 1.5}}, "fetch.ratio_after_bytes", "whole number"),
        ({"fetch": {"max_line_bytes": 1.5}}, "fetch.max_line_bytes", "whole number"),
        ({"sink": {"outage_seconds": 0}}, "sink.outage_seconds", "positive number"),
        ({"sink": {"outage_seconds": "10m"}}, "sink.outage_seconds", "positive number"),
        ({"sink": {"backoff": 0}}, "sink.backoff", "positive number"),
        ({"sink": {"max_backoff": -1}}, "sink.max_backoff", "positive number"),
        ({"sink": {"max_retries": 5}}, "sink.max_retries", "no longer used"),
        ({"sink": {"replicas": -1}}, "sink.replicas", "non-negative number"),
        ({"sink": {"replicas": 1.5}}, "sink.replicas", "whole number"),
        ({"sink": {"replicas": "1"}}, "sink.replicas", "non-negative number"),
        ({"sink": {"replicas": True}}, "sink.replicas", "non-negative number"),
        ({"gearman": ["h:0"]}, "gearman", "is not HOST:PORT"),
        ({"gearman": ["h:65536"]}, "gearman", "is not HOST:PORT"),
        ({"sink": {"url": "elasticsearch://h:9200"}}, "sink.url", "missing +http or +https"),
        ({"sink": {"url": "logs.db"}}, "sink.url", "no scheme"),
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
        ("sink:\n  outage_seconds: 0\n", "sink.outage_seconds"),
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


# --- secrets from the environment and from files -------------------------------------------


def test_variables_in_strings_come_from_the_environment() -> None:
    env = {"SINK_HOST": "search.example.org", "SINK_PW": "pw with $ and }", "LOGS": "logs.example"}
    config = parse_config(
        {
            "sink": {
                "url": "elasticsearch+https://${SINK_HOST}:9200",
                "username": "indexer",
                "password": "${SINK_PW}",
            },
            "fetch": {"allow": ["https://${LOGS}/", "https://${LOGS}.org/${LOGS}/"]},
        },
        env,
    )
    assert config.sink.url == "elasticsearch+https://search.example.org:9200"
    assert config.sink.password == "pw with $ and }"  # the value is not expanded again
    assert config.fetch.allow == ("https://logs.example/", "https://logs.example.org/logs.example/")


def test_text_that_is_no_variable_stays_as_written() -> None:
    config = parse_config({"sink": {"password": "a$b ${ $x ${1X}"}}, {})
    assert config.sink.password == "a$b ${ $x ${1X}"


def test_an_unset_variable_names_the_key_the_variable_and_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "sink:\n  password: ${CI_LOG_INDEXER_TEST_UNSET}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: sink.password: environment variable CI_LOG_INDEXER_TEST_UNSET is not set"
    )


def test_load_config_expands_from_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI_LOG_INDEXER_TEST_KEY", "a2V5OnNlY3JldA==")
    path = write(tmp_path, "sink:\n  api_key: ${CI_LOG_INDEXER_TEST_KEY}\n")
    assert load_config(path).sink.api_key == "a2V5OnNlY3JldA=="


@pytest.mark.parametrize("name", ["password", "api_key"])
def test_secret_files_are_read_at_load_time(tmp_path: Path, name: str) -> None:
    secret = tmp_path / f"{name}.txt"
    secret.write_text("c0rrect horse\n")  # the file's final newline is no part of it
    config = parse_config({"sink": {f"{name}_file": str(secret)}})
    assert getattr(config.sink, name) == "c0rrect horse"
    assert "c0rrect" not in repr(config)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"password_file": "{dir}/absent"}, "sink.password_file: {dir}/absent: cannot read: "),
        ({"api_key_file": "{dir}"}, "sink.api_key_file: {dir}: cannot read: "),
        ({"password_file": "{dir}/empty"}, "sink.password_file: {dir}/empty: is empty"),
        (
            {"password_file": "{dir}/secret", "password": "x"},
            "sink.password_file: sink.password is given too",
        ),
        ({"api_key_file": 5}, "sink.api_key_file must be a string"),
    ],
)
def test_secret_file_mistakes_name_the_key_and_the_file(
    tmp_path: Path, settings: dict[str, Any], problem: str
) -> None:
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "secret").write_text("s")
    sink = {k: v.format(dir=tmp_path) if isinstance(v, str) else v for k, v in settings.items()}
    path = write(tmp_path, yaml.safe_dump({"sink": sink}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: {problem.format(dir=tmp_path)}"), info.value


# --- YAML mistakes: one line naming the file, the line and the column ----------------------


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("sink:\n  url: [unclosed\nfetch: {\n", "line 3, column 6"),  # the ':' of fetch:
        ("sink:\n\turl: sqlite:x\n", "line 2, column 1"),
        ("fetch:\n  retries: 1\n   backoff: 2\n", "line 3, column 11"),
    ],
)
def test_malformed_yaml_is_one_line_naming_file_line_and_column(
    tmp_path: Path, text: str, where: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not valid YAML: "), message
    assert message.endswith(f" at {where}"), message
    assert "\n" not in message and "<unicode string>" not in message


# --- sink URLs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:./logs.db", SinkURL("sqlite", "./logs.db")),
        ("sqlite:///var/lib/logs.db", SinkURL("sqlite", "/var/lib/logs.db")),
        ("elasticsearch+http://127.0.0.1:9200", SinkURL("elasticsearch", "http://127.0.0.1:9200")),
        ("opensearch+https://search:443/proxy/", SinkURL("opensearch", "https://search:443/proxy")),
        (
            "elasticsearch+https://indexer:p%40ss@search:9200",
            SinkURL("elasticsearch", "https://search:9200", "indexer", "p@ss"),
        ),
        ("opensearch+http://TOKEN@[::1]:9200", SinkURL("opensearch", "http://[::1]:9200", "TOKEN")),
        # The nodes of one cluster: one set of credentials, the path on each of them.
        (
            "elasticsearch+https://indexer:p%40ss@n1:9200,n2:9201,[::1]:9202/proxy/",
            SinkURL(
                "elasticsearch",
                "https://n1:9200/proxy",
                "indexer",
                "p@ss",
                ("https://n2:9201/proxy", "https://[::1]:9202/proxy"),
            ),
        ),
    ],
)
def test_sink_urls_are_taken_apart_with_the_credentials_out_of_the_target(
    url: str, expected: SinkURL
) -> None:
    parsed = parse_sink_url(url)
    assert parsed == expected
    assert parsed.password is None or parsed.password not in repr(parsed)


def test_credentials_in_the_url_and_in_the_sink_section_are_refused() -> None:
    url = "elasticsearch+http://indexer:hunter2@127.0.0.1:9200"
    with pytest.raises(ConfigError) as info:
        open_sink(url, SinkConfig(username="other", password="x"))
    assert str(info.value) == (
        "sink URL 'elasticsearch+http://***@127.0.0.1:9200' has credentials and so does the "
        "sink: section (username or api_key); give them in one place"
    )


# --- malformed sink URLs, through the real command lines -----------------------------------

# (URL, what the one error line must say). Written by hand from the URL forms
# sqlite:PATH and KIND+http(s)://HOST:PORT.
BAD_SINK_URLS = [
    ("elasticsearch://127.0.0.1:9200", "missing +http or +https after elasticsearch"),
    ("opensearch:search:9200", "missing +http or +https after opensearch"),
    ("logs.db", "no scheme"),
    (":9200", "no scheme"),
    ("postgres://db/logs", "unknown sink kind 'postgres'"),
    ("Elasticsearch+http://h:9200", "unknown sink kind 'Elasticsearch'"),
    ("elasticsearch+ftp://h:9200", "unknown transport 'ftp'"),
    ("elasticsearch+http:h:9200", "no //HOST:PORT"),
    ("opensearch+https://", "no host"),
    ("opensearch+https://:9200", "no host"),
    ("elasticsearch+http://search:92x0", "port '92x0' is not a number from 1 to 65535"),
    ("elasticsearch+http://search:99999", "port '99999' is not a number from 1 to 65535"),
    ("opensearch+http://search:0", "port 0 is not a port to connect to"),
    ("elasticsearch+http://search", "no port"),
    ("sqlite:", "no path"),
    ("sqlite://", "no path"),
    ("sqlite::memory:", "an in-memory database is not shared"),
    ("sqlite+http://h:1", "sqlite takes a path"),
    ("elasticsearch+http://indexer:hunter2@search:x", "port 'x' is not a number"),
    ("elasticsearch+http://n1:9200,n2", "host 'n2': no port"),
    ("opensearch+http://n1:9200,,n3:9200", "host '': no host"),
    ("opensearch+http://n1:9200,n2:0", "host 'n2:0': port 0 is not a port to connect to"),
    ("elasticsearch+http://indexer:hunter2@n1:9200,n2:x", "host 'n2:x': port 'x' is not"),
]
PASSWORD = "hunter2"  # in the last URL: never printed


def shipper(*args: str) -> int:
    return shipper_main(list(args))


def worker(*args: str) -> int:
    return worker_main(list(args))


def sink_url_commands(tmp_path: Path, url: str) -> dict[str, Callable[[], int]]:
    """Every command that takes a sink URL, given `url` on the command line or in the
    worker configuration."""
    tree = tmp_path / "build"
    tree.mkdir(exist_ok=True)
    (tree / "job-output.txt").write_text("2024-01-01 00:00:00.000 | line\n")
    empty = write(tmp_path, "{}\n")
    configured = tmp_path / "sink-worker.yaml"
    configured.write_text(yaml.safe_dump({"sink": {"url": url}}))
    return {
        "index --sink": lambda: shipper("index", str(tree), "--sink", url, "--job-name", "j"),
        "search --sink": lambda: shipper("search", "*", "--sink", url),
        "search --config": lambda: shipper("search", "*", "--config", str(configured)),
        "check-config": lambda: shipper("check-config", "--config", str(configured)),
        "log-worker --sink": lambda: worker("--config", str(empty), "--sink", url),
        "log-worker --sink --check-config": lambda: worker(
            "--config", str(empty), "--sink", url, "--check-config"
        ),
        "log-worker --check-config": lambda: worker("--config", str(configured), "--check-config"),
    }


@pytest.mark.parametrize(("url", "problem"), BAD_SINK_URLS)
def test_a_malformed_sink_url_is_one_line_and_exit_status_2_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, problem: str
) -> None:
    for name, command in sink_url_commands(tmp_path, url).items():
        code = command()
        out, err = capsys.readouterr()
        assert code == 2, (name, out, err)
        lines = err.splitlines()
        assert len(lines) == 1, (name, err)
        assert "sink URL '" in lines[0] and problem in lines[0], (name, err)
        assert PASSWORD not in out + err, (name, out, err)
    assert not list(tmp_path.glob("*.db")), "a database was opened"


@pytest.mark.parametrize(
    "command",
    [
        ["log_shipper.cli", "index", ".", "--sink", "elasticsearch://127.0.0.1:9200"],
        ["log_shipper.cli", "search", "*", "--sink", "elasticsearch://127.0.0.1:9200"],
        ["worker.cli", "--config", "/dev/null", "--sink", "elasticsearch://127.0.0.1:9200"],
    ],
)
def test_engine_url_without_transport_exits_2_as_a_process(
    tmp_path: Path, command: list[str]
) -> None:
    # Exit status 2 is what systemd's RestartPreventExitStatus=2 stops restarting on.
    result = subprocess.run(
        [sys.executable, "-m", *command],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"{'log-worker' if command[0] == 'worker.cli' else 'log-shipper'}: error: sink URL "
        "'elasticsearch://127.0.0.1:9200': missing +http or +https after elasticsearch "
        "(expected sqlite:PATH, elasticsearch+http(s)://HOST:PORT or "
        "opensearch+http(s)://HOST:PORT)"
    ]


# --- log-shipper check-config: the worker configuration and the rules ----------------------


def test_check_config_accepts_the_shipped_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert shipper("check-config", "--config", str(SHIPPED)) == 0
    assert shipper("check-config", "--rules", str(REPO / "config" / "rules.yaml")) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines() == [
        f"{SHIPPED}: ok",
        "default rules: ok",
        f"{REPO}/config/rules.yaml: ok",
    ]


@pytest.mark.parametrize(
    ("option", "text", "problem"),
    [
        ("--config", "fetch:\n  chunk_bytes: 0\n", "fetch.chunk_bytes must be a positive number"),
        ("--config", "fetch:\n  max_line_bytes: 0\n", "fetch.max_line_bytes must be a positive"),
        ("--config", "sink:\n  url: sqlite\n", "sink.url: sink URL 'sqlite': no scheme"),
        ("--config", "sink: {url: [x\n", "not valid YAML: "),
        (
            "--rules",
            "files:\n  - name: console\n    format: consol\n",
            "files[0].format: unknown format 'consol' (known formats: apache, console, github, "
            "oslo, plain, syslog)",
        ),
        ("--rules", "files:\n  - name: a\n    max_bytes: 0\n", "files[0].max_bytes must be"),
        ("--rules", "files: [\n", "not valid YAML: "),
    ],
)
def test_check_config_names_the_file_and_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, text: str, problem: str
) -> None:
    path = write(tmp_path, text)
    assert shipper("check-config", option, str(path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"log-shipper: error: {path}: ") and problem in err, err
    assert len(err.splitlines()) == 1, err
