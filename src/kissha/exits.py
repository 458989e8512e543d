"""kissha's exit codes: one table for the CLI, the daemon's log and the docs.

A command uses the codes that apply to it, with the meanings below; the one exception
is check-config, which reports what would stop a run (the config or the environment)
as 2. The help text (``kissha --help``) is rendered from this table, and a test holds
README's "Exit codes" table to it.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    CHANGED = 1
    CONFIG = 2
    ROLLED_BACK = 3
    LOCKED = 4
    ZONES_FAILED = 5
    CRITICAL = 6
    PARTIAL = 7
    ENVIRONMENT = 8
    INTERNAL = 70


MEANING: dict[Exit, str] = {
    Exit.OK: "nothing to change (or the command succeeded)",
    Exit.CHANGED: "records changed and verified (cron mails the output, as with the "
    "original script); certs: files written",
    Exit.CONFIG: "configuration or usage error; nothing was touched",
    Exit.ROLLED_BACK: "a change failed the reload or verification and was rolled back: "
    "no zone changed; certs: a name or a hook failed",
    Exit.LOCKED: "another kissha run holds the lock; this one did nothing",
    Exit.ZONES_FAILED: "a zone file cannot be changed (a marked record kissha cannot "
    "rewrite, a file that fails nsd-checkzone) and no other zone changed; that file was "
    "not touched",
    Exit.CRITICAL: "status: critical (split brain, no nameserver reachable, every node "
    "down); certs: a split brain held back the site names",
    Exit.PARTIAL: "some zones changed and were verified, others could not be (named, "
    "left as they were or put back)",
    Exit.ENVIRONMENT: "environment error: a file, directory or program kissha needs "
    "cannot be used (read-only file system, permission denied, disk full, missing "
    "nsd-control, a damaged journal); the message names it; nothing was changed",
    Exit.INTERNAL: "unexpected internal error (--debug shows the traceback and keeps the code)",
}

# When several apply to one failover run, the first in this order wins: the ones that
# stop a run, then what the run did.
PRECEDENCE = (
    Exit.CONFIG,
    Exit.LOCKED,
    Exit.ENVIRONMENT,
    Exit.INTERNAL,
    Exit.ROLLED_BACK,
    Exit.PARTIAL,
    Exit.ZONES_FAILED,
    Exit.CHANGED,
    Exit.OK,
)


def help_text(width: int = 88) -> str:
    """The table as ``--help`` shows it: one code a paragraph, wrapped."""
    import textwrap

    order = ", ".join(str(int(c)) for c in PRECEDENCE[:4])
    rest = ", ".join(str(int(c)) for c in PRECEDENCE[4:])
    lines = [f"exit codes (for failover, when several apply the first of {order}, then {rest}):"]
    for code, meaning in MEANING.items():
        wrapped = textwrap.wrap(meaning, width - 6, break_on_hyphens=False)
        lines.append(f"  {int(code):<3} {wrapped[0]}")
        lines.extend(f"      {w}" for w in wrapped[1:])
    return "\n".join(lines) + "\n"
