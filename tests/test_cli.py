"""`log-shipper` (log_shipper/cli.py) as a user meets it: the help of every option, and
the progress `index` shows on a terminal and keeps out of a pipe."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from log_shipper import cli
from worker import cli as worker_cli


def parsers(
    parser: argparse.ArgumentParser, name: str
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """`parser` and every subcommand's parser under it, with their command lines."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command, sub in action.choices.items():
                yield from parsers(sub, f"{name} {command}")


def options(root: argparse.ArgumentParser, name: str) -> Iterator[tuple[str, argparse.Action]]:
    for command, parser in parsers(root, name):
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                yield command, action


COMMANDS = [(cli.build_parser(), "log-shipper"), (worker_cli.build_parser(), "log-worker")]


@pytest.mark.parametrize(("parser", "name"), COMMANDS)
def test_every_option_of_every_subcommand_has_help(
    parser: argparse.ArgumentParser, name: str
) -> None:
    missing = [
        f"{command} {action.option_strings or action.dest}"
        for command, action in options(parser, name)
        if action.help != argparse.SUPPRESS and not (action.help or "").strip()
    ]
    assert missing == []
    for command, sub in parsers(parser, name):
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                assert all(choice.help for choice in action._choices_actions), command


@pytest.mark.parametrize(("parser", "name"), COMMANDS)
def test_every_timeout_is_in_seconds_and_says_so(
    parser: argparse.ArgumentParser, name: str
) -> None:
    timeouts = [
        (command, action)
        for command, action in options(parser, name)
        if any(option.endswith("timeout") for option in action.option_strings)
    ]
    for command, action in timeouts:
        assert action.metavar == "SECONDS", (command, action.option_strings)
        assert "SECONDS seconds" in str(action.help), (command, action.option_strings)
    if name == "log-shipper":
        # index, submit (--timeout and --connect-timeout) and backfill
        assert len(timeouts) == 4


def test_the_flags_statuses_and_voting_values_are_named_in_the_help() -> None:
    index = dict(parsers(cli.build_parser(), "log-shipper"))["log-shipper index"]
    text = index.format_help()
    for value in ("SUCCESS", "FAILURE", "TIMED_OUT", "POST_FAILURE"):
        assert value in text
    by_option = {o: a for a in index._actions for o in a.option_strings}
    assert "1 or 0" in str(by_option["--voting"].help)
