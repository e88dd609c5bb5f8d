"""worker.analysis against the real Elasticsearch standard analyzer, and by hand."""

import bisect
import json
import sqlite3
import urllib.request
from pathlib import Path

import pytest

from tests.paths import CORPUS, read_lines
from worker.analysis import FTS_TOKENIZER, index_text, tokens

# (text, the standard analyzer's tokens, written out by hand from UAX #29 as Lucene reads it)
TRICKY = [
    ("nova.compute.manager", ["nova.compute.manager"]),
    ("Finished: FAILURE", ["finished", "failure"]),
    ("finished:failure", ["finished:failure"]),
    ("u'size': 1", ["u'size", "1"]),
    ("couldn't connect", ["couldn't", "connect"]),
    ("took 503.58230s", ["took", "503.58230s"]),
    ("1,024;512 bytes", ["1,024;512", "bytes"]),
    ("a.1 1.a", ["a", "1", "1", "a"]),
    ("v1.2.3 py36 3rd", ["v1.2.3", "py36", "3rd"]),
    ("__init__.py", ["__init__", "py"]),  # "." joins letters, not "_" and a letter
    ("_ ___ a__b", ["a__b"]),
    ("a_.b a._b", ["a_", "b", "a", "_b"]),
    ("a..b a.b. .a", ["a", "b", "a.b", "a"]),
    ("devstack-precise-hpcloud-az3-408487", ["devstack", "precise", "hpcloud", "az3", "408487"]),
    (
        "/opt/stack/new/nova/nova/compute/manager.py",
        ["opt", "stack", "new", "nova", "nova", "compute", "manager.py"],
    ),
    ("http://pypi.openstack.org/simple/", ["http", "pypi.openstack.org", "simple"]),
    (
        "req-5e4c8a6b-1d7c-4b42-9d7e-0c8f5a0b2e11",
        ["req", "5e4c8a6b", "1d7c", "4b42", "9d7e", "0c8f5a0b2e11"],
    ),
    ("2014-11-25T00:49:21.685+00:00", ["2014", "11", "25t00", "49", "21.685", "00", "00"]),
    ("10.0.0.1:8774", ["10.0.0.1", "8774"]),
    ("ERROR [nova.api] <html>&amp;", ["error", "nova.api", "html", "amp"]),
    ("java.io.IOException: Broken pipe", ["java.io.ioexception", "broken", "pipe"]),
    ("it's 'quoted' \u2018curly\u2019", ["it's", "quoted", "curly"]),
    ("a·b x\u2019y", ["a·b", "x\u2019y"]),
    ("Ünïcödé ΟΔΟΣ İZMİR", ["ünïcödé", "οδοσ", "izmir"]),
    ("中文 ひらがな カタカナ 한국어", ["中", "文", "ひ", "ら", "が", "な", "カタカナ", "한국어"]),
    ("✔ done ✓ ok ★", ["✔", "done", "ok", "★"]),
    ("x\u200by a\u00adb", ["x", "y", "a\u00adb"]),
    ("", []),
    ('+-*/=!?#%&|~^<>(){}[]"', []),
]


@pytest.mark.parametrize(("text", "expected"), TRICKY)
def test_tokens_by_hand(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


def test_a_long_token_is_cut_every_255_characters_and_scanning_resumes_at_the_cut() -> None:
    assert [len(t) for t in tokens("x " + "a" * 600)] == [1, 255, 255, 90]
    # The rest after the cut is read afresh: 45 more b's, then ".ccc" joins them.
    assert tokens("b" * 300 + ".ccc") == ["b" * 255, "b" * 45 + ".ccc"]
    # Characters outside the BMP count twice (UTF-16) and are never split.
    assert [len(t) for t in tokens("\U0001d400" * 200)] == [127, 73]


def _engine_tokens(url: str, texts: list[str]) -> list[list[str]]:
    """Elasticsearch's standard analyzer on each text, via POST /_analyze."""
    body = json.dumps({"analyzer": "standard", "text": texts}).encode()
    request = urllib.request.Request(
        f"{url}/_analyze", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as answer:
        found = json.load(answer)["tokens"]
    # Offsets run on across the texts (in UTF-16 units, one apart): they say whose each is.
    starts: list[int] = []
    offset = 0
    for text in texts:
        starts.append(offset)
        offset += len(text.encode("utf-16-le")) // 2 + 1
    result: list[list[str]] = [[] for _ in texts]
    for token in found:
        result[bisect.bisect_right(starts, token["start_offset"]) - 1].append(token["token"])
    return result


def _sample(path: Path, spread: int) -> list[str]:
    """Every non-ASCII line, the five longest and `spread` lines evenly through the file."""
    lines = read_lines(path)
    chosen = {i for i, line in enumerate(lines) if not line.isascii()}
    chosen.update(sorted(range(len(lines)), key=lambda i: len(lines[i]))[-5:])
    chosen.update(range(0, len(lines), max(1, len(lines) // spread)))
    return [lines[i] for i in sorted(chosen)]


def _corpus_lines() -> list[str]:
    files = sorted(
        path
        for path in CORPUS.rglob("*")
        if path.is_file() and path.name not in {"SOURCES.txt", "testrepository.subunit"}
    )
    assert len(files) >= 10, f"corpus not found in {CORPUS}"
    return [line for path in files for line in _sample(path, 300)]


def test_tokens_equal_elasticsearchs_on_real_corpus_lines(elasticsearch_url: str) -> None:
    lines = _corpus_lines()
    assert len(lines) > 2500
    differ: list[tuple[str, list[str], list[str]]] = []
    batch: list[str] = []
    budget = 0
    for number, line in enumerate(lines, 1):
        batch.append(line)
        # _analyze refuses over 10,000 tokens a request; a token and a separator take 2
        # characters, an ideograph or emoji 1.
        budget += (len(line) // 2 if line.isascii() else len(line)) + 1
        if budget > 9000 or number == len(lines):
            for text, expected in zip(batch, _engine_tokens(elasticsearch_url, batch), strict=True):
                if tokens(text) != expected:
                    differ.append((text[:120], expected[:8], tokens(text)[:8]))
            batch, budget = [], 0
    agreement = 1 - len(differ) / len(lines)
    assert not differ, f"agreement {agreement:.4%} on {len(lines)} lines; first: {differ[:5]}"


def test_index_text_keeps_every_token_whole_in_fts5() -> None:
    message = "ERROR nova.compute.manager [req-1] couldn't 503.58230 a_b x\u202fy ✔ Ünï"
    connection = sqlite3.connect(":memory:")
    connection.execute(f'CREATE VIRTUAL TABLE t USING fts5(m, tokenize="{FTS_TOKENIZER}")')
    connection.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, row)")
    connection.execute("INSERT INTO t VALUES (?)", (index_text(message),))
    terms = [row[0] for row in connection.execute("SELECT term FROM v")]
    expected = ["error", "nova.compute.manager", "req", "1", "couldn't", "503.58230", "a_b"]
    assert sorted(terms) == sorted([*expected, "x_y", "✔", "ünï"])
