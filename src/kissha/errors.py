"""Every error kissha expects, under one root; the CLI maps each to an exit code."""

from __future__ import annotations

from kissha.exits import Exit


class KisshaError(Exception):
    """kissha failed."""

    exit_code: int = Exit.INTERNAL

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


# Problems shown in one message: a config with thousands of unknown keys once printed
# 15 MB. The rest are counted ("... and N more"); ``problems`` keeps them all.
MAX_SHOWN = 50


def capped(items: list[str], limit: int = MAX_SHOWN) -> list[str]:
    """The first ``limit`` items, then "... and N more" if there were more."""
    if len(items) <= limit:
        return list(items)
    return [*items[:limit], f"... and {len(items) - limit} more"]


class ConfigError(KisshaError):
    """The configuration is invalid."""

    exit_code = Exit.CONFIG

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        where = f"{source}: " if source else ""
        if len(problems) == 1:
            message = f"{where}{problems[0]}"
        else:
            shown = capped(problems)
            message = f"{where}{len(problems)} problems:\n  " + "\n  ".join(shown)
        super().__init__(message)


class UsageError(KisshaError):
    """The command line is invalid."""

    exit_code = Exit.CONFIG


class ZoneError(KisshaError):
    """A zone file cannot be planned; it was not touched."""

    exit_code = Exit.ZONES_FAILED


class LockHeld(KisshaError):
    """Another kissha run holds the lock."""

    exit_code = Exit.LOCKED


class ApplyFailed(KisshaError):
    """Applying the change failed; the old zones were restored."""

    exit_code = Exit.ROLLED_BACK


class EnvError(KisshaError):
    """A file, directory or program kissha needs cannot be used; nothing was changed.

    The message names the path and the cause (read-only file system, permission
    denied, no space left on device, not found)."""

    exit_code = Exit.ENVIRONMENT


class JournalError(EnvError):
    """The journal of an interrupted run cannot be read; nothing was changed."""


def os_error(path: object, exc: OSError, doing: str) -> str:
    """``PATH: cannot DOING: CAUSE``: one line, whichever path the OSError names."""
    cause = exc.strerror or str(exc) or type(exc).__name__
    return f"{path}: cannot {doing}: {cause}"


class RunFailed(KisshaError):
    """A run stopped after probing; ``report`` holds what it found (probes, decision)."""

    def __init__(self, message: str, report: object, exit_code: int) -> None:
        super().__init__(message)
        self.report = report
        self.exit_code = exit_code
