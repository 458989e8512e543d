"""One table of exit codes: the help text and README's table say the same codes."""

from __future__ import annotations

import re
from pathlib import Path

from kissha.cli import EPILOG
from kissha.errors import ApplyFailed, ConfigError, EnvError, KisshaError, LockHeld, ZoneError
from kissha.exits import MEANING, PRECEDENCE, Exit

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_code_has_a_meaning_and_a_place() -> None:
    assert set(MEANING) == set(Exit)
    assert set(PRECEDENCE) == set(Exit) - {Exit.CRITICAL}  # 6 is never a failover's


def test_the_help_lists_every_code() -> None:
    listed = {int(m.group(1)) for m in re.finditer(r"^  (\d+) ", EPILOG, re.M)}
    assert listed == {int(c) for c in Exit}


def test_readme_table_lists_every_code_and_no_other() -> None:
    text = README.read_text()
    table = text[text.index("### Exit codes") :].split("\n\n")[2]
    rows = {int(m.group(1)) for m in re.finditer(r"^\| (\d+) \|", table, re.M)}
    assert rows == {int(c) for c in Exit}


def test_errors_carry_codes_from_the_table() -> None:
    for error, code in [
        (KisshaError, Exit.INTERNAL),
        (ConfigError, Exit.CONFIG),
        (ZoneError, Exit.ZONES_FAILED),
        (LockHeld, Exit.LOCKED),
        (ApplyFailed, Exit.ROLLED_BACK),
        (EnvError, Exit.ENVIRONMENT),
    ]:
        assert error.exit_code == code
