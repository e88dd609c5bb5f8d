"""`log-shipper` (log_shipper/cli.py) as a user meets it: the help of every option, and
the progress `index` shows on a terminal and keeps out of a pipe."""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from log_shipper import cli
from tests.integration.trees import make_tree
from tests.paths import corpus_lines
from tests.test_worker_cli import environment
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


# --- index's progress -------------------------------------------------------------------

# Files the default rules select, each read to its end: the progress counts their lines.
PROGRESS_TREE = {
    "job-output.txt.gz": "zuul-jobs-fixture/job-output.txt.gz",
    "logs/devstack@c-api.service.log.txt": "os-loganalyze/devstack@c-api.service.log.txt",
    "logs/devstack@c-vol.service.log.txt": "os-loganalyze/devstack@c-vol.service.log.txt",
}


def index_command(tmp_path: Path) -> list[str]:
    root = make_tree(tmp_path / "build", PROGRESS_TREE)
    sink = f"sqlite:{tmp_path / 'logs.db'}"
    return [sys.executable, "-m", "log_shipper.cli", "index", str(root), "--sink", sink]


def run_in_terminal(command: list[str], cwd: Path) -> tuple[int, str]:
    """Run `command` with a pseudo-terminal as its stdin, stdout and stderr; its exit
    status and everything it wrote to the terminal."""
    controller, terminal = pty.openpty()
    # rows, columns: wide enough that tqdm cuts nothing off the bar
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    try:
        process = subprocess.Popen(
            command, cwd=cwd, env=environment(), stdin=terminal, stdout=terminal, stderr=terminal
        )
    finally:
        os.close(terminal)
    output = b""
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: every holder of the terminal has closed it
                break
            if not chunk:
                break
            output += chunk
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
    return code, output.decode(errors="replace")


def test_index_on_a_terminal_shows_files_lines_and_rate(tmp_path: Path) -> None:
    code, output = run_in_terminal(index_command(tmp_path), tmp_path)
    assert code == 0, output
    total = sum(corpus_lines(source) for source in PROGRESS_TREE.values())
    # tqdm redraws its line with \r; the last drawing has every file and every line.
    drawings = [part for line in output.splitlines() for part in line.split("\r")]
    final = [d for d in drawings if "3/3" in d and f"{total} lines" in d]
    assert final, output
    assert re.search(r"\d+ lines/s", final[-1]), final[-1]
    assert "file" in final[-1]
    assert f"{len(PROGRESS_TREE)} files submitted, 0 failed" in output  # and the table


def test_index_not_on_a_terminal_prints_no_progress(tmp_path: Path) -> None:
    result = subprocess.run(
        index_command(tmp_path),
        cwd=tmp_path,
        env=environment(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["file", "format", "lines", "indexed", "failed", "seconds", "status"]
    assert sorted(line.split()[0] for line in lines[1:4]) == sorted(PROGRESS_TREE)
    assert "\r" not in result.stdout and "lines/s" not in result.stdout
    assert lines[-1].startswith("sink: ")


def test_log_shipper_loads_none_of_the_workers_runtime() -> None:
    # A fresh interpreter: this one has loaded everything already. The hook runs this
    # module at the end of every CI job; only `index` and `backfill --sink` run a worker.
    check = (
        "import sys, log_shipper.cli\n"
        "runtime = ('worker.pipeline', 'worker.metrics', 'worker.gearman_worker', 'worker.cli')\n"
        "print(sorted(name for name in runtime if name in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]", result.stdout
