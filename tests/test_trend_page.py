"""log_shipper/trend_page.py: the report page, opened in a real headless Chromium.

The report comes from a hand-written table of builds (the same page from indexed
logs is checked in tests/integration/test_trend.py); hostile text from the logs stays
text."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from log_shipper.classify import Line
from log_shipper.fingerprints import Fingerprint
from log_shipper.trend import Gathered, Window, build_report
from log_shipper.trend_page import render_page
from tests.chromium import Dom, dump_dom, png_pixels, screenshot
from tests.test_trend import build

WINDOW = Window(datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))
HOSTILE = '<script>document.title="pwned"</script><img src=x onerror=alert(1)>'


BUILDS = [
    build("a", 20, "FAILURE"),
    build("b", 20, "FAILURE"),
    build("c", 20, "SUCCESS"),
    build("d", 21, "TIMED_OUT"),
    build("e", 23, "FAILURE"),
    build("f", 22, "FAILURE", job=f"job{HOSTILE}"),
]
QUERIES = [
    Fingerprint("1001", Path("1001.yaml"), 'message:"one"'),
    Fingerprint("1002", Path("1002.yaml"), 'message:"two"'),
    Fingerprint("1003", Path("1003.yaml"), 'message:"three"', suppress_graph=True),
]
MATCHES = {"1001": {"a", "b", "c", "d", "e"}, "1002": {"d"}, "1003": {"a"}}
SCREEN = "https://logs.example.org/f/screen-n-cpu.txt"
ERRORS = {
    "f": [
        Line.of(
            {
                "filename": "logs/screen-n-cpu.txt",
                "line_number": 3,
                "log_url": SCREEN,
                "message": HOSTILE,
            }
        ),
        Line.of(
            {
                "filename": "logs/other.txt",
                "line_number": 9,
                "log_url": "javascript:alert(1)",
                "message": "second",
            }
        ),
    ]
}
# Hand-counted chart points (one bar segment per day and status with builds):
# 1001: 11-20 FAILURE (a, b) and SUCCESS (c), 11-21 TIMED_OUT (d), 11-23 FAILURE (e)
# 1002: 11-21 TIMED_OUT (d); 1003 says suppress-graph: listed, no chart
POINTS = {"1001": 4, "1002": 1}
SEGMENTS = {"1001": {("2026-11-20", "FAILURE"): "2", ("2026-11-20", "SUCCESS"): "1"}}


def page(tmp_path: Path) -> Path:
    report = build_report(QUERIES, Gathered(WINDOW, None, BUILDS, MATCHES, ERRORS))
    target = tmp_path / "report.html"
    target.write_text(render_page(report), encoding="utf-8")
    return target


def test_the_page_renders_its_charts_and_hostile_text_stays_text(tmp_path: Path) -> None:
    source = page(tmp_path)
    dom_text = dump_dom(source, tmp_path / "profile")
    dom = Dom()
    dom.feed(dom_text)
    assert dict(dom.points) == POINTS
    assert 'data-bug="1003"' in dom_text and "chart suppressed (suppress-graph)" in dom_text
    assert {key: dom.segments["1001"][key] for key in SEGMENTS["1001"]} == SEGMENTS["1001"]
    # The injected markup is shown, not run: no script or img element, title unchanged.
    assert dom.elements["script"] == 0 and dom.elements["img"] == 0
    assert dom.title.startswith("Which races hurt most") and "pwned" not in dom.title
    assert dom_text.count("&lt;script&gt;document.title") == 2  # the job name and the line
    # Only the web address became a link; the javascript: one is plain text.
    assert dom.hrefs == ["https://logs.example.org/f/screen-n-cpu.txt#L3"]
    # Self-contained: nothing on the page loads anything, from anywhere.
    html = source.read_text().lower()
    for loads in ("<script", "<link", "<img", "<iframe", "url(", "@import"):
        assert loads not in html, loads


def test_a_screenshot_of_the_page_is_not_blank(tmp_path: Path) -> None:
    shot = screenshot(page(tmp_path), tmp_path / "report.png", tmp_path / "profile")
    pixels = png_pixels(shot.read_bytes())
    colours = Counter(pixel[:3] for pixel in pixels)
    white = colours[(255, 255, 255)]
    assert len(colours) > 20, f"{len(colours)} colours"
    assert white < 0.98 * len(pixels)
    assert colours[(0xD6, 0x27, 0x28)] > 100  # FAILURE bars are drawn
    assert colours[(0x2C, 0xA0, 0x2C)] > 20  # and SUCCESS ones
