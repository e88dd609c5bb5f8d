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
from worker.config import load_config, parse_config
from worker.errors import ConfigError
from worker.events import Event
from worker.redact import (
    CANDIDATE_SPACING,
    CANDIDATES,
    MASK,
    RedactConfig,
    Redactor,
    mask_url,
    parse_redact_config,
    redact_events,
    redact_text,
)

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


# --- the forms point 8 of issue 10 found leaking, planted in real corpus lines -------------

GHP = "ghp_" + "a1B2c3D4e5F6g7H8i9J0" + "k1L2m3N4o5P6q7R8"  # ghp_ and 36 characters
PAT = "github_pat_11ABCDEFG0" + "1234567890AbCd_" + "EfGhIjKlMnOpQrStUvWxYz0123456789abcdefghij"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

# (what is planted, the secret in it, what it must become): written by hand.
PLANTED = [
    ("--password Tr0ub4dor3", "Tr0ub4dor3", f"--password {MASK}"),
    ("--os-password Tr0ub4dor3", "Tr0ub4dor3", f"--os-password {MASK}"),
    ("--os-token 0f1e2d3c4b5a", "0f1e2d3c4b5a", f"--os-token {MASK}"),
    (f"aws_secret_access_key = {AWS_SECRET}", AWS_SECRET, f"aws_secret_access_key = {MASK}"),
    (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET, f"AWS_SECRET_ACCESS_KEY={MASK}"),
    ("SECRET_KEY=dj4ngo-k3y-x", "dj4ngo-k3y-x", f"SECRET_KEY={MASK}"),
    (f"pushing with {GHP} now", GHP[4:], f"pushing with ghp_{MASK} now"),
    (f"pushing with {PAT} now", PAT[11:], f"pushing with github_pat_{MASK} now"),
    ('password: "correct horse battery"', "horse battery", f'password: "{MASK}"'),
    ("password: 'correct horse battery'", "horse battery", f"password: '{MASK}'"),
    ("mysql -uroot -pTr0ub4dor3 -h127.0.0.1", "Tr0ub4dor3", f"mysql -uroot -p{MASK} -h127.0.0.1"),
    (
        "iniset /etc/nova/nova.conf keystone_authtoken admin_password Tr0ub4dor3",
        "Tr0ub4dor3",
        f"iniset /etc/nova/nova.conf keystone_authtoken admin_password {MASK}",
    ),
    (
        "iniset -sudo /etc/glance/glance-api.conf DEFAULT swift_store_key 'correct horse'",
        "correct horse",
        f"iniset -sudo /etc/glance/glance-api.conf DEFAULT swift_store_key '{MASK}'",
    ),
    (
        "GRANT ALL ON *.* TO 'root'@'%' IDENTIFIED BY 'Tr0ub4dor3';",
        "Tr0ub4dor3",
        f"GRANT ALL ON *.* TO 'root'@'%' IDENTIFIED BY '{MASK}';",
    ),
    (
        "sudo mysqladmin -u root password Mysq1AdmPw",
        "Mysq1AdmPw",
        f"sudo mysqladmin -u root password {MASK}",
    ),
    # Forms devstack prints with no key=value marker (the real lines are tested below).
    (
        "sudo rabbitmqctl change_password guest Rabb1tPw",
        "Rabb1tPw",
        f"sudo rabbitmqctl change_password guest {MASK}",
    ),
    (
        "rabbitmqctl -n rabbit@node1 add_user stackrabbit Rabb1tPw2",
        "Rabb1tPw2",
        f"rabbitmqctl -n rabbit@node1 add_user stackrabbit {MASK}",
    ),
    (
        "keystone user-create --name demo --pass K3ystonePw",
        "K3ystonePw",
        f"keystone user-create --name demo --pass {MASK}",
    ),
    (
        "keystone user-create --name=nova --pass=K3ystonePw2",
        "K3ystonePw2",
        f"keystone user-create --name=nova --pass={MASK}",
    ),
    ("SERVICE_PASS=Serv1cePw", "Serv1cePw", f"SERVICE_PASS={MASK}"),
    (
        "|   secret  | 0f1e2d3c4b5a69788796a5b4c3d2e1f0 |",
        "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        f"|   secret  | {MASK} |",
    ),
    (
        "add_entry 5d2c44e1 demo 8a9b0c1d demo Us3rRcPw",
        "Us3rRcPw",
        f"add_entry 5d2c44e1 demo 8a9b0c1d demo {MASK}",
    ),
    (
        "sed -i -e 's|^\\(admin_password[ \\t]*=[ \\t]*\\).*$|\\1S3dIniPw|' /etc/nova/nova.conf",
        "S3dIniPw",
        f"sed -i -e 's|^\\(admin_password[ \\t]*=[ \\t]*\\).*$|\\1{MASK}|' /etc/nova/nova.conf",
    ),
    (
        "iniset /etc/swift/proxy-server.conf filter:tempauth user_test_tester 'T3mpAuthPw .admin'",
        "T3mpAuthPw",
        f"iniset /etc/swift/proxy-server.conf filter:tempauth user_test_tester '{MASK}'",
    ),
]


def real_lines() -> list[str]:
    """Ordinary lines of three formats, each free of anything secret-like."""
    picked: list[str] = []
    for path in (SCREEN_N_API, CONSOLE_HTML, DEVSTACKLOG):
        ordinary = [line for line in lines_of(path) if line and not SUSPECT.search(line)]
        picked += ordinary[100:103]
    return picked


@pytest.mark.parametrize(("planted", "secret", "masked"), PLANTED)
def test_planted_secrets_in_real_lines_are_masked_and_the_rest_kept(
    planted: str, secret: str, masked: str
) -> None:
    lines = real_lines()
    assert len(lines) == 9
    for line in lines:
        head, tail = line[: len(line) // 2], line[len(line) // 2 :]
        for text, expected in (
            (f"{line} {planted}", f"{line} {masked}"),
            (f"{head} {planted} {tail}", f"{head} {masked} {tail}"),
        ):
            redacted = redact_text(text)
            assert secret not in redacted
            assert redacted == expected


def test_devstack_iniset_and_mysql_lines_keep_everything_but_the_value() -> None:
    iniset = re.compile(r"^(.* \++ iniset \S+ \S+ \S+ )(secret|111222333444)$")
    mysql = re.compile(r"^(.* mysql -uroot -p)(secret)( .*)$")
    found = 0
    for line in lines_of(DEVSTACKLOG):
        if match := iniset.match(line):
            assert redact_text(line) == match.group(1) + MASK
            found += 1
        elif match := mysql.match(line):
            # The GRANT line also says: identified by '\''secret'\''
            expected = (
                match.group(1)
                + MASK
                + match.group(3).replace("'\\''secret'\\''", f"'\\''{MASK}'\\''")
            )
            assert redact_text(line) == expected
            found += 1
    assert found == 22 + 13  # as issue 10 counts them


# Real lines of the corpus that set a secret with no key=value marker, each with what it
# must become (written by hand): the whole line is checked to be in the file first.
REAL_UNMARKED = [
    (
        DEVSTACKLOG,
        "2014-03-17 16:16:01.960 | + sudo rabbitmqctl change_password guest secret",
        f"2014-03-17 16:16:01.960 | + sudo rabbitmqctl change_password guest {MASK}",
    ),
    (
        DEVSTACKLOG,
        "2014-03-17 16:17:24.981 | + keystone user-create --name=glance --pass=secret"
        " --tenant service --email=glance@example.com",
        f"2014-03-17 16:17:24.981 | + keystone user-create --name=glance --pass={MASK}"
        " --tenant service --email=glance@example.com",
    ),
    (
        CONSOLE_HTML,
        "2013-09-27 18:24:05.464 | 2013-09-27 18:21:06 ++ keystone user-create --name admin"
        " --pass secret --email admin@example.com",
        "2013-09-27 18:24:05.464 | 2013-09-27 18:21:06 ++ keystone user-create --name admin"
        f" --pass {MASK} --email admin@example.com",
    ),
    (
        DEVSTACKLOG,
        "2014-03-17 16:18:32.623 | + USER_PASS=secret",
        f"2014-03-17 16:18:32.623 | + USER_PASS={MASK}",
    ),
    (
        DEVSTACKLOG,
        "2014-03-17 16:18:39.878 | |   secret  | 9e83a637e0c544aea3921c72b83d0c84 |",
        f"2014-03-17 16:18:39.878 | |   secret  | {MASK} |",
    ),
    (
        CONSOLE_HTML,
        "2013-09-27 18:27:29.012 | 2013-09-27 18:23:09 |   secret  |"
        " fd53f7421b284708a731f1d3dc2a8d7d |",
        f"2013-09-27 18:27:29.012 | 2013-09-27 18:23:09 |   secret  | {MASK} |",
    ),
    # devstacklog.txt.gz lines 9565, 9568, 9599, 9600: the EC2 credential row of
    # `keystone ec2-credentials-list` as create_userrc.sh quotes it (tenant, access,
    # secret); the secret is the one of line 9557's table
    (
        DEVSTACKLOG,
        "2014-03-17 16:18:39.918 | + line='| admin  | 14cf5e11d58644f882a3519f489d5e1e |"
        " 9e83a637e0c544aea3921c72b83d0c84 |'",
        "2014-03-17 16:18:39.918 | + line='| admin  | 14cf5e11d58644f882a3519f489d5e1e |"
        f" {MASK} |'",
    ),
    (
        DEVSTACKLOG,
        "2014-03-17 16:18:39.934 | ++ echo '|' admin '|' 14cf5e11d58644f882a3519f489d5e1e '|'"
        " 9e83a637e0c544aea3921c72b83d0c84 '|'",
        "2014-03-17 16:18:39.934 | ++ echo '|' admin '|' 14cf5e11d58644f882a3519f489d5e1e '|'"
        f" {MASK} '|'",
    ),
    (
        DEVSTACKLOG,
        "2014-03-17 16:18:40.097 | + local 'line=| admin  | 14cf5e11d58644f882a3519f489d5e1e |"
        " 9e83a637e0c544aea3921c72b83d0c84 |'",
        "2014-03-17 16:18:40.097 | + local 'line=| admin  | 14cf5e11d58644f882a3519f489d5e1e |"
        f" {MASK} |'",
    ),
    (
        DEVSTACKLOG,
        "2014-03-17 16:18:40.102 | + '[' -z '| admin  | 14cf5e11d58644f882a3519f489d5e1e |"
        " 9e83a637e0c544aea3921c72b83d0c84 |' ']'",
        "2014-03-17 16:18:40.102 | + '[' -z '| admin  | 14cf5e11d58644f882a3519f489d5e1e |"
        f" {MASK} |' ']'",
    ),
    (
        DEVSTACKLOG,
        "2014-03-17 16:18:48.315 | + add_entry 21244ef83e764b4886a41f1bf2abd092 demo"
        " 8637c869b3b148a0896704396addaf2b demo secret",
        "2014-03-17 16:18:48.315 | + add_entry 21244ef83e764b4886a41f1bf2abd092 demo"
        f" 8637c869b3b148a0896704396addaf2b demo {MASK}",
    ),
    (
        CONSOLE_HTML,
        "2013-09-27 18:27:47.158 | 2013-09-27 18:23:27 ++ sed -i -e '/^\\[identity\\]/,/^\\[.*\\]/"
        " s|^\\(password[ \\t]*=[ \\t]*\\).*$|\\1secret|' /opt/stack/new/tempest/etc/tempest.conf",
        "2013-09-27 18:27:47.158 | 2013-09-27 18:23:27 ++ sed -i -e '/^\\[identity\\]/,/^\\[.*\\]/"
        f" s|^\\(password[ \\t]*=[ \\t]*\\).*$|\\1{MASK}|' /opt/stack/new/tempest/etc/tempest.conf",
    ),
    (
        DEVSTACKLOG,
        "2014-03-17 16:14:11.085 | + iniset /etc/swift/proxy-server.conf filter:tempauth"
        " user_swifttenanttest1_swiftusertest1 'testing .admin'",
        "2014-03-17 16:14:11.085 | + iniset /etc/swift/proxy-server.conf filter:tempauth"
        f" user_swifttenanttest1_swiftusertest1 '{MASK}'",
    ),
]


@pytest.mark.parametrize(("path", "line", "masked"), REAL_UNMARKED)
def test_real_secrets_without_a_key_value_marker_are_masked(
    path: Path, line: str, masked: str
) -> None:
    assert line in lines_of(path)
    assert redact_text(line) == masked


def test_an_unclosed_quote_masks_the_first_word() -> None:
    assert redact_text('password: "correct horse') == f'password: "{MASK} horse'


@pytest.mark.parametrize(
    "line",
    [
        "mkdir -p /opt/stack -printf x",  # -p outside a mysql command
        "nova root-password",  # an option name without a value
        "+ '[' -n secret ']'",  # nothing says it is one
        "keystone_authtoken admin_password secret",  # no iniset
        "github is through here",
        "ghp_short",
        "-----END RSA PRIVATE KEY-----",
        "PASS: test_volume_create",  # "pass" alone is a keyword after "-" or "_" only
        "3 tests pass: 0 failures",
        "bypass=1",
        "echo $secret | grep -q x",  # a table row's value is a cell's one word
        "| secret | x y |",
        "keystoneclient.middleware.auth_token [-] Authenticating user token",
        "rabbitmqctl list_users",
        "add_entry only three words",
        "++ '[' -n change_password_available=true ']'",
        "mysql keystone -e 'SELECT id, password FROM user'",  # mysqladmin's form only
        # a table of ids printed as it is (no quote): not a credential row
        "| 14cf5e11d58644f882a3519f489d5e1e | 9e83a637e0c544aea3921c72b83d0c84 | admin |",
        "grep -E '^\\|[[:space:]]*(admin|3d13ec9f2c3244b1857f5517f0a6ba26)[[:space:]]*\\|'",
    ],
)
def test_lookalikes_are_kept(line: str) -> None:
    assert redact_text(line) == line


# --- fields --------------------------------------------------------------------------------


def test_every_string_field_is_redacted_without_changing_the_formats_dict() -> None:
    fields = {"request": "/v3/auth?password=hunter2&token=s3cr3t", "verb": "GET", "pid": "7"}
    events = [Event(1, "2013-09-27T18:30:41.142Z", "GET /v3/auth", fields)]
    (event,) = Redactor().events(events)
    assert event.fields == {
        "request": f"/v3/auth?password={MASK}&token={MASK}",
        "verb": "GET",
        "pid": "7",
    }
    assert fields["request"] == "/v3/auth?password=hunter2&token=s3cr3t"  # shared, kept


def test_a_dict_shared_by_lines_gives_one_redacted_dict() -> None:
    fields = {"module": "x", "request_id": "token=abc"}
    events = [Event(n, "2013-09-27T18:30:41.142Z", "m", fields) for n in (1, 2)]
    first, second = Redactor().events(events)
    assert first.fields == second.fields == {"module": "x", "request_id": f"token={MASK}"}
    clean = {"module": "x"}
    (third,) = Redactor().events([Event(3, "2013-09-27T18:30:41.142Z", "m", clean)])
    assert third.fields is clean


# --- private-key blocks ----------------------------------------------------------------------

KEY_BODY = [
    "MIIEowIBAAKCAQEA2a2rwplBQLzHPZe5TNJNQhEy0S9bvqUczTKQ3hlR4GZJeqQn",
    "6QUPeoYqcfx1LYuIpDlPzsvEk4fEO0hPclv2cMO4M9eR8l6QO2WzPQcmCDD+yH1m",
    "kKzBB9wQdLKRJTLbYMRhPZ0x0D8nnjbD8XCk0fswm8yJ==",
]
BLOCK = ["-----BEGIN RSA PRIVATE KEY-----", *KEY_BODY, "-----END RSA PRIVATE KEY-----"]
MASKED_BLOCK = [BLOCK[0], MASK, MASK, MASK, BLOCK[-1]]


def test_a_key_block_in_one_event_is_masked_line_by_line() -> None:
    message = "\n".join(["cat /etc/ssh/id_rsa", *BLOCK, "done"])
    expected = "\n".join(["cat /etc/ssh/id_rsa", *MASKED_BLOCK, "done"])
    assert redact_text(message) == expected
    (event,) = Redactor().events([Event(1, "2013-09-27T18:30:41.142Z", message)])
    assert event.message == expected


def test_a_key_block_spread_over_events_is_masked_to_its_end() -> None:
    lines = ["cat id_rsa", *BLOCK, "after the key", "MIIEowIBAAKCAQEA"]
    events = [Event(n, "2013-09-27T18:30:41.142Z", text) for n, text in enumerate(lines, 1)]
    out = [event.message for event in Redactor().events(events)]
    # Base64 after the block's end is no key material of that block.
    assert out == ["cat id_rsa", *MASKED_BLOCK, "after the key", "MIIEowIBAAKCAQEA"]


@pytest.mark.parametrize(
    ("body", "masked"),
    [
        (f'  "{KEY_BODY[0]}\\n",', f'  "{MASK}\\n",'),  # a JSON list of lines
        (f"    {KEY_BODY[0]}", f"    {MASK}"),  # YAML block scalar
        ("Proc-Type: 4,ENCRYPTED", MASK),  # RFC 1421 headers of an encrypted key
        ("", ""),
    ],
)
def test_key_lines_quoted_or_indented_are_masked(body: str, masked: str) -> None:
    events = [
        Event(n, "2013-09-27T18:30:41.142Z", text)
        for n, text in enumerate([BLOCK[0], body, KEY_BODY[1], BLOCK[-1]], 1)
    ]
    out = [event.message for event in Redactor().events(events)]
    assert out == [BLOCK[0], masked, MASK, BLOCK[-1]]


def test_a_block_without_its_end_stops_at_the_first_line_that_is_no_key() -> None:
    lines = [BLOCK[0], KEY_BODY[0], "2013-09-27 ERROR: log truncated (32 lines dropped)", "ok"]
    events = [Event(n, "2013-09-27T18:30:41.142Z", text) for n, text in enumerate(lines, 1)]
    out = [event.message for event in Redactor().events(events)]
    assert out == [BLOCK[0], MASK, lines[2], "ok"]


def test_a_key_on_one_line_is_masked_between_its_markers() -> None:
    line = f'{{"key": "{BLOCK[0]}\\n{KEY_BODY[0]}\\n{BLOCK[-1]}\\n", "name": "deploy"}}'
    expected = f'{{"key": "{BLOCK[0]}{MASK}{BLOCK[-1]}\\n", "name": "deploy"}}'
    assert redact_text(line) == expected


def test_each_file_starts_with_no_block_open() -> None:
    Redactor().events([Event(1, "2013-09-27T18:30:41.142Z", BLOCK[0])])
    (event,) = Redactor().events([Event(1, "2013-09-27T18:30:41.142Z", "ok")])
    assert event.message == "ok"


# --- the table from the configuration ------------------------------------------------------


def test_extra_rules_apply_after_the_built_in_ones() -> None:
    config = parse_redact_config(
        {
            "extra": [
                {"name": "corp", "guard": "corp_", "pattern": r"corp_(?P<secret>[A-Za-z0-9]{12})"},
                {"name": "pin", "guard": "pin", "pattern": r"pin (\d{4})", "ignore_case": True},
            ]
        }
    )
    rules = config.rules
    line = "using corp_a1b2c3d4e5f6 with PIN 1234 and password=x"
    assert redact_text(line, rules) == f"using corp_{MASK} with {MASK} and password={MASK}"


def test_the_built_in_rules_can_be_turned_off() -> None:
    rules = parse_redact_config({"builtin": False}).rules
    assert redact_text("password=x", rules) == "password=x"
    assert (
        redact_text(BLOCK[0] + KEY_BODY[0] + BLOCK[-1], rules) == BLOCK[0] + KEY_BODY[0] + BLOCK[-1]
    )
    assert parse_redact_config(None) == RedactConfig()
    assert parse_redact_config(None).builtin


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ([], "redact must be a mapping"),
        ({"extras": []}, "redact.extras: unknown key"),
        ({"builtin": "yes"}, "redact.builtin must be true or false"),
        ({"extra": {"name": "x"}}, "redact.extra must be a list of rules"),
        ({"extra": ["x"]}, "redact.extra[0] must be a mapping"),
        ({"extra": [{"name": "x", "guard": "g"}]}, "redact.extra[0].pattern must be a non-empty"),
        ({"extra": [{"name": "x", "guard": "", "pattern": "g"}]}, "redact.extra[0].guard must be"),
        (
            {"extra": [{"name": "x", "guard": "g", "pattern": "g(", "flags": "i"}]},
            "redact.extra[0].flags: unknown key",
        ),
        (
            {"extra": [{"name": "x", "guard": "g", "pattern": "g("}]},
            "redact.extra[0].pattern: 'g(' does not compile: missing ), unterminated subpattern",
        ),
        (
            {"extra": [{"name": "x", "guard": "g", "pattern": "g*"}]},
            "redact.extra[0].pattern: 'g*' matches the empty string",
        ),
        (
            {"extra": [{"name": "token", "guard": "g", "pattern": "g"}]},
            "redact.extra[0].name: 'token' is already a rule's name",
        ),
    ],
)
def test_configuration_mistakes_name_the_key(raw: object, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_redact_config(raw)
    assert str(caught.value).startswith(problem)


def test_a_pattern_that_does_not_compile_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "worker.yaml"
    path.write_text("redact:\n  extra:\n    - {name: corp, guard: corp_, pattern: 'corp_[a-z'}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: redact.extra[0].pattern: 'corp_[a-z' does not compile")
    assert "\n" not in message


def test_the_worker_configuration_carries_the_rules() -> None:
    config = parse_config({"redact": {"extra": [{"name": "c", "guard": "c_", "pattern": "c_x"}]}})
    assert [rule.name for rule in config.redact.extra] == ["c"]
    assert parse_config({}).redact == RedactConfig()


# --- lines dense with would-be secrets ---------------------------------------------------


def test_a_line_dense_with_keywords_is_masked_from_the_first_on() -> None:
    prefix = "2014-03-17 16:16:01.960 | "
    text = prefix + "password=hunter2 " * 3000 + "\n2014-03-17 16:16:01.961 | next line"
    assert redact_text(text) == f"{prefix}{MASK}\n2014-03-17 16:16:01.961 | next line"


def test_past_the_budget_of_places_the_rest_of_the_line_is_masked() -> None:
    filler = "y" * 500
    line = f"{filler} password=hunter2 " * 200
    tried = CANDIDATES + len(line) // CANDIDATE_SPACING  # the budget: 165 here
    assert tried < 200
    expected = f"{filler} password={MASK} " * tried + f"{filler} {MASK}"
    assert redact_text(line) == expected


def test_a_line_dense_with_key_markers_keeps_the_block_open() -> None:
    dense = BLOCK[0] * 3000
    events = [
        Event(n, "2013-09-27T18:30:41.142Z", text)
        for n, text in enumerate([dense, KEY_BODY[0], BLOCK[-1], "after"], 1)
    ]
    out = [event.message for event in Redactor().events(events)]
    assert out == [f"-----BEGIN RSA {MASK}", MASK, BLOCK[-1], "after"]


def test_a_configured_rule_past_the_budget_masks_the_rest_of_the_text() -> None:
    rules = parse_redact_config(
        {"extra": [{"name": "pin", "guard": "PIN ", "pattern": r"PIN (?P<secret>\d{4})"}]}
    ).rules
    text = "PIN 1234 " * 100 + "\nend"
    tried = CANDIDATES + len(text) // CANDIDATE_SPACING
    assert redact_text(text, rules) == f"PIN {MASK} " * tried + MASK


# --- iniset's own trace ------------------------------------------------------------------
# Old devstack traces iniset's body: the lines that print the value name no secret
# themselves; the iniset call before them does.


def redacted_lines(lines: list[str]) -> list[str]:
    """Each line an event of one file, as a console log gives them."""
    events = [Event(i, "2013-09-27T18:19:13Z", line) for i, line in enumerate(lines, 1)]
    return [event.message for event in Redactor().events(events)]


# console.html.gz lines 5667-5672
ADMIN_TOKEN_TRACE = [
    "2013-09-27 18:19:57.832 | 2013-09-27 18:19:13 + iniset /etc/keystone/keystone.conf"
    " DEFAULT admin_token 111222333444",
    "2013-09-27 18:19:57.879 | 2013-09-27 18:19:13 + local file=/etc/keystone/keystone.conf",
    "2013-09-27 18:19:57.880 | 2013-09-27 18:19:13 + local section=DEFAULT",
    "2013-09-27 18:19:57.951 | 2013-09-27 18:19:13 + local option=admin_token",
    "2013-09-27 18:19:57.952 | 2013-09-27 18:19:13 + local value=111222333444",
    "2013-09-27 18:19:57.998 | 2013-09-27 18:19:13 + grep -q '^\\[DEFAULT\\]'"
    " /etc/keystone/keystone.conf",
]
ADMIN_TOKEN_MASKED = [
    "2013-09-27 18:19:57.832 | 2013-09-27 18:19:13 + iniset /etc/keystone/keystone.conf"
    f" DEFAULT admin_token {MASK}",
    "2013-09-27 18:19:57.879 | 2013-09-27 18:19:13 + local file=/etc/keystone/keystone.conf",
    "2013-09-27 18:19:57.880 | 2013-09-27 18:19:13 + local section=DEFAULT",
    "2013-09-27 18:19:57.951 | 2013-09-27 18:19:13 + local option=admin_token",
    f"2013-09-27 18:19:57.952 | 2013-09-27 18:19:13 + local value={MASK}",
    "2013-09-27 18:19:57.998 | 2013-09-27 18:19:13 + grep -q '^\\[DEFAULT\\]'"
    " /etc/keystone/keystone.conf",
]

# console.html.gz lines 6963-6979: a tempauth user, and the config line iniset appends
TEMPAUTH_TRACE = [
    "2013-09-27 18:21:06.251 | 2013-09-27 18:19:18 + iniset /etc/swift/proxy-server.conf"
    " filter:tempauth user_swifttenanttest1_swiftusertest1 'testing .admin'",
    "2013-09-27 18:21:06.251 | 2013-09-27 18:19:18 + local file=/etc/swift/proxy-server.conf",
    "2013-09-27 18:21:06.346 | 2013-09-27 18:19:18 + local section=filter:tempauth",
    "2013-09-27 18:21:06.374 | 2013-09-27 18:19:18 + local"
    " option=user_swifttenanttest1_swiftusertest1",
    "2013-09-27 18:21:06.448 | 2013-09-27 18:19:18 + local 'value=testing .admin'",
    "2013-09-27 18:21:06.452 | 2013-09-27 18:19:18 + grep -q '^\\[filter:tempauth\\]'"
    " /etc/swift/proxy-server.conf",
    "2013-09-27 18:21:06.496 | 2013-09-27 18:19:18 + ini_has_option"
    " /etc/swift/proxy-server.conf filter:tempauth user_swifttenanttest1_swiftusertest1",
    "2013-09-27 18:21:06.533 | 2013-09-27 18:19:18 + local file=/etc/swift/proxy-server.conf",
    "2013-09-27 18:21:06.575 | 2013-09-27 18:19:18 + local section=filter:tempauth",
    "2013-09-27 18:21:06.619 | 2013-09-27 18:19:18 + local"
    " option=user_swifttenanttest1_swiftusertest1",
    "2013-09-27 18:21:06.680 | 2013-09-27 18:19:18 + local line",
    "2013-09-27 18:21:07.065 | 2013-09-27 18:19:18 ++ sed -ne '/^\\[filter:tempauth\\]/,"
    "/^\\[.*\\]/ { /^user_swifttenanttest1_swiftusertest1[ \\t]*=/ p; }'"
    " /etc/swift/proxy-server.conf",
    "2013-09-27 18:21:07.099 | 2013-09-27 18:19:18 + line=",
    "2013-09-27 18:21:07.142 | 2013-09-27 18:19:18 + '[' -n '' ']'",
    "2013-09-27 18:21:07.179 | 2013-09-27 18:19:18 + sed -i -e '/^\\[filter:tempauth\\]/ a\\",
    "2013-09-27 18:21:07.180 | 2013-09-27 18:19:18 user_swifttenanttest1_swiftusertest1"
    " = testing .admin",
    "2013-09-27 18:21:07.221 | 2013-09-27 18:19:18 ' /etc/swift/proxy-server.conf",
]
# What changes, by index in TEMPAUTH_TRACE: the rest stays as it is
TEMPAUTH_MASKED = {
    0: "2013-09-27 18:21:06.251 | 2013-09-27 18:19:18 + iniset /etc/swift/proxy-server.conf"
    f" filter:tempauth user_swifttenanttest1_swiftusertest1 '{MASK}'",
    4: f"2013-09-27 18:21:06.448 | 2013-09-27 18:19:18 + local 'value={MASK}'",
    15: "2013-09-27 18:21:07.180 | 2013-09-27 18:19:18 user_swifttenanttest1_swiftusertest1"
    f" = {MASK} .admin",
}

# console.html.gz lines 11231-11235 and 11244-11246: an option that ends in "key"
ENCRYPTION_KEY_TRACE = [
    "2013-09-27 18:23:48.736 | 2013-09-27 18:20:50 + iniset /etc/heat/heat.conf DEFAULT"
    " auth_encryption_key 3f083f6be0bce16961f5bd90315a0476",
    "2013-09-27 18:23:48.768 | 2013-09-27 18:20:50 + local file=/etc/heat/heat.conf",
    "2013-09-27 18:23:48.793 | 2013-09-27 18:20:50 + local section=DEFAULT",
    "2013-09-27 18:23:48.794 | 2013-09-27 18:20:50 + local option=auth_encryption_key",
    "2013-09-27 18:23:48.889 | 2013-09-27 18:20:50 + local value=3f083f6be0bce16961f5bd90315a0476",
    "2013-09-27 18:23:49.101 | 2013-09-27 18:20:50 + line=",
    "2013-09-27 18:23:49.126 | 2013-09-27 18:20:50 + '[' -n '' ']'",
    "2013-09-27 18:23:49.126 | 2013-09-27 18:20:50 + sed -i -e '/^\\[DEFAULT\\]/ a\\",
    "2013-09-27 18:23:49.127 | 2013-09-27 18:20:50 auth_encryption_key"
    " = 3f083f6be0bce16961f5bd90315a0476",
]
ENCRYPTION_KEY_MASKED = [
    "2013-09-27 18:23:48.736 | 2013-09-27 18:20:50 + iniset /etc/heat/heat.conf DEFAULT"
    f" auth_encryption_key {MASK}",
    "2013-09-27 18:23:48.768 | 2013-09-27 18:20:50 + local file=/etc/heat/heat.conf",
    "2013-09-27 18:23:48.793 | 2013-09-27 18:20:50 + local section=DEFAULT",
    "2013-09-27 18:23:48.794 | 2013-09-27 18:20:50 + local option=auth_encryption_key",
    f"2013-09-27 18:23:48.889 | 2013-09-27 18:20:50 + local value={MASK}",
    "2013-09-27 18:23:49.101 | 2013-09-27 18:20:50 + line=",
    "2013-09-27 18:23:49.126 | 2013-09-27 18:20:50 + '[' -n '' ']'",
    "2013-09-27 18:23:49.126 | 2013-09-27 18:20:50 + sed -i -e '/^\\[DEFAULT\\]/ a\\",
    f"2013-09-27 18:23:49.127 | 2013-09-27 18:20:50 auth_encryption_key = {MASK}",
]

# console.html.gz lines 6222-6227: tempauth's own option, no user: nothing secret
RESELLER_PREFIX_TRACE = [
    "2013-09-27 18:20:29.260 | 2013-09-27 18:19:17 + iniset /etc/swift/proxy-server.conf"
    " filter:tempauth reseller_prefix TEMPAUTH",
    "2013-09-27 18:20:29.261 | 2013-09-27 18:19:17 + local file=/etc/swift/proxy-server.conf",
    "2013-09-27 18:20:29.262 | 2013-09-27 18:19:17 + local section=filter:tempauth",
    "2013-09-27 18:20:29.307 | 2013-09-27 18:19:17 + local option=reseller_prefix",
    "2013-09-27 18:20:29.352 | 2013-09-27 18:19:17 + local value=TEMPAUTH",
    "2013-09-27 18:20:29.400 | 2013-09-27 18:19:17 + grep -q '^\\[filter:tempauth\\]'"
    " /etc/swift/proxy-server.conf",
]


def in_order_in(lines: list[str], path: Path) -> bool:
    """Whether `lines` are lines of the file, one after the other (the file's own)."""
    text = "\n".join(lines_of(path))
    return all(line in text for line in lines) and text.find(lines[0]) < text.find(lines[-1])


def test_the_value_iniset_traces_for_a_secret_option_is_masked() -> None:
    assert in_order_in(ADMIN_TOKEN_TRACE, CONSOLE_HTML)
    assert redacted_lines(ADMIN_TOKEN_TRACE) == ADMIN_TOKEN_MASKED


def test_a_tempauth_user_is_masked_in_its_value_and_in_the_config_line() -> None:
    assert in_order_in(TEMPAUTH_TRACE, CONSOLE_HTML)
    expected = [TEMPAUTH_MASKED.get(i, line) for i, line in enumerate(TEMPAUTH_TRACE)]
    assert redacted_lines(TEMPAUTH_TRACE) == expected


def test_an_option_named_key_is_masked_in_its_value_and_in_the_config_line() -> None:
    assert in_order_in(ENCRYPTION_KEY_TRACE, CONSOLE_HTML)
    assert redacted_lines(ENCRYPTION_KEY_TRACE) == ENCRYPTION_KEY_MASKED


def test_the_value_of_an_option_that_names_no_secret_is_kept() -> None:
    assert in_order_in(RESELLER_PREFIX_TRACE, CONSOLE_HTML)
    assert redacted_lines(RESELLER_PREFIX_TRACE) == RESELLER_PREFIX_TRACE


@pytest.mark.parametrize(
    ("between", "kept"),
    [
        (["+ local x=1"] * 30, True),  # past the window: not iniset's trace any more
        (["+ local option=log_level"], True),  # another function's trace
        (["+ iniset /etc/nova/nova.conf DEFAULT verbose True"], True),  # another call
        (["+ local option=admin_password"], False),  # its own
        (["+ local x=1"] * 20, False),
    ],
)
def test_the_window_after_an_iniset_call_ends(between: list[str], kept: bool) -> None:
    lines = ["+ iniset /etc/nova/nova.conf DEFAULT admin_password Tr0ub4dor3"]
    lines += [*between, "+ local value=L0calVal"]
    last = redacted_lines(lines)[-1]
    assert last == ("+ local value=L0calVal" if kept else f"+ local value={MASK}")


def test_the_trace_in_one_multi_line_event_is_masked() -> None:
    message = "\n".join(ADMIN_TOKEN_TRACE)
    (event,) = Redactor().events([Event(1, "2013-09-27T18:19:13Z", message)])
    assert event.message == "\n".join(ADMIN_TOKEN_MASKED)


def test_each_file_starts_with_no_iniset_window_open() -> None:
    redactor = Redactor()
    list(redactor.events([Event(1, "2013-09-27T18:19:13Z", ADMIN_TOKEN_TRACE[0])]))
    (event,) = Redactor().events([Event(1, "2013-09-27T18:19:13Z", "+ local value=x")])
    assert event.message == "+ local value=x"


# mysqladmin's form with the old password first is not in the corpus: hand-written
@pytest.mark.parametrize(
    ("line", "masked"),
    [
        (
            "+ sudo mysqladmin -uroot -pOldPw1 password NewPw2",
            f"+ sudo mysqladmin -uroot -p{MASK} password {MASK}",
        ),
        (
            "mysqladmin -u root -p'Old Pw' -h 127.0.0.1 password 'New Pw'",
            f"mysqladmin -u root -p'{MASK}' -h 127.0.0.1 password '{MASK}'",
        ),
        ("mysqladmin -u root -p password NewPw3", f"mysqladmin -u root -p password {MASK}"),
    ],
)
def test_mysqladmin_masks_the_old_and_the_new_password(line: str, masked: str) -> None:
    assert redact_text(line) == masked
