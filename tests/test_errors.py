"""worker/errors.py: one_line, the one bound on every error stored or answered."""

from __future__ import annotations

import pytest

from worker.errors import MAX_REASON, one_line

DIGITS = "".join(str(n % 10) for n in range(501))
MEGABYTE = "start " + "z" * 1_000_000 + " the cause"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain reason", "plain reason"),
        ("two\nlines\r\n\tand  tabs ", "two lines and tabs"),
        ("x" * 500, "x" * 500),
        # The marker " … [N characters cut] … " is 23 characters and N's digits, with
        # room made for the digits of the whole length: 501 leaves 500 - 26 = 474
        # kept, two thirds from the start and one third from the end.
        (DIGITS, DIGITS[:316] + " … [27 characters cut] … " + DIGITS[-158:]),
        # 1,000,016 characters: 500 - 32 = 468 kept.
        (MEGABYTE, MEGABYTE[:312] + " … [999,548 characters cut] … " + MEGABYTE[-156:]),
    ],
    ids=["short", "whitespace", "at the bound", "one over", "a megabyte"],
)
def test_one_line(text: str, expected: str) -> None:
    assert one_line(text) == expected
    assert len(one_line(text)) <= MAX_REASON


def test_a_smaller_bound() -> None:
    assert one_line("abcdefghij" * 10, 40) == "abcdefghij … [86 characters cut] … ghij"
