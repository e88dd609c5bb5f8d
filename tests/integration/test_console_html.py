"""console.html indexed into every sink, searched as a user would: the word after a link
is findable (issue 10 point 5) and "#L" line numbers are grep -n's (point 3)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.integration.conftest import SinkUnderTest
from tests.integration.test_index import count, index, search
from tests.paths import CORPUS

# A line of the shape Jenkins writes when a message follows a link without a newline
# (hand-written: the corpus file has no such line), put before the closing </pre>.
GLUED = (
    b"2013-09-27 18:49:31.830999 | ERROR: Build step failed. See "
    b"<a href='https://jenkins02.openstack.org/job/x/1/'>details.</a>FATAL: pipe closed\n"
)


def test_console_html_words_and_line_numbers(
    sink: SinkUnderTest, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = gzip.decompress((CORPUS / "os-loganalyze" / "console.html.gz").read_bytes())
    assert data.endswith(b"\n</pre>\n") and b"FATAL" not in data
    data = data[: -len(b"</pre>\n")] + GLUED + b"</pre>\n"
    lines = data.split(b"\n")
    # Counted as grep -n counts: newlines only, whatever lone CRs the lines hold.
    finished = [n for n, raw in enumerate(lines, 1) if b"Finished: FAILURE" in raw]
    glued = [n for n, raw in enumerate(lines, 1) if b"FATAL" in raw]
    assert finished == [21372] and glued == [21373]
    root = tmp_path / "build"
    root.mkdir()
    (root / "console.html.gz").write_bytes(gzip.compress(data))

    index(sink, root, capsys)

    assert count(sink, "message:FATAL", capsys) == 1
    (hit,) = search(sink, "message:FATAL", capsys)
    assert hit["line_number"] == 21373
    assert hit["message"] == "ERROR: Build step failed. See details. FATAL: pipe closed"
    (hit,) = search(sink, 'message:"Finished: FAILURE"', capsys)
    assert hit["line_number"] == 21372
    # The progress bar's line: one document at grep -n's number, every state searchable.
    (bar,) = [n for n, raw in enumerate(lines, 1) if raw.count(b"\r") == 6]
    hits = search(sink, 'message:"packages: 39%"', capsys)
    assert bar in [hit["line_number"] for hit in hits]
