"""The one timestamp reader: its fragments and utc(), against a hand-written table."""

from __future__ import annotations

import re

import pytest

from worker.formats.timestamps import DATE_TIME, utc

# (text as a log writes it, the ISO-8601 UTC string it means or None), by hand.
TABLE = [
    ("2013-09-27 18:23:42.923", "2013-09-27T18:23:42.923Z"),
    ("2013-09-27 18:23:42,923", "2013-09-27T18:23:42.923Z"),  # Python logging's comma
    ("2013-09-27T18:23:42.923", "2013-09-27T18:23:42.923Z"),
    ("2013-09-27 18:23:42", "2013-09-27T18:23:42Z"),
    ("2018-08-01 00:44:04.804077", "2018-08-01T00:44:04.804077Z"),
    ("2024-01-01T02:30:00.123456+00:00", "2024-01-01T02:30:00.123456Z"),
    ("2024-01-01T02:30:00Z", "2024-01-01T02:30:00Z"),
    ("2013-09-27 18:23:42.923+0200", "2013-09-27T16:23:42.923Z"),
    ("2013-09-27 18:23:42.923-0530", "2013-09-27T23:53:42.923Z"),
    ("2013-09-27 18:23:42+02", "2013-09-27T16:23:42Z"),
    # Offsets that move the date, across a month, a year, a leap day.
    ("2024-01-01T00:30:00.5+02:00", "2023-12-31T22:30:00.5Z"),
    ("2024-12-31T22:00:00-05:00", "2025-01-01T03:00:00Z"),
    ("2024-02-28T23:00:00-01:30", "2024-02-29T00:30:00Z"),
    ("2023-02-28T23:00:00-01:30", "2023-03-01T00:30:00Z"),
    # Impossible: no timestamp at all.
    ("2013-13-45 25:61:99.923", None),
    ("2013-09-27 24:00:00", None),
    ("2013-09-27 18:60:00", None),
    ("2013-09-27 18:00:60", None),
    ("2013-02-29 10:00:00", None),
    ("2013-04-31 10:00:00", None),
    ("2013-00-10 10:00:00", None),
    ("0000-01-01 10:00:00", None),
    ("2013-09-27 18:23:42+2400", None),
    ("2013-09-27 18:23:42+0160", None),
    ("0001-01-01 00:10:00+01:00", None),  # before year 1 in UTC
    ("9999-12-31 23:30:00-01:00", None),  # after year 9999 in UTC
]
PATTERN = re.compile(DATE_TIME + "$", re.ASCII)


@pytest.mark.parametrize(("text", "expected"), TABLE)
def test_utc(text: str, expected: str | None) -> None:
    match = PATTERN.match(text)
    assert match is not None, text
    assert utc(*match.groups()) == expected


def test_the_same_impossible_date_is_refused_every_time() -> None:
    # Real dates are remembered; an impossible one must never be.
    assert utc("2014-02-30", "10:00:00", None) is None
    assert utc("2014-02-30", "10:00:00", None) is None
    assert utc("2014-02-28", "10:00:00", None) == "2014-02-28T10:00:00Z"
    assert utc("2014-02-28", "10:00:00", None) == "2014-02-28T10:00:00Z"


def test_only_ascii_digits() -> None:
    assert PATTERN.match("\u0662\u0660\u0661\u0663-09-27 18:23:42") is None


def test_fractions_up_to_nanoseconds() -> None:
    # No clock writes more than 9 digits; a longer run is not read to its end.
    nine = PATTERN.match("2013-09-27 18:23:42.123456789")
    assert nine is not None
    assert utc(*nine.groups()) == "2013-09-27T18:23:42.123456789Z"
    assert PATTERN.match("2013-09-27 18:23:42.1234567890") is None
