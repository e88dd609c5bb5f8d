"""The README quick start's sample tree (tests/data/build): committed, and exactly the
unmodified corpus files its SOURCES.txt lists."""

from __future__ import annotations

import hashlib
import re
import subprocess

from tests.paths import CORPUS, DATA, REPO

BUILD = DATA / "build"


def listed() -> dict[str, tuple[str, str]]:
    """tests/data/SOURCES.txt's build/ lines: file under build/ -> (repository, upstream path)."""
    rows = re.findall(
        r"^build/(\S+)\s+(\S+)\s+(\S+)\s+\(", (DATA / "SOURCES.txt").read_text(), re.MULTILINE
    )
    return {name: (repo, path) for name, repo, path in rows}


def corpus_sha256(repo: str, path: str) -> str:
    """The sha256 the corpus's SOURCES.txt records for the file taken from repo:path."""
    for entry in (CORPUS / "SOURCES.txt").read_text().split("\n\n"):
        if f"repo:        github:{repo}\n" in entry and f"path:        {path}\n" in entry:
            match = re.search(r"^  sha256:\s+([0-9a-f]{64})$", entry, re.MULTILINE)
            assert match, entry
            return match.group(1)
    raise AssertionError(f"{repo} {path}: not in the corpus SOURCES.txt")


def test_the_tree_holds_exactly_the_listed_files() -> None:
    present = sorted(str(p.relative_to(BUILD)) for p in BUILD.rglob("*") if p.is_file())
    assert present == sorted(listed())
    assert len(present) == 5


def test_each_file_is_an_unmodified_corpus_copy() -> None:
    for name, (repo, path) in listed().items():
        digest = hashlib.sha256((BUILD / name).read_bytes()).hexdigest()
        assert digest == corpus_sha256(repo, path), name


def test_the_tree_is_tracked_by_git() -> None:
    # .gitignore once kept it out of every clone ("build/" matched tests/data/build).
    files = [str(p.relative_to(REPO)) for p in BUILD.rglob("*") if p.is_file()]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *files], cwd=REPO, capture_output=True, text=True
    )
    assert ignored.returncode == 1, ignored.stdout  # 1: none of them is ignored
