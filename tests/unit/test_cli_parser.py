"""The one-command parser a run builds (cli._parser(command)) reads and prints as the whole
parser does: same help, same namespaces, same usage errors."""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Sequence
from pathlib import Path

import pytest

from kissha import cli

COMMANDS = (*cli.ADDERS, *cli.ADDED_WITH)


def subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    found = action.choices[command]
    assert isinstance(found, argparse.ArgumentParser)
    return found


def outcome(parser: argparse.ArgumentParser, argv: Sequence[str]) -> tuple[object, str, str]:
    """(the namespace or the exit code, stdout, stderr) of parsing argv."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result: object = parser.parse_args(argv)
        except SystemExit as exc:
            result = exc.code
    return result, out.getvalue(), err.getvalue()


@pytest.fixture(autouse=True)
def _width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps help to the terminal's width


def test_the_whole_parser_has_every_command_of_the_table() -> None:
    whole = cli._parser()
    (action,) = [a for a in whole._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(action.choices) == [
        "failover",
        "daemon",
        "check-config",
        "pin",
        "unpin",
        "status",
        "page",
        "certs",
        "challenges",
        "monitor",
        "render",
        "init",
        "deploy",
        "publish",
    ]
    assert sorted(action.choices) == sorted(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_s_own_parser_prints_the_same_help(command: str) -> None:
    whole, one = subparser(cli._parser(), command), subparser(cli._parser(command), command)
    assert one.format_help() == whole.format_help()
    assert one.format_usage() == whole.format_usage()
    assert one.prog == whole.prog == f"kissha {command}"


@pytest.mark.parametrize(
    "argv",
    [
        ["failover"],
        ["-c", "/tmp/k.toml", "--debug", "failover", "-q", "--now", "2026-11-23T12:00:00Z"],
        ["--config=/tmp/k.toml", "failover", "--dry-run", "--json"],
        ["-c/tmp/k.toml", "daemon", "--interval", "0.5", "-v"],
        ["pin", "blowfish", "--for", "2h"],
        ["unpin"],
        ["status", "--nagios", "--port", "5353"],
        ["check-config", "--json"],
        ["page", "--out", "/tmp/p"],
        # usage errors: same words on stderr, same exit
        ["failover", "--bogus"],
        ["failover", "extra"],
        ["failover", "--now"],
        ["failover", "--debug"],
        ["-c", "failover", "failover", "--help"],
        ["pin"],
        ["daemon", "--interval", "0"],
        ["status", "--json", "--nagios"],
        ["failover", "-h"],
        ["-c", "-x", "failover"],
    ],
)
def test_a_command_s_own_parser_reads_argv_the_same(argv: list[str]) -> None:
    command = cli._command_of(argv)
    assert command is not None
    assert outcome(cli._parser(command), argv) == outcome(cli._parser(), argv)


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["failover"], "failover"),
        (["--debug", "-c", "status", "failover"], "failover"),
        (["--config", "pin", "unpin"], "unpin"),
        (["--config=x", "challenges"], "challenges"),
        (["-cx", "--debug", "init", "--help"], "init"),
        # the whole parser: what it prints lists every command
        ([], None),
        (["--help"], None),
        (["-h", "failover"], None),
        (["--version"], None),
        (["--debug"], None),
        (["-c", "x"], None),
        (["bogus"], None),
        (["fail"], None),
        (["--conf", "x", "failover"], None),  # an abbreviation: argparse decides
        (["--deb", "failover"], None),
        (["--", "failover"], None),
        (["--debug=1", "failover"], None),
    ],
)
def test_the_command_is_known_before_argparse_only_when_certain(
    argv: list[str], command: str | None
) -> None:
    assert cli._command_of(argv) == command


def test_the_program_exits_with_main_s_code_and_its_whole_output(tmp_path: Path) -> None:
    # `kissha failover` ends without the interpreter's teardown (cli.run): its output is
    # flushed first and its exit code is main()'s, as for every other command. (Whole
    # --json reports through a pipe: tests/integration/test_failover_nsd.py.)
    import subprocess
    import sys

    bad = tmp_path / "kissha.toml"
    bad.write_text("state_dir = 1\n")
    for command in ("failover", "check-config"):
        r = subprocess.run(
            [sys.executable, "-m", "kissha", "-c", str(bad), command],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == 2, (command, r.stderr)
        assert r.stderr.startswith("kissha: ") and str(bad) in r.stderr + r.stdout
