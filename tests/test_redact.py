"""Secret masking: hand-written examples of each kind, then the real corpus.

Expected values come from the inputs: secrets are found with this file's own regular
expressions (or are literally in the hand-written line) and must be gone afterwards.
"""

from __future__ import annotations

import gzip
import re
from functools import cache
from pathlib import Path

import pytest

from tests.paths import CORPUS
from worker.events import Event
from worker.redact import MASK, mask_url, redact_events, redact_text

LOGANALYZE = CORPUS / "os-loganalyze"
SCREEN_C_API = LOGANALYZE / "screen-c-api.txt"
SCREEN_N_API = LOGANALYZE / "screen-n-api.txt.gz"
CONSOLE_HTML = LOGANALYZE / "console.html.gz"
DEVSTACKLOG = LOGANALYZE / "devstacklog.txt.gz"
GITHUB_LOG = CORPUS / "bugswarm" / "2360239904-orig.log"

# Words that may announce a secret; a line with none of them must never change.
SUSPECT = re.compile(r"(?i)pass|secret|token|authoriz|api_?key|akia|://")
# A value after "password=", up to a blank or a quote, optionally opened by a quote.
PASSWORD_VALUE = re.compile(r"(?i)password=([\"']?)([^\s\"']+)")
URL_CREDENTIALS = re.compile(r"([a-z][a-z0-9+.-]*://[^\s:/@]+:)([^\s@/]+)@")
AUTH_TOKEN_HEADER = re.compile(r"X-Auth-Token: ([^\s'\"]+)")


@cache
def lines_of(path: Path) -> tuple[str, ...]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return tuple(data.decode("utf-8", "replace").splitlines())


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("mysql://root:s3cr3t@127.0.0.1/nova?charset=utf8", "s3cr3t"),
        ("git clone https://ci-bot:ghp_a1B2c3D4@github.com/org/repo.git", "ghp_a1B2c3D4"),
        ("amqp://stackrabbit:guest-pw@10.0.0.5:5672/", "guest-pw"),
    ],
)
def test_url_credentials_are_masked(line: str, secret: str) -> None:
    redacted = redact_text(line)
    assert secret not in redacted
    user_part, _, host_part = line.partition(f":{secret}@")
    assert redacted == f"{user_part}:{MASK}@{host_part}"


def test_urls_without_credentials_are_kept() -> None:
    line = "GET http://127.0.0.1:8776/v1/volumes?marker=a@b HTTP/1.1"
    assert redact_text(line) == line


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("+ OS_PASSWORD=hunter2", f"+ OS_PASSWORD={MASK}"),
        (
            "openstack user create --password=hunter2 demo",
            f"openstack user create --password={MASK} demo",
        ),
        ("admin_password = hunter2", f"admin_password = {MASK}"),
        ("connect(user='x', password='hunter2')", f"connect(user='x', password='{MASK}')"),
        ("?user=a&passwd=hunter2&x=1", f"?user=a&passwd={MASK}&x=1"),
        ("client_secret: abc123", f"client_secret: {MASK}"),
        ("admin_token=111222333444", f"admin_token={MASK}"),
        # Mixed case: the patterns ignore case, so must the cheap pre-check.
        ("Password=hunter2", f"Password={MASK}"),
        ("Secret: abc123", f"Secret: {MASK}"),
        ("api_key=abc123", f"api_key={MASK}"),
        ("APIKEY=abc123", f"APIKEY={MASK}"),
    ],
)
def test_password_options_are_masked(line: str, expected: str) -> None:
    assert redact_text(line) == expected


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (
            '{"auth": {"passwordCredentials": {"username": "admin", "password": "hunter2"}}}',
            "hunter2",
        ),
        ('{"user": {"name": "demo", "Password": "Tr0ub4dor"}}', "Tr0ub4dor"),
        ("{'password': 'hunter2', 'name': 'x'}", "hunter2"),
    ],
)
def test_json_passwords_are_masked(line: str, secret: str) -> None:
    redacted = redact_text(line)
    assert secret not in redacted
    assert redacted == line.replace(secret, MASK)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
        (
            "-H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig' -X GET",
            "eyJhbGciOiJIUzI1NiJ9.e30.sig",
        ),
        ('{"authorization": "Token 0123456789abcdef"}', "0123456789abcdef"),
        ("authorization=abcdef0123", "abcdef0123"),
    ],
)
def test_authorization_headers_are_masked(line: str, secret: str) -> None:
    redacted = redact_text(line)
    assert secret not in redacted
    assert redacted == line.replace(secret, MASK)


def test_x_auth_token_is_masked() -> None:
    line = "curl -i -X GET -H 'X-Auth-Token: gAAAAABc1a2b3c4d' -H 'Accept: application/json'"
    assert redact_text(line) == line.replace("gAAAAABc1a2b3c4d", MASK)


@pytest.mark.parametrize(
    "line",
    [
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "using key AKIAIOSFODNN7EXAMPLE for upload",
        "aws_access_key_id: AKIAIOSFODNN7EXAMPLE",
    ],
)
def test_aws_access_key_ids_are_masked(line: str) -> None:
    redacted = redact_text(line)
    assert "AKIAIOSFODNN7EXAMPLE" not in redacted
    assert redacted == line.replace("AKIAIOSFODNN7EXAMPLE", MASK)


def test_akia_inside_a_longer_word_is_kept() -> None:
    line = "XAKIAIOSFODNN7EXAMPLEX is not a key id"
    assert redact_text(line) == line


def test_redaction_is_idempotent() -> None:
    line = "mysql://root:pw@db/x password=pw Authorization: Basic abc AKIAIOSFODNN7EXAMPLE"
    once = redact_text(line)
    assert "pw@" not in once and "AKIA" not in once
    assert redact_text(once) == once


def test_ordinary_screen_lines_are_untouched() -> None:
    ordinary = [line for line in lines_of(SCREEN_C_API) if not SUSPECT.search(line)][:2000]
    assert len(ordinary) == 2000
    for line in ordinary:
        assert redact_text(line) == line


def test_urls_without_credentials_in_the_corpus_are_untouched() -> None:
    suspect_but_url = re.compile(r"(?i)pass|secret|token|authoriz|api_?key|akia")
    lines = [
        line
        for line in lines_of(SCREEN_N_API)
        if "://" in line and "@" not in line and not suspect_but_url.search(line)
    ]
    assert len(lines) > 1000
    for line in lines:
        assert redact_text(line) == line


@pytest.mark.parametrize(
    ("path", "occurrences"),
    [
        # Counted with `zcat FILE | grep -io 'password=[^ ]*'`, minus empty values.
        (CONSOLE_HTML, 7),
        (DEVSTACKLOG, 47),
    ],
)
def test_every_password_value_in_console_logs_is_masked(path: Path, occurrences: int) -> None:
    found = 0
    for line in lines_of(path):
        values = PASSWORD_VALUE.findall(line)
        if not values:
            continue
        found += len(values)
        redacted = redact_text(line)
        masked = re.findall(r"(?i)password=[\"']?" + re.escape(MASK), redacted)
        assert len(masked) == len(values), line
        for quote, value in values:
            assert f"password={quote}{value}".lower() not in redacted.lower(), line
    assert found == occurrences


def test_url_credentials_in_console_html_are_masked() -> None:
    found = 0
    for line in lines_of(CONSOLE_HTML):
        credentials = URL_CREDENTIALS.findall(line)
        if not credentials:
            continue
        found += len(credentials)
        redacted = redact_text(line)
        for user_part, password in credentials:
            assert f"{user_part}{password}@" not in redacted, line
            assert f"{user_part}{MASK}@" in redacted, line
    assert found > 30  # mysql://root:secret@... in the devstack setup


def test_x_auth_tokens_in_screen_c_api_are_masked() -> None:
    found = 0
    for line in lines_of(SCREEN_C_API):
        tokens = AUTH_TOKEN_HEADER.findall(line)
        if not tokens:
            continue
        found += len(tokens)
        redacted = redact_text(line)
        for token in tokens:
            assert token not in redacted
        assert redacted.count(f"X-Auth-Token: {MASK}") == len(tokens)
        # Only the token changed.
        assert AUTH_TOKEN_HEADER.sub(f"X-Auth-Token: {MASK}", line) == redacted
    assert found >= 4


def test_authorization_header_in_github_actions_log_is_masked() -> None:
    (line,) = [line for line in lines_of(GITHUB_LOG) if "AUTHORIZATION:" in line]
    redacted = redact_text(line)
    assert redacted.endswith(f"AUTHORIZATION: basic {MASK}")
    assert redacted.startswith(line.split("AUTHORIZATION:")[0])


def test_redact_events_changes_only_messages() -> None:
    lines = lines_of(SCREEN_C_API)
    number, token_line = next(
        (n, line) for n, line in enumerate(lines, start=1) if "X-Auth-Token: " in line
    )
    plain = lines[4]
    events = [
        Event(number, "2013-09-27T18:30:41.142Z", token_line, {"loglevel": "DEBUG"}),
        Event(5, "2013-09-27T18:22:35.392Z", f"{plain}\n{plain}", {}, line_count=2),
    ]
    out = list(redact_events(events))
    assert len(out) == 2
    (token,) = AUTH_TOKEN_HEADER.findall(token_line)
    assert token not in out[0].message
    assert out[0].line_number == number
    assert out[0].fields == {"loglevel": "DEBUG"}
    assert out[1].message == f"{plain}\n{plain}"
    assert out[1].line_count == 2


def test_secrets_on_any_line_of_a_multi_line_message_are_masked() -> None:
    message = "Traceback (most recent call last):\n  connect('mysql://root:pw1@db/nova')\nError"
    assert redact_text(message) == message.replace("pw1", MASK)


# --- URLs from configuration and jobs: mask_url --------------------------------------------


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("https://user:pw@logs.example.org/a/b", "https://***@logs.example.org/a/b"),
        ("elasticsearch+http://u:s3cret@127.0.0.1:9200", "elasticsearch+http://***@127.0.0.1:9200"),
        ("https://ghp_TOKEN@github.com/o/r", "https://***@github.com/o/r"),  # token as user
        ("http://u:p@ss@host:1/x", "http://***@host:1/x"),  # unencoded "@" in the password
        ("http://u:p%40ss@host/x", "http://***@host/x"),
        ("http://u:p@[::1]:9200/", "http://***@[::1]:9200/"),
        # Inside messages: reprs, exception texts, several URLs.
        (
            "sink URL 'opensearch+https://a:b@search:x': port 'x' is not a number",
            "sink URL 'opensearch+https://***@search:x': port 'x' is not a number",
        ),
        (
            "GET http://a:1@h/x: HTTP 404 (redirected from https://b:2@g/y)",
            "GET http://***@h/x: HTTP 404 (redirected from https://***@g/y)",
        ),
        # Nothing to mask: an "@" after the host, or no URL at all.
        ("http://host/path@v2/file", "http://host/path@v2/file"),
        ("http://host/?mail=a@b", "http://host/?mail=a@b"),
        ("http://host#a@b", "http://host#a@b"),
        ("mail root@localhost", "mail root@localhost"),
        ("sqlite:./logs.db", "sqlite:./logs.db"),
        ("", ""),
    ],
)
def test_mask_url_hides_the_userinfo_of_every_url(text: str, masked: str) -> None:
    assert mask_url(text) == masked
