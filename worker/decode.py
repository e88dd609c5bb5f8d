"""From raw bytes to numbered text lines: gunzip, limits, line splitting, UTF-8, ANSI.

Everything streams: memory stays bounded by the chunk size plus one maximum-length line,
whatever the size of the file or its compression ratio.

Line numbers are the ones a log server or a browser's "#L" link uses: a line ends at
"\n" ("\r\n" is one terminator). A lone "\r" (a progress bar redrawing itself, a
screen "stuff" command) is text inside the line, kept as it is: a browser shows every
state of the bar, so the text after each CR is as searchable as the text after the
last one, and the line keeps its timestamp prefix, which precedes the first CR.

NUL bytes are removed (a file pre-allocated or zero-filled by a crash holds runs of
them). Binary data (random or compressed bytes, executables: more than one byte in 20
a control character text does not use) is refused with a FetchError. The first 64 KiB
are judged before any line is yielded; then the first 4 KiB of every 64 KiB, so a
binary run of 68 KiB or more later in a file is refused too, after at most 68 KiB of
it was yielded. A file
starting with a UTF-16 byte order mark (Windows PowerShell's default) is converted to
UTF-8; every other file is read as UTF-8 (UTF-16 without the mark is not converted:
its ASCII survives as text once NULs are removed, other scripts look binary).

Caps that stop reading early without failing the file (DecodeStats.stopped says
which): a number of lines, and a decompression ratio past some decompressed size
(a gzip bomb of short lines would otherwise become millions of documents).
"""

from __future__ import annotations

import codecs
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from worker.errors import FetchError
from worker.formats.base import Line

GZIP_MAGIC = b"\x1f\x8b"
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Bounds each zlib output so a small, highly compressed input cannot allocate a huge block.
_OUTPUT_CHUNK = 256 * 1024

# CSI (colours, cursor moves, erase), OSC (titles, hyperlinks; ended by BEL or ST, or
# by the end of the line when a tool forgot), charset selection, other two-byte escapes,
# and a lone ESC that starts nothing valid.
_ANSI = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[()*+][ -~]|[@-Z\\-_]|)"
)

# Control bytes text does not hold, or only by the odd one (a bell, a stray shift-in):
# all but tab, line ends, form feeds, backspace and ESC (terminal output uses those).
# Random or compressed bytes are one in ten of them.
_CONTROL = bytes(b for b in range(1, 32) if b not in b"\t\n\v\f\r\b\x1b") + b"\x7f"
BINARY_WINDOW = 64 * 1024
# After the first window, a sample of each: a sixteenth of the cost of counting all.
BINARY_SAMPLE = 4 * 1024
_BINARY_SHARE = 20  # a window with more than one control byte in 20 is binary
_BINARY_MIN = 16  # ... and more than this many (a short file's last window is small)


@dataclass(slots=True)
class DecodeStats:
    lines: int = 0
    bytes: int = 0  # decompressed bytes read
    truncated: int = 0  # lines cut at max_line_bytes
    gzip_layers: int = 0  # 2 for a .gz file served with Content-Encoding: gzip
    compressed: int = 0  # bytes taken from the source
    stopped: str = ""  # why reading stopped before the end (a cap), or ""


def decode_lines(
    chunks: Iterable[bytes],
    *,
    max_bytes: int,
    max_line_bytes: int,
    max_lines: int | None = None,
    max_ratio: float | None = None,
    ratio_after_bytes: int = 0,
    stats: DecodeStats | None = None,
) -> Iterator[Line]:
    """Yield the lines of a possibly gzip-compressed byte stream.

    Lines end at "\\n" or "\\r\\n"; a final line without terminator is yielded, a
    final terminator adds no empty line. Raises FetchError once more than `max_bytes`
    decompressed bytes arrive (lines before the limit have been yielded), or on binary
    data. Stops, setting `stats.stopped`, before a line beyond `max_lines`, or once more
    than `ratio_after_bytes` decompressed bytes are over `max_ratio` times the bytes
    taken from the source.
    """
    if stats is None:
        stats = DecodeStats()
    stream = _counted(iter(chunks), stats)
    # At most two layers: a .gz file served with Content-Encoding: gzip. Deeper nesting
    # does not happen in practice and would be a way to hide a decompression bomb.
    for _ in range(2):
        head, stream = _peek(stream, len(GZIP_MAGIC))
        if not head.startswith(GZIP_MAGIC):
            break
        stream = _gunzip(stream)
        stats.gzip_layers += 1
    head, stream = _peek(stream, 2)
    if head in UTF16_BOMS:
        stream = _from_utf16(stream)
    # The first window is judged before any line is yielded, however the source chunks.
    head, stream = _peek(stream, BINARY_WINDOW)
    head = head.replace(b"\0", b"")
    _judge(_controls(head), len(head), 0)

    number = 0
    total = 0
    sampler = _BinarySampler()
    pending = b""  # start of the current line, never longer than max_line_bytes (+ a CR)
    pending_cut = False  # the current line already lost bytes beyond max_line_bytes
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
            if (
                max_ratio is not None
                and stats.gzip_layers
                and total > ratio_after_bytes
                and total > max_ratio * stats.compressed
            ):
                stats.stopped = f"decompression ratio cap {max_ratio:g} reached after {total} bytes"
                return
            if b"\0" in chunk:
                chunk = chunk.replace(b"\0", b"")
            if b"\r" in chunk:
                chunk = chunk.replace(b"\r\n", b"\n")
            sampler.feed(chunk)
            parts = chunk.split(b"\n")
            last = parts.pop()
            if parts:
                if pending_cut:
                    parts[0] = pending  # the rest of an already cut line is skipped
                elif pending:
                    parts[0] = pending + parts[0]
                if parts[0].endswith(b"\r"):
                    # The CR of a "\r\n" split between this chunk and the previous one.
                    parts[0] = parts[0][:-1]
                # The cap checked once per chunk, not once per line.
                capped = False
                if max_lines is not None and number + len(parts) > max_lines:
                    del parts[max_lines - number :]
                    capped = True
                cut = pending_cut
                for raw in parts:
                    if len(raw) > max_line_bytes:
                        raw = _clip(raw, max_line_bytes)
                        cut = True
                    number += 1
                    # _text's work written out: a call per line costs more than it does.
                    text = raw.decode("utf-8", "replace")
                    if "\x1b" in text:
                        text = _ANSI.sub("", text)
                    if number == 1 and text.startswith("\ufeff"):
                        text = text[1:]
                    if cut:
                        stats.truncated += 1
                        yield Line(number, text, True)
                        cut = False
                    else:
                        yield Line(number, text)
                if capped:
                    stats.stopped = f"lines cap {max_lines} reached"
                    return
                pending = last
                pending_cut = False
            elif last and not pending_cut:
                pending += last
            # One byte more when it is a CR: the "\n" of its "\r\n" may be next.
            if len(pending) > max_line_bytes + pending.endswith(b"\r"):
                pending = _clip(pending, max_line_bytes)
                pending_cut = True
            if over:
                raise FetchError(
                    f"decompressed size exceeds the limit of {max_bytes} bytes"
                    " (fetch.max_decompressed_bytes)"
                )
        sampler.judge()
        if pending or pending_cut:
            if number == max_lines:
                stats.stopped = f"lines cap {max_lines} reached"
                return
            number += 1
            if pending_cut:
                stats.truncated += 1
            yield Line(number, _text(pending, number), pending_cut)
    finally:
        stats.lines = number


def _text(raw: bytes, number: int) -> str:
    text = raw.decode("utf-8", "replace")
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    if number == 1 and text.startswith("\ufeff"):
        text = text[1:]  # a byte order mark is not part of the text
    return text


@dataclass(slots=True)
class _BinarySampler:
    """Control bytes counted in the first BINARY_SAMPLE bytes of every BINARY_WINDOW."""

    offset: int = 0  # text bytes fed (NULs removed)
    sampled: int = 0  # bytes of the current sample so far
    controls: int = 0

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            at = self.offset % BINARY_WINDOW
            if at < BINARY_SAMPLE:
                piece = view[: BINARY_SAMPLE - at].tobytes()
                self.sampled += len(piece)
                self.controls += _controls(piece)
                if at + len(piece) == BINARY_SAMPLE:
                    self.judge()
            step = min(len(view), BINARY_WINDOW - at)  # on to the next window's start
            self.offset += step
            view = view[step:]

    def judge(self) -> None:
        """Refuse the sample so far if it is binary, then wait for the next one."""
        if self.sampled:
            start = self.offset - self.offset % BINARY_WINDOW
            _judge(self.controls, self.sampled, start)
        self.sampled = self.controls = 0


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


def _controls(data: bytes) -> int:
    return len(data) - len(data.translate(None, _CONTROL))


def _judge(controls: int, size: int, start: int) -> None:
    if controls > max(_BINARY_MIN, size // _BINARY_SHARE):
        raise FetchError(
            f"binary data, not a text log: {controls} control bytes in the {size} bytes"
            f" from offset {start} (a log must be UTF-8 text, or UTF-16 with a byte"
            " order mark)"
        )


def _counted(stream: Iterator[bytes], stats: DecodeStats) -> Iterator[bytes]:
    for chunk in stream:
        stats.compressed += len(chunk)
        yield chunk


def _from_utf16(stream: Iterator[bytes]) -> Iterator[bytes]:
    """UTF-16 with a byte order mark (either order) as UTF-8, the mark removed."""
    decoder = codecs.getincrementaldecoder("utf-16")("replace")
    for chunk in stream:
        text = decoder.decode(chunk)
        if text:
            yield text.encode("utf-8")
    rest = decoder.decode(b"", final=True)
    if rest:
        yield rest.encode("utf-8")


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
