"""A page opened in Debian's real headless Chromium: its DOM after load, and a
screenshot decoded (PNG by hand: zlib and the five scanline filters) into pixels.

A missing Chromium fails the test that asks for it (tools/setup installs it)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"]
TIMEOUT = 120


def chromium() -> str:
    path = shutil.which("chromium")
    assert path, "chromium is not installed: run tools/setup (Debian package chromium)"
    return path


def run(page: Path, *args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM as Chromium serialises it once the page has loaded (scripts run)."""
    return run(page, "--dump-dom", profile=profile).stdout


def screenshot(page: Path, target: Path, profile: Path, size: str = "1000,900") -> Path:
    run(page, f"--screenshot={target}", f"--window-size={size}", profile=profile)
    assert target.is_file(), f"chromium wrote no screenshot at {target}"
    return target


class Dom(HTMLParser):
    """What the tests look at in a report page's DOM (log_shipper/trend_page.py): chart
    points (`rect.point`) per bug section, elements by name, link targets, the title."""

    def __init__(self) -> None:
        super().__init__()
        self.bug = ""
        self.points: Counter[str] = Counter()
        self.segments: dict[str, dict[tuple[str, str], str]] = {}
        self.elements: Counter[str] = Counter()
        self.hrefs: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements[tag] += 1
        if tag == "section" and attributes.get("data-bug"):
            self.bug = str(attributes["data-bug"])
        if tag == "rect" and attributes.get("class") == "point":
            self.points[self.bug] += 1
            key = (str(attributes["data-day"]), str(attributes["data-status"]))
            self.segments.setdefault(self.bug, {})[key] = str(attributes["data-count"])
        if tag == "a":
            self.hrefs.append(str(attributes.get("href")))
        self._in_title = tag == "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


def png_pixels(data: bytes) -> list[tuple[int, ...]]:
    """Every pixel of an 8-bit, non-interlaced greyscale/RGB/RGBA PNG, row by row."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset = 8
    idat = bytearray()
    width = height = channels = 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0, f"depth {depth}, interlace {interlace}"
            channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    rows: list[bytearray] = []
    previous = bytearray(stride)
    at = 0
    for _ in range(height):
        method, line = raw[at], bytearray(raw[at + 1 : at + 1 + stride])
        at += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if method == 1:
                line[i] = (line[i] + left) & 0xFF
            elif method == 2:
                line[i] = (line[i] + up) & 0xFF
            elif method == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif method == 4:
                line[i] = (line[i] + _paeth(left, up, corner)) & 0xFF
        rows.append(line)
        previous = line
    return [tuple(row[x * channels : (x + 1) * channels]) for row in rows for x in range(width)]


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c
