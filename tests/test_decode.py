"""decode_lines on the real corpus; expected lines come from gzip/bytes.split in the test."""

from __future__ import annotations

import gzip
import random
import re
import zlib
from collections.abc import Iterator

import pytest

from tests.paths import CORPUS, count_lines
from worker.config import WorkerConfig
from worker.decode import DecodeStats, decode_lines
from worker.errors import FetchError
from worker.formats.base import Line

JOB_OUTPUT = CORPUS / "zuul-jobs-fixture" / "job-output.txt"
JOB_OUTPUT_GZ = CORPUS / "zuul-jobs-fixture" / "job-output.txt.gz"
CONSOLE_HTML = CORPUS / "os-loganalyze" / "console.html.gz"
SCREEN_Q_SVC = CORPUS / "os-loganalyze" / "screen-q-svc.txt.gz"
GITHUB_LOG = CORPUS / "bugswarm" / "2360239904-orig.log"
BIG = 1 << 40


def decode(
    data: bytes,
    chunk: int = 65536,
    max_bytes: int = BIG,
    max_line_bytes: int = 65536,
    stats: DecodeStats | None = None,
) -> list[Line]:
    return list(
        decode_lines(
            chunks(data, chunk), max_bytes=max_bytes, max_line_bytes=max_line_bytes, stats=stats
        )
    )


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def texts(lines: list[Line]) -> list[str]:
    return [line.text for line in lines]


def split_lines(data: bytes) -> list[bytes]:
    """Lines ended by "\n"; a final line may lack it."""
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    return parts


def test_gzip_and_plain_job_output_give_the_same_54_lines() -> None:
    expected = gzip.decompress(JOB_OUTPUT_GZ.read_bytes()).decode().splitlines()
    assert len(expected) == 54  # SOURCES.txt
    stats = DecodeStats()
    from_gz = decode(JOB_OUTPUT_GZ.read_bytes(), stats=stats)
    from_plain = decode(JOB_OUTPUT.read_bytes())
    assert texts(from_gz) == expected
    assert texts(from_plain) == expected
    assert [line.number for line in from_gz] == list(range(1, 55))
    assert not any(line.truncated for line in from_gz)
    assert stats == DecodeStats(
        lines=54,
        bytes=3942,
        truncated=0,
        gzip_layers=1,
        compressed=len(JOB_OUTPUT_GZ.read_bytes()),
    )


@pytest.mark.parametrize("path", [JOB_OUTPUT, JOB_OUTPUT_GZ, SCREEN_Q_SVC])
def test_one_byte_chunks_give_the_same_lines(path) -> None:
    data = path.read_bytes()
    if path is SCREEN_Q_SVC:
        data = data[:200_000]  # 1-byte chunks are slow; a partial gzip stream is enough
        whole = zlib.decompressobj(31).decompress(data)
        expected = whole.decode().split("\n")[:-1]  # the last, cut line is not compared
        got = []
        with pytest.raises(FetchError, match="truncated"):
            for line in decode_lines(chunks(data, 1), max_bytes=BIG, max_line_bytes=65536):
                got.append(line.text)
        assert got[: len(expected)] == expected
    else:
        assert texts(decode(data, chunk=1)) == texts(decode(data))


def test_crlf_line_ends() -> None:
    data = JOB_OUTPUT.read_bytes()
    expected = data.decode().split("\n")[:-1]
    crlf = data.replace(b"\n", b"\r\n")
    assert texts(decode(crlf)) == expected
    # A "\r\n" split across chunks is still one line end.
    assert texts(decode(crlf, chunk=7)) == expected
    assert texts(decode(crlf, chunk=1)) == expected


def grep_n(data: bytes, needle: bytes) -> list[int]:
    """The line numbers `grep -n` prints for `needle`: lines counted by newlines only."""
    return [n for n, raw in enumerate(data.split(b"\n"), 1) if needle in raw]


def test_lone_cr_is_text_and_line_numbers_count_newlines_in_console_html() -> None:
    data = gzip.decompress(CONSOLE_HTML.read_bytes())
    assert data.count(b"\n") == 21373  # SOURCES.txt counts newline-terminated lines
    # Progress bars ("\rExtracting templates ... 19%") redraw with lone CRs.
    assert data.count(b"\r") == 43 and b"\r\n" not in data
    assert grep_n(data, b"Finished: FAILURE") == [21372]
    expected = data.decode().split("\n")[:-1]
    stats = DecodeStats()
    lines = decode(CONSOLE_HTML.read_bytes(), chunk=4096, stats=stats)
    assert texts(lines) == expected
    assert [line.number for line in lines] == list(range(1, 21374))
    assert stats.lines == 21373
    (finished,) = [line for line in lines if "Finished: FAILURE" in line.text]
    assert finished.number == 21372
    # The progress bar's line keeps its timestamp and every state the bar went through.
    (bar,) = [line for line in lines if line.number == 2366]
    assert bar.text.startswith("2013-09-27 18:17:22.605 | 2013-09-27 18:16:01 \rExtracting")
    assert bar.text.count("\r") == 6 and bar.text.endswith("packages: 100%")


def test_lone_cr_across_chunks_and_crlf() -> None:
    data = b"a\rb\r\nc\r\rd\ne\r"
    # "\r\n" ends a line; every other CR is text, also the one at the very end.
    expected = ["a\rb", "c\r\rd", "e\r"]
    for size in (1, 2, 3, len(data)):
        assert texts(decode(data, chunk=size)) == expected


def test_crlf_at_the_line_length_limit_is_no_truncation() -> None:
    data = b"x" * 10 + b"\r\n" + b"y" * 11 + b"\r\n"
    for size in (1, 5, 11, len(data)):
        lines = decode(data, chunk=size, max_line_bytes=10)
        assert [(line.text, line.truncated) for line in lines] == [
            ("x" * 10, False),
            ("y" * 10, True),
        ]


def test_ansi_sequences_are_removed() -> None:
    data = GITHUB_LOG.read_bytes()
    assert data.count(b"\x1b[") == 4
    expected = [re.sub(r"\x1b\[[0-9;]*m", "", raw.decode()) for raw in split_lines(data)]
    lines = decode(data)
    assert texts(lines) == expected
    assert texts(lines)[585] == "2022-05-20T19:23:32.8327610Z ./ci/install_test_deps.sh.cmd"


def test_ansi_csi_erase_and_osc_are_removed() -> None:
    # A colourised, hyperlinked version of real console lines.
    plain = JOB_OUTPUT.read_bytes().decode().split("\n")[:-1]
    coloured = [
        f"\x1b[0;32m{text}\x1b[0m\x1b[K\x1b]8;;https://zuul.example/\x07\x1b]8;;\x07"
        for text in plain
    ]
    assert texts(decode("\n".join(coloured).encode())) == plain


def test_long_lines_are_truncated() -> None:
    data = gzip.decompress(SCREEN_Q_SVC.read_bytes())
    raw_lines = data.split(b"\n")[:-1]
    stats = DecodeStats()
    lines = decode(data, chunk=1000, max_line_bytes=100, stats=stats)
    assert len(lines) == len(raw_lines) == 47887
    assert texts(lines) == [raw[:100].decode() for raw in raw_lines]
    assert [line.truncated for line in lines] == [len(raw) > 100 for raw in raw_lines]
    assert stats.truncated == sum(len(raw) > 100 for raw in raw_lines) > 1000


def test_truncation_cuts_at_a_character_boundary() -> None:
    data = GITHUB_LOG.read_bytes()
    raw_lines = split_lines(data)
    assert "━" in raw_lines[607].decode()
    for limit, chunk in [(40, 65536), (41, 65536), (42, 7), (43, 5)]:
        # Small chunks also cut lines across chunk boundaries.
        lines = decode(data, chunk=chunk, max_line_bytes=limit)
        # The limit applies to the bytes read; ANSI codes are removed afterwards. "ignore"
        # drops only a character the cut left incomplete: the file is valid UTF-8.
        expected = [
            re.sub(r"\x1b\[[0-9;]*m", "", raw[:limit].decode("utf-8", "ignore"))
            for raw in raw_lines
        ]
        assert texts(lines) == expected
        assert "\ufffd" not in lines[607].text


def test_long_line_across_many_chunks_is_truncated() -> None:
    data = JOB_OUTPUT.read_bytes()
    (long_line,) = [raw for raw in data.split(b"\n") if b"Log URL" in raw]
    assert len(long_line) > 150
    lines = decode(long_line * 1000 + b"\n" + data, chunk=3, max_line_bytes=50)
    assert lines[0].text == long_line[:50].decode() and lines[0].truncated
    assert texts(lines[1:]) == [raw[:50].decode() for raw in data.split(b"\n")[:-1]]


def test_max_bytes_raises_after_yielding_the_lines_within_the_limit() -> None:
    data = gzip.decompress(SCREEN_Q_SVC.read_bytes())
    limit = 1_000_000
    expected = data[:limit].decode().split("\n")[:-1]  # complete lines within the limit
    got: list[str] = []
    stats = DecodeStats()
    with pytest.raises(FetchError, match=f"limit of {limit} bytes") as error:
        for line in decode_lines(
            chunks(SCREEN_Q_SVC.read_bytes(), 65536),
            max_bytes=limit,
            max_line_bytes=65536,
            stats=stats,
        ):
            got.append(line.text)
    assert "\n" not in str(error.value)
    assert got == expected
    assert stats.lines == len(expected)


def test_max_bytes_equal_to_the_size_is_allowed() -> None:
    data = JOB_OUTPUT.read_bytes()
    assert len(decode(data, max_bytes=len(data))) == 54
    with pytest.raises(FetchError):
        decode(data, max_bytes=len(data) - 1)


def test_multi_member_gzip() -> None:
    data = gzip.decompress(SCREEN_Q_SVC.read_bytes())
    middle = data.index(b"\n", len(data) // 2) + 1
    members = gzip.compress(data[:middle]) + gzip.compress(data[middle:])
    expected = data.decode().split("\n")[:-1]
    assert texts(decode(members, chunk=8192)) == expected


def test_gzip_file_served_with_content_encoding_gzip() -> None:
    twice = gzip.compress(JOB_OUTPUT_GZ.read_bytes())
    stats = DecodeStats()
    assert texts(decode(twice, stats=stats)) == JOB_OUTPUT.read_text().split("\n")[:-1]
    assert stats.gzip_layers == 2


def test_truncated_gzip_raises_fetch_error() -> None:
    data = SCREEN_Q_SVC.read_bytes()
    with pytest.raises(FetchError, match="truncated"):
        decode(data[: len(data) // 2])


def test_corrupt_gzip_raises_fetch_error() -> None:
    data = bytearray(JOB_OUTPUT_GZ.read_bytes())
    data[100:110] = b"\xff" * 10
    with pytest.raises(FetchError, match="corrupt"):
        decode(bytes(data))


def test_last_line_without_newline_and_no_extra_empty_line() -> None:
    data = JOB_OUTPUT.read_bytes()
    assert data.endswith(b"<escapes>\n")
    with_newline = decode(data)
    without_newline = decode(data[:-1])
    assert texts(with_newline) == texts(without_newline)
    assert with_newline[-1].text == "here is a line with some <escapes>"
    assert with_newline[-1].number == 54
    # Blank lines at the end are lines; only the final terminator adds none.
    assert texts(decode(data + b"\n\n"))[-3:] == ["here is a line with some <escapes>", "", ""]
    assert decode(b"") == []


def test_byte_order_mark_is_removed() -> None:
    lines = decode(b"\xef\xbb\xbf" + JOB_OUTPUT.read_bytes())
    assert lines[0].text == "2018-08-01 00:43:51.328884 | Job console starting..."


def test_decode_is_lazy() -> None:
    """Lines come out before the input is exhausted: nothing holds the whole file."""
    consumed = 0

    def counting() -> Iterator[bytes]:
        nonlocal consumed
        for chunk in chunks(SCREEN_Q_SVC.read_bytes(), 4096):
            consumed += 1
            yield chunk

    first = next(decode_lines(counting(), max_bytes=BIG, max_line_bytes=65536))
    assert first.number == 1
    assert consumed < 5


# Binary data and NULs. Random bytes are seeded, so every run sees the same ones.
SCREEN_C_API = CORPUS / "os-loganalyze" / "screen-c-api.txt"
SYSLOG = CORPUS / "os-loganalyze" / "syslog.txt"
DEVSTACKLOG = CORPUS / "os-loganalyze" / "devstacklog.txt.gz"
SCREEN_N_API = CORPUS / "os-loganalyze" / "screen-n-api.txt.gz"
NOVA_API = CORPUS / "os-log-merger" / "nova-api.log-20151113.gz"


def random_bytes(size: int, seed: int = 10) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.mark.parametrize("size", [2_000_000, 300])
def test_random_bytes_are_refused_before_any_line(size: int) -> None:
    data = random_bytes(size)
    for packed in (data, gzip.compress(data)):
        got = []
        with pytest.raises(FetchError, match="binary data, not a text log") as error:
            for line in decode_lines(chunks(packed, 4096), max_bytes=BIG, max_line_bytes=65536):
                got.append(line)
        assert got == []
        assert "\n" not in str(error.value) and "from offset 0" in str(error.value)


@pytest.mark.parametrize("chunk", [1000, 65536])
def test_a_binary_run_later_in_a_log_is_refused_there(chunk: int) -> None:
    text = gzip.decompress(SCREEN_Q_SVC.read_bytes())
    head = text[: text.index(b"\n", 1_000_000) + 1]
    data = head + random_bytes(256 * 1024) + text[len(head) :]
    got = []
    with pytest.raises(FetchError, match="binary data") as error:
        for line in decode_lines(chunks(data, chunk), max_bytes=BIG, max_line_bytes=65536):
            got.append(line.text)
    # Refused at the sample (4 KiB every 64 KiB) where the random bytes are first seen.
    offset = int(re.search(r"from offset (\d+)", str(error.value)).group(1))  # type: ignore[union-attr]
    assert offset % 65536 == 0
    assert len(head) - 4096 <= offset <= len(head) + 65536
    # Every line before the run came out; of the run, no more than 68 KiB.
    lines_before = head.decode().split("\n")[:-1]
    assert got[: len(lines_before)] == lines_before
    assert sum(len(junk) + 1 for junk in got[len(lines_before) :]) <= 65536 + 4096


@pytest.mark.parametrize(
    "path", [CONSOLE_HTML, DEVSTACKLOG, SCREEN_N_API, SCREEN_Q_SVC, JOB_OUTPUT_GZ]
)
def test_real_gzip_logs_are_not_refused(path) -> None:
    expected = gzip.decompress(path.read_bytes()).count(b"\n")
    assert len(decode(path.read_bytes())) == expected


@pytest.mark.parametrize("path", [SYSLOG, SCREEN_C_API, GITHUB_LOG, JOB_OUTPUT])
def test_real_logs_gzipped_here_are_not_refused(path) -> None:
    data = path.read_bytes()
    assert texts(decode(gzip.compress(data))) == texts(decode(data))
    assert len(decode(data)) == count_lines(data)


def test_a_run_of_65536_nuls_is_removed() -> None:
    data = JOB_OUTPUT.read_bytes()
    middle = data.index(b"Job console starting") + 4
    nuls = data[:middle] + b"\0" * 65536 + data[middle:]
    expected = data.decode().split("\n")[:-1]
    for size in (4096, 65536, 1 << 20):
        assert texts(decode(nuls, chunk=size)) == expected
    # A zero-filled tail (a crash while the file was written) adds one empty line at most.
    assert texts(decode(data + b"\0" * 200_000)) == expected


def test_a_few_control_bytes_in_text_are_kept() -> None:
    # A bell and a shift-in in a real log are text, not a sign of binary data.
    data = JOB_OUTPUT.read_bytes().replace(b"Job console", b"Job\x07 console\x0f", 1)
    assert texts(decode(data))[0] == "2018-08-01 00:43:51.328884 | Job\x07 console\x0f starting..."


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_a_byte_order_mark_is_read(encoding: str) -> None:
    text = GITHUB_LOG.read_text()  # has non-ASCII characters ("━")
    bom = {"utf-16": b"", "utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff"}[encoding]
    data = bom + text.replace("\n", "\r\n").encode(encoding)
    expected = texts(decode(GITHUB_LOG.read_bytes()))
    assert texts(decode(data)) == expected
    assert texts(decode(data, chunk=1001)) == expected
    assert texts(decode(gzip.compress(data), chunk=4096)) == expected


def test_utf16_without_a_byte_order_mark_is_refused_naming_it() -> None:
    data = "Привет, мир: сборка упала\n".encode("utf-16-le") * 100
    with pytest.raises(FetchError, match="UTF-16 with a byte order mark"):
        decode(data)


# The caps, with the worker's default configuration (tests/test_pipeline.py runs them
# through a whole job).
def decode_with_defaults(data: bytes, stats: DecodeStats) -> Iterator[Line]:
    fetch, parse = WorkerConfig().fetch, WorkerConfig().parse
    return decode_lines(
        chunks(data, fetch.chunk_bytes),
        max_bytes=fetch.max_decompressed_bytes,
        max_line_bytes=fetch.max_line_bytes,
        max_lines=parse.max_lines,
        max_ratio=fetch.max_decompression_ratio,
        ratio_after_bytes=fetch.ratio_after_bytes,
        stats=stats,
    )


def test_a_gzip_bomb_stops_at_the_default_lines_cap() -> None:
    bomb = gzip.compress(b"x\n" * 2_000_000, 9)
    assert len(bomb) < 4000  # the 3,912 bytes
    stats = DecodeStats()
    numbers = [line.number for line in decode_with_defaults(bomb, stats)]
    assert numbers == list(range(1, 1_000_001))
    assert stats.stopped == "lines cap 1000000 reached" and stats.lines == 1_000_000


def test_the_default_ratio_cap_spares_the_corpus_largest_gzip() -> None:
    # 83 MB from 3.2 MB (26x): past the 64 MiB where the ratio cap starts to look.
    data = NOVA_API.read_bytes()
    stats = DecodeStats()
    lines = sum(1 for _ in decode_with_defaults(data, stats))
    assert stats.bytes == len(gzip.decompress(data)) > 64 * 1024 * 1024
    assert stats.stopped == "" and lines == stats.lines
