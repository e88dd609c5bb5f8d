"""Nothing secret is searchable on any sink (SQLite, Elasticsearch, OpenSearch): the
secrets devstack's own log prints, and every form of issue 10 point 8 planted in real
corpus lines, indexed with `log-shipper index` through the real pipeline. Each secret
must be found by no search and be in no stored field, and the rest of its line must be
as it was."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import orjson
import pytest
import yaml

from log_shipper.cli import main
from tests.integration.conftest import SinkUnderTest
from tests.integration.test_index import count, index
from tests.integration.trees import make_tree
from tests.paths import CORPUS
from tests.test_redact import BLOCK, GHP, MASKED_BLOCK, PAT, PLANTED
from worker.redact import MASK

DEVSTACK = "os-loganalyze/devstacklog.txt.gz"
# Written here as plain expressions over the file, not with worker.redact: the console
# prefix, then the command with its secret value.
INISET = re.compile(r"^\S+ \S+ \| (\++ iniset \S+ \S+ \S+ )(secret|111222333444)$")
MYSQL = re.compile(r"^\S+ \S+ \| (.*mysql -uroot -p)secret( .*)$")
PREFIX = "2014-03-17 16:14:05.112 | "  # devstack's console prefix, as in the file


def search_all(sink: SinkUnderTest, query: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert main(["search", query, "--config", str(sink.config), "--json", "--size", "5000"]) == 0
    return [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]


def devstack_lines() -> list[str]:
    with gzip.open(CORPUS / DEVSTACK, "rt", encoding="utf-8", errors="replace") as f:
        return f.read().split("\n")


def test_devstack_log_secrets_are_not_searchable(
    sink: SinkUnderTest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = devstack_lines()
    iniset = [m for m in map(INISET.match, lines) if m]
    mysql = [m for m in map(MYSQL.match, lines) if m]
    assert (len(iniset), len(mysql)) == (22, 13)  # as issue 10 counts them
    # What each of those lines must be indexed as: the value masked, nothing else
    # changed (the GRANT line also gives the password as '\''secret'\'').
    expected = [m.group(1) + MASK for m in iniset]
    expected += [
        m.group(1) + MASK + m.group(2).replace("'\\''secret'\\''", f"'\\''{MASK}'\\''")
        for m in mysql
    ]
    leaked = [m.group(0).partition(" | ")[2] for m in (*iniset, *mysql)]

    index(sink, make_tree(tmp_path / "build", {"logs/devstacklog.txt.gz": DEVSTACK}), capsys)

    where = 'filename:"logs/devstacklog.txt"'
    assert count(sink, where, capsys) > 10000
    # The admin token is printed nowhere but in forms the rules know.
    assert count(sink, f'"111222333444" AND {where}', capsys) == 0
    messages = {
        hit["message"]
        for word in ("iniset", "mysql", "secret")
        for hit in search_all(sink, f"message:{word} AND {where}", capsys)
    }
    for line in leaked:
        assert line not in messages
    for line in expected:
        assert line in messages
    # And on no line is the value searchable next to the word that announces it.
    for phrase in ("admin_password secret", "admin_token 111222333444", "psecret"):
        assert count(sink, f'"{phrase}" AND {where}', capsys) == 0


# A file of real devstack lines (ones that announce nothing secret), each with one of
# the planted forms after it; then a private key printed line by line, one console line
# (so one event) each; then a line after the key.
def planted_console() -> tuple[str, list[str]]:
    ordinary = [
        line.partition(" | ")[2]
        for line in devstack_lines()
        if " | + " in line and not re.search(r"(?i)pass|secret|token|key|mysql|iniset", line)
    ][500 : 500 + len(PLANTED)]
    text_lines, expected = [], []
    for line, (planted, _, masked) in zip(ordinary, PLANTED, strict=True):
        text_lines.append(f"{PREFIX}{line} {planted}")
        expected.append(f"{line} {masked}")
    text_lines += [f"{PREFIX}+ cat /opt/stack/.ssh/id_rsa", *(PREFIX + key for key in BLOCK)]
    expected += ["+ cat /opt/stack/.ssh/id_rsa", *MASKED_BLOCK]
    text_lines.append(f"{PREFIX}+ ssh-keygen -y -f /opt/stack/.ssh/id_rsa")
    expected.append("+ ssh-keygen -y -f /opt/stack/.ssh/id_rsa")
    return "\n".join(text_lines) + "\n", expected


# There is no Apache file in the corpus: these access lines follow Apache's documented
# combined format (LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\"").
ACCESS = (
    '10.0.0.5 - - [17/Mar/2014:16:14:05 +0000] "GET /v3/auth?password=hunter2&token=s3cr3t'
    ' HTTP/1.1" 200 2326 "-" "python-keystoneclient"\n'
    '10.0.0.5 - - [17/Mar/2014:16:14:06 +0000] "GET /v3/projects HTTP/1.1" 200 120 "-" "curl"\n'
)
EXTRA_RULE = {"name": "corp_pin", "guard": "PIN ", "pattern": r"PIN (?P<secret>\d{6})"}


def test_planted_secrets_are_not_searchable(
    sink: SinkUnderTest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    console, expected = planted_console()
    root = tmp_path / "build"
    (root / "logs").mkdir(parents=True)
    (root / "logs/devstack-gate-planted.txt").write_text(
        console + f"{PREFIX}+ unlock --with PIN 424242 --device 3\n"
    )
    expected.append(f"+ unlock --with PIN {MASK} --device 3")
    (root / "logs/screen-s-account.txt").write_text(ACCESS)
    # An extra rule from the configuration applies as the built-in ones do.
    config = yaml.safe_load(sink.config.read_text())
    config["redact"] = {"extra": [EXTRA_RULE]}
    sink.config.write_text(yaml.safe_dump(config))

    index(sink, root, capsys)

    planted = search_all(sink, 'filename:"logs/devstack-gate-planted.txt"', capsys)
    by_line = sorted(planted, key=lambda hit: hit["line_number"])
    assert [hit["message"] for hit in by_line] == expected
    access = search_all(sink, 'filename:"logs/screen-s-account.txt"', capsys)
    assert len(access) == 2
    request = next(hit for hit in access if "/v3/auth" in hit["message"])
    assert request["request"] == f"/v3/auth?password={MASK}&token={MASK}"
    assert f"GET /v3/auth?password={MASK}&token={MASK} HTTP/1.1" in request["message"]

    secrets = [secret for _, secret, _ in PLANTED]
    secrets += [GHP, PAT, *BLOCK[1:-1], "hunter2", "s3cr3t", "424242"]
    stored = [orjson.dumps(hit).decode() for hit in (*planted, *access)]
    for secret in secrets:
        assert count(sink, f'"{secret}"', capsys) == 0, secret
        assert not any(secret in document for document in stored), secret
    for value in ("/v3/auth?password=hunter2&token=s3cr3t", "hunter2"):
        assert count(sink, f'request:"{value}"', capsys) == 0
