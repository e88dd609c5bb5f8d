"""choose_format: forced name, then tags (historical-index.md), then sniffing."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.paths import CORPUS
from worker.errors import JobError
from worker.formats import FORMATS, apache, choose_format, console, github, oslo, plain, syslog


def head(path: Path, count: int = 50) -> list[str]:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", "replace").split("\n")[:count]


def test_registry_names() -> None:
    assert set(FORMATS) == {"console", "oslo", "syslog", "apache", "github", "plain"}
    for name, fmt in FORMATS.items():
        assert name == fmt.NAME


def test_forced_format_wins() -> None:
    assert choose_format(["console.html", "console"], "plain", ["x"]) is plain
    assert choose_format([], "oslo", []) is oslo


def test_unknown_forced_format_lists_the_known_ones() -> None:
    with pytest.raises(JobError) as error:
        choose_format([], "log4j", [])
    message = str(error.value)
    assert "log4j" in message
    for name in FORMATS:
        assert name in message


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        # The production file-to-tag rules, with the basename first as the producer sends it.
        (["job-output.txt", "console", "console.html"], console),
        (["devstacklog.txt", "console", "console.html"], console),
        (["console.html"], console),
        (["keystone.txt", "screen", "oslofmt"], oslo),
        (["horizon_error.txt", "apacheerror"], apache),
        (["syslog.txt", "syslog"], syslog),
        (["tempest.txt", "screen", "oslofmt"], oslo),
        (["screen-s-account.txt", "screen", "apachecombined"], apache),
        (["errors.txt", "console", "errors"], console),
    ],
)
def test_tags_choose_the_format(tags: list[str], expected: object) -> None:
    # The first lines say otherwise: tags are decisive.
    assert choose_format(tags, None, head(CORPUS / "bugswarm" / "2360239904-orig.log")) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("zuul-jobs-fixture/job-output.txt", console),
        ("os-loganalyze/console.html.gz", console),
        ("os-loganalyze/devstacklog.txt.gz", console),
        ("os-loganalyze/screen-q-svc.txt.gz", oslo),  # opens with 4 xtrace lines
        ("os-loganalyze/screen-n-api.txt.gz", oslo),
        ("os-loganalyze/screen-c-api.txt", oslo),
        ("os-log-merger/nova-api.log-20151113.gz", oslo),
        ("os-loganalyze/syslog.txt", syslog),
        ("os-loganalyze/devstack@c-api.service.log.txt", syslog),
        ("os-loganalyze/devstack@c-vol.service.log.txt", syslog),
        ("bugswarm/2360239904-orig.log", github),
        ("ci-log-processing/testrepository.subunit", plain),
    ],
)
def test_sniffing_without_tags(path: str, expected: object) -> None:
    assert choose_format(["some-file.txt"], None, head(CORPUS / path)) is expected


def test_nothing_to_go_on_is_plain() -> None:
    assert choose_format([], None, []) is plain
    assert choose_format([], None, ["", "   "]) is plain
