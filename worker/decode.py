"""From raw bytes to numbered text lines: gunzip, size limit, line splitting, UTF-8, ANSI.

Everything streams: memory stays bounded by the chunk size plus one maximum-length line,
whatever the size of the file or its compression ratio.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from worker.errors import FetchError
from worker.formats.base import Line

GZIP_MAGIC = b"\x1f\x8b"
# Bounds each zlib output so a small, highly compressed input cannot allocate a huge block.
_OUTPUT_CHUNK = 256 * 1024

# CSI (colours, cursor moves, erase), OSC (titles, hyperlinks; ended by BEL or ST, or
# by the end of the line when a tool forgot), charset selection, other two-byte escapes,
# and a lone ESC that starts nothing valid.
_ANSI = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[()*+][ -~]|[@-Z\\-_]|)"
)


@dataclass(slots=True)
class DecodeStats:
    lines: int = 0
    bytes: int = 0  # decompressed bytes read
    truncated: int = 0  # lines cut at max_line_bytes
    gzip_layers: int = 0  # 2 for a .gz file served with Content-Encoding: gzip


def decode_lines(
    chunks: Iterable[bytes],
    *,
    max_bytes: int,
    max_line_bytes: int,
    stats: DecodeStats | None = None,
) -> Iterator[Line]:
    """Yield the lines of a possibly gzip-compressed byte stream.

    Lines end at "\\n", "\\r\\n" or a lone "\\r"; a final line without terminator is
    yielded, a final terminator adds no empty line. Raises FetchError once more than
    `max_bytes` decompressed bytes arrive; lines before the limit have been yielded.
    """
    if stats is None:
        stats = DecodeStats()
    stream = iter(chunks)
    # At most two layers: a .gz file served with Content-Encoding: gzip. Deeper nesting
    # does not happen in practice and would be a way to hide a decompression bomb.
    for _ in range(2):
        head, stream = _peek(stream, len(GZIP_MAGIC))
        if not head.startswith(GZIP_MAGIC):
            break
        stream = _gunzip(stream)
        stats.gzip_layers += 1

    number = 0
    total = 0
    pending = b""  # start of the current line, never longer than max_line_bytes
    pending_cut = False  # the current line already lost bytes beyond max_line_bytes
    skip_lf = False  # the previous chunk ended in "\r": a leading "\n" completes a "\r\n"
    try:
        for chunk in stream:
            if not chunk:
                continue
            over = total + len(chunk) > max_bytes
            if over:
                # Keep the lines that end within the limit, then fail.
                chunk = chunk[: max_bytes - total]
            total += len(chunk)
            stats.bytes = total
            if skip_lf and chunk.startswith(b"\n"):
                chunk = chunk[1:]
            skip_lf = False
            if b"\r" in chunk:
                skip_lf = chunk.endswith(b"\r")
                chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            parts = chunk.split(b"\n")
            last = parts.pop()
            if parts:
                if pending_cut:
                    parts[0] = pending  # the rest of an already cut line is skipped
                elif pending:
                    parts[0] = pending + parts[0]
                cut = pending_cut
                for raw in parts:
                    if len(raw) > max_line_bytes:
                        raw = _clip(raw, max_line_bytes)
                        cut = True
                    number += 1
                    text = raw.decode("utf-8", "replace")
                    if "\x1b" in text:
                        text = _ANSI.sub("", text)
                    if number == 1 and text.startswith("\ufeff"):
                        text = text[1:]  # a byte order mark is not part of the text
                    if cut:
                        stats.truncated += 1
                        yield Line(number, text, True)
                        cut = False
                    else:
                        yield Line(number, text)
                pending = last
                pending_cut = False
            elif last and not pending_cut:
                pending += last
            if len(pending) > max_line_bytes:
                pending = _clip(pending, max_line_bytes)
                pending_cut = True
            if over:
                raise FetchError(
                    f"decompressed size exceeds the limit of {max_bytes} bytes"
                    " (fetch.max_decompressed_bytes)"
                )
        if pending or pending_cut:
            number += 1
            text = pending.decode("utf-8", "replace")
            if "\x1b" in text:
                text = _ANSI.sub("", text)
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]
            if pending_cut:
                stats.truncated += 1
            yield Line(number, text, pending_cut)
    finally:
        stats.lines = number


def _clip(data: bytes, limit: int) -> bytes:
    """`data` cut to at most `limit` bytes, at a UTF-8 character boundary."""
    end = limit
    # Step back over continuation bytes so no character is split into U+FFFD.
    while end > 0 and limit - end < 3 and (data[end] & 0xC0) == 0x80:
        end -= 1
    return data[:end]


def _peek(stream: Iterator[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """The first `size` bytes (fewer at end of stream), and the stream still holding them."""
    taken: list[bytes] = []
    have = 0
    for chunk in stream:
        taken.append(chunk)
        have += len(chunk)
        if have >= size:
            break
    head = b"".join(taken)
    return head[:size], _prepend(head, stream)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


def _gunzip(stream: Iterator[bytes]) -> Iterator[bytes]:
    """Decompress gzip data, including files of several concatenated members."""
    decompressor = zlib.decompressobj(wbits=31)
    in_member = False  # a member has started and its end was not seen yet
    try:
        for data in stream:
            while data:
                if not in_member:
                    if not data.strip(b"\0"):
                        break  # zero padding after the last member, which gzip ignores too
                    decompressor = zlib.decompressobj(wbits=31)
                    in_member = True
                out = decompressor.decompress(data, _OUTPUT_CHUNK)
                if out:
                    yield out
                if decompressor.eof:
                    in_member = False
                    data = decompressor.unused_data
                    continue
                data = decompressor.unconsumed_tail
                # A full output block may leave output inside zlib with no input left.
                while not data and len(out) == _OUTPUT_CHUNK and not decompressor.eof:
                    out = decompressor.decompress(b"", _OUTPUT_CHUNK)
                    if out:
                        yield out
                if decompressor.eof:
                    in_member = False
                    data = decompressor.unused_data
        if in_member:
            out = decompressor.flush()
            if out:
                yield out
            if not decompressor.eof:
                raise FetchError("gzip data ends early: the file is truncated")
    except zlib.error as exc:
        raise FetchError(f"gzip data is corrupt: {exc}") from None
