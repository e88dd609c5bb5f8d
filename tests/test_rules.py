"""File rules: the shipped config against the historical reference, and the rule engine."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from log_shipper.rules import (
    Selection,
    Skip,
    default_rules,
    load_rules,
    parse_rules,
)
from tests.paths import REPO
from worker.errors import ConfigError
from worker.job import FileOptions

REFERENCE = REPO.parent / "shared" / "reference" / "historical-index.md"


def reference_rules() -> list[tuple[str, tuple[str, ...]]]:
    """The production rule list, read from the reference document's code block."""
    lines = REFERENCE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("## File-to-tag rules"))
    rules: list[tuple[str, tuple[str, ...]]] = []
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            if rules:
                break  # the code block ended
            continue
        regex, arrow, tags = line.strip().rpartition(" -> ")
        assert arrow, f"unexpected line in the reference rule block: {line!r}"
        rules.append((regex.strip(), tuple(tag.strip() for tag in tags.split(","))))
    return rules


def reference_tags(path: str) -> tuple[str, ...] | None:
    """What the historical index did: first rule searched in the path (without .gz)."""
    name = path.removesuffix(".gz")
    for regex, tags in reference_rules():
        if re.search(regex, name):
            return tags
    return None


@dataclass(frozen=True)
class Entry:
    path: str
    size: int | None = None

    @property
    def url(self) -> str:
        return f"https://logs.example.org/build/{self.path}"


def rules_from(text: str):
    return parse_rules(yaml.safe_load(text), "rules.yaml")


# --- the shipped config ------------------------------------------------------------


def test_reference_block_is_parsed():
    rules = reference_rules()
    assert len(rules) == 10
    assert rules[0] == (r"job-output\.txt", ("console", "console.html"))
    assert rules[-1][1] == ("screen", "oslofmt")


def test_shipped_config_starts_with_the_production_rules_verbatim():
    shipped = default_rules()
    production = reference_rules()
    assert len(shipped.files) > len(production)
    for rule, (regex, tags) in zip(shipped.files, production, strict=False):
        assert rule.pattern.pattern == regex
        assert rule.tags == tags
        assert rule.options == FileOptions()
        assert not rule.filters


PATHS = [
    "job-output.txt",
    "job-output.txt.gz",
    "logs/devstacklog.txt.gz",
    "logs/devstacklog.txt.summary.gz",
    "logs/screen-n-api.txt.gz",
    "logs/screen-q-svc.txt.gz",
    "logs/screen-c-bak.txt",
    "logs/screen-dstat.txt",
    "logs/screen-peakmem_tracker.txt.gz",
    "logs/screen-s-account.txt",
    "logs/syslog.txt",
    "logs/apache/horizon_error.txt",
    "logs/apache/keystone.txt.gz",
    "logs/tempest.txt.gz",
    "logs/devstack-gate-setup-host.txt",
    "logs/var/log/extra/errors.txt.gz",
]


@pytest.mark.parametrize("path", PATHS)
def test_shipped_rules_tag_like_the_reference(path):
    selection = default_rules().match(path)
    expected = reference_tags(path)
    if expected is None:
        assert selection is None, path
        return
    assert selection is not None, path
    basename = path.rsplit("/", 1)[-1]
    names = (basename,) if basename == basename.removesuffix(".gz") else (basename, basename[:-3])
    assert selection.tags == expected + names


def test_shipped_rules_spot_checks():
    # Independent of the document parsing, so a broken parser cannot hide a broken config.
    rules = default_rules()
    cases = {
        "job-output.txt.gz": ("console", "console.html", "job-output.txt.gz", "job-output.txt"),
        "logs/screen-n-api.txt.gz": (
            "screen",
            "oslofmt",
            "screen-n-api.txt.gz",
            "screen-n-api.txt",
        ),
        "logs/syslog.txt": ("syslog", "syslog.txt"),
        "logs/apache/horizon_error.txt": ("apacheerror", "horizon_error.txt"),
    }
    for path, tags in cases.items():
        selection = rules.match(path)
        assert selection is not None and selection.tags == tags
    assert rules.match("logs/screen-dstat.txt") is None
    assert rules.match("logs/devstacklog.txt.summary.gz") is None


def test_shipped_rules_for_the_other_corpus_formats():
    rules = default_rules()
    journal = rules.match("logs/devstack@c-api.service.log.txt")
    assert journal is not None and journal.tags[:2] == ("journal", "syslog")
    rotated = rules.match("controller1/var/log/nova/nova-api.log-20151113.gz")
    assert rotated is not None and rotated.tags[0] == "log"
    assert rotated.filename == "controller1/var/log/nova/nova-api.log-20151113"
    github = rules.match("job-logs.txt")
    assert github is not None and github.tags[0] == "github-actions"
    assert rules.match("logs/testrepository.subunit") is None
    assert rules.match("zuul-manifest.json") is None
    assert rules.match("logs/htmlify/style.css") is None


def test_default_rules_are_the_repository_config_rules_yaml():
    assert default_rules() == load_rules(REPO / "config" / "rules.yaml")


# --- the rule engine ---------------------------------------------------------------


def test_first_match_wins():
    rules = rules_from(
        """
files:
  - {name: 'screen-n-api\\.txt', tags: [special]}
  - {name: 'screen-.*\\.txt', tags: [screen]}
"""
    )
    assert rules.match("logs/screen-n-api.txt").tags[0] == "special"
    assert rules.match("logs/screen-n-cpu.txt").tags[0] == "screen"
    decision = rules.decide("logs/screen-n-cpu.txt")
    assert isinstance(decision, Selection) and decision.rule == 1


def test_options_are_carried():
    rules = rules_from(
        """
files:
  - {name: 'n-api', tags: [screen], format: oslo, drop_debug: true, drop_xtrace: true}
"""
    )
    selection = rules.match("screen-n-api.txt")
    assert selection.options == FileOptions(format="oslo", drop_debug=True, drop_xtrace=True)


BUILD = {
    "build_name": "tempest-full",
    "build_queue": "gate",
    "project": "openstack/nova",
    "build_branch": "master",
}


def test_build_filters_on_job_and_pipeline():
    rules = rules_from(
        """
files:
  - {name: 'tempest\\.txt', tags: [gated], job: 'tempest-.*', pipeline: gate}
  - {name: 'tempest\\.txt', tags: [any]}
  - {name: 'only\\.txt', tags: [x], pipeline: check}
"""
    )
    assert rules.match("logs/tempest.txt", BUILD).tags[0] == "gated"
    check = dict(BUILD, build_queue="check")
    assert rules.match("logs/tempest.txt", check).tags[0] == "any"
    # The pipeline regex must match the whole value.
    assert rules.match("logs/tempest.txt", dict(BUILD, build_queue="gate-2")).tags[0] == "any"
    # Without build metadata a filtered rule does not apply.
    assert rules.match("logs/tempest.txt").tags[0] == "any"
    skip = rules.decide("only.txt", BUILD)
    assert isinstance(skip, Skip) and skip.reason.startswith("filtered out: files[2]")
    assert rules.match("only.txt", check) is not None


def test_project_and_branch_filters():
    rules = rules_from("files: [{name: x, project: 'openstack/.*', branch: 'stable/.*'}]")
    assert rules.match("x", BUILD) is None
    assert rules.match("x", dict(BUILD, build_branch="stable/2024.1")) is not None


def test_exclude_is_checked_before_rules():
    rules = rules_from(
        """
exclude: ['\\.png$', 'secret/']
files:
  - {name: '.*', tags: [all]}
"""
    )
    assert rules.match("logs/a.txt") is not None
    skip = rules.decide("logs/shot.png.gz")
    assert isinstance(skip, Skip) and skip.reason.startswith("excluded by exclude[0]")
    assert rules.match("logs/secret/x.txt") is None


def test_size_cap_default_and_per_rule():
    rules = rules_from(
        """
max_bytes: 1000
files:
  - {name: 'big\\.txt', max_bytes: 5000}
  - {name: '.*'}
"""
    )
    assert rules.match("small.txt", size=1000) is not None
    skip = rules.decide("small.txt", size=1001)
    assert isinstance(skip, Skip) and skip.reason.startswith("larger than cap: 1001 > 1000")
    assert rules.match("big.txt", size=4000) is not None
    assert rules.match("big.txt", size=5001) is None
    # An unknown size is not capped here; the worker's fetch limits apply.
    assert rules.match("small.txt", size=None) is not None


def test_no_rule_matched_reason():
    skip = rules_from("files: [{name: 'a'}]").decide("zzz")
    assert skip == Skip("zzz", "no rule matched")


def test_gz_and_plain_pair_is_one_file():
    rules = default_rules()
    entries = [
        Entry("job-output.txt", 3942),
        Entry("job-output.txt.gz", 1267),
        Entry("logs/screen-n-api.txt.gz", 583683),
        Entry("logs/screen-dstat.txt", 10),
        Entry("logs/syslog.txt", 4183146),
    ]
    result = rules.select(entries, BUILD)
    assert [r.path for r in result] == [e.path for e in entries]
    indexed = {r.path: r for r in result if r.indexed}
    assert set(indexed) == {"job-output.txt.gz", "logs/screen-n-api.txt.gz", "logs/syslog.txt"}
    chosen = indexed["job-output.txt.gz"]
    assert chosen.tags == ("console", "console.html", "job-output.txt.gz", "job-output.txt")
    assert chosen.filename == "job-output.txt"
    assert chosen.url.endswith("/job-output.txt.gz") and chosen.size == 1267
    skipped = {r.path: r.reason for r in result if not r.indexed}
    assert skipped == {
        "job-output.txt": "same file as job-output.txt.gz (preferred)",
        "logs/screen-dstat.txt": "no rule matched",
    }


def test_select_reports_every_kind_of_skip():
    rules = rules_from(
        """
max_bytes: 100
exclude: ['\\.png$']
files:
  - {name: 'gate\\.txt', pipeline: gate}
  - {name: '\\.txt$'}
"""
    )
    entries = [
        Entry("a.png"),
        Entry("a.bin"),
        Entry("big.txt", 101),
        Entry("gate.txt.gz", 5),
        Entry("gate.txt", 50),
        Entry("ok.txt", 100),
        Entry("ok.txt", 100),
    ]
    reasons = [r.reason for r in rules.select(entries, {"build_queue": "check"})]
    assert reasons[0] is not None and reasons[0].startswith("excluded")
    assert reasons[1] == "no rule matched"
    assert reasons[2] is not None and reasons[2].startswith("larger than cap")
    # gate.txt.gz: the filtered rule does not apply, the next one does.
    assert reasons[3] is None
    assert reasons[4] == "same file as gate.txt.gz (preferred)"
    assert reasons[5:] == [None, "listed twice"]
    only_filtered = rules_from("files: [{name: x, job: y}]").select([Entry("x")])
    assert only_filtered[0].reason is not None
    assert only_filtered[0].reason.startswith("filtered out")


def test_plain_file_alone_is_selected():
    result = default_rules().select([Entry("logs/screen-c-api.txt", 1178755)])
    assert result[0].indexed
    assert result[0].tags == ("screen", "oslofmt", "screen-c-api.txt")


# --- validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "rules.yaml: top level must be a mapping"),
        ("files: [{name: a}]\nfile: []", "rules.yaml: file: unknown key"),
        ("exclude: []", "rules.yaml: files must be a non-empty list of rules"),
        ("files: []", "rules.yaml: files must be a non-empty list of rules"),
        (
            "files: [{name: a}, {name: a}, {name: a}, {name: '(x'}]",
            "rules.yaml: files[3].name: invalid regex: missing ), unterminated subpattern",
        ),
        ("files: [{tags: [a]}]", "rules.yaml: files[0].name: missing"),
        ("files: [{name: 12}]", "rules.yaml: files[0].name must be a non-empty regex string"),
        ("files: [{name: a, nmae: b}]", "rules.yaml: files[0].nmae: unknown key"),
        ("files: [{name: a, tags: [x, 3]}]", "rules.yaml: files[0].tags[1] must be a non-empty"),
        ("files: [{name: a, tags: {x: 1}}]", "rules.yaml: files[0].tags must be a list"),
        ("files: [{name: a, drop_debug: yes-ish}]", "rules.yaml: files[0].drop_debug must be"),
        ("files: [{name: a, format: 3}]", "rules.yaml: files[0].format: unknown format 3"),
        (
            "files: [{name: a, format: oslofmt}]",
            "rules.yaml: files[0].format: unknown format 'oslofmt' (known formats: apache, "
            "console, github, oslo, plain, syslog)",
        ),
        ("files: [{name: a, format: [oslo]}]", "rules.yaml: files[0].format: unknown format"),
        ("files: [{name: a, max_bytes: -1}]", "rules.yaml: files[0].max_bytes must be a positive"),
        ("files: [{name: a, job: '[x'}]", "rules.yaml: files[0].job: invalid regex:"),
        ("max_bytes: 1.5\nfiles: [{name: a}]", "rules.yaml: max_bytes must be a positive"),
        ("max_bytes: true\nfiles: [{name: a}]", "rules.yaml: max_bytes must be a positive"),
        ("exclude: x\nfiles: [{name: a}]", "rules.yaml: exclude must be a list"),
        ("exclude: [a, '*']\nfiles: [{name: a}]", "rules.yaml: exclude[1]: invalid regex:"),
        ("files: [a]", "rules.yaml: files[0] must be a mapping"),
    ],
)
def test_invalid_config_names_the_key(text, message):
    with pytest.raises(ConfigError) as info:
        rules_from(text)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_load_rules_errors_name_the_file(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read"):
        load_rules(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("files: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_rules(bad)
    assert str(info.value).startswith(f"{bad}: not valid YAML")
    assert "\n" not in str(info.value)
    typo = tmp_path / "typo.yaml"
    typo.write_text("files:\n  - name: 'a('\n")
    with pytest.raises(ConfigError, match=r"typo\.yaml: files\[0\]\.name: invalid regex"):
        load_rules(typo)
