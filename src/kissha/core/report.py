"""A run's report: what one failover run found and did, as a frozen value.

The run (engine/failover.py) builds it once; every output (the text and JSON reports,
events, notifications, the page, the metrics) reads it from here, so none of them
imports the run that made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from kissha.core.model import Decision, ProbeResult, Roles
from kissha.core.zonefile import ZonePlan
from kissha.exits import Exit


@dataclass(frozen=True)
class ZoneFailure:
    """A zone that could not be changed, at which stage, and why (file:line if known).

    Stages: ``plan`` (kissha cannot rewrite the file), ``validate`` (the server's
    checker refuses the new file), ``install`` (the file changed on disk during the
    run), ``verify`` (the server does not serve the new zone: put back), ``reload``
    (the reload itself failed: every zone put back)."""

    zone: str
    path: Path
    stage: str
    error: str

    def __str__(self) -> str:
        return f"{self.zone} ({self.stage}): {self.error}"


class Outcome(StrEnum):
    """How a run ended; the value is the word the text, the JSON and state.json show."""

    UNCHANGED = "unchanged"  # every zone already pointed at the right nodes
    CHANGED = "changed"  # some zones served anew (maybe not all: see failed)
    ROLLED_BACK = "rolled-back"  # none served: the changed zones were put back
    NOT_CHANGED = "not-changed"  # every zone to change failed before install
    KEPT = "kept"  # every node is down: the records stay as they are
    FAILED = "failed"  # an error stopped the run (error_code says which)


@dataclass(frozen=True)
class ApplyReport:
    """What ``apply`` did: the zones served and verified, those that could not be
    changed, how they were checked, and timings."""

    zones: tuple[str, ...] = ()  # installed, reloaded and verified
    failed: tuple[ZoneFailure, ...] = ()
    rollback: str = ""  # how the put-back zones went, in words ("" when none)
    error: str = ""  # the reload's own failure, when every zone was put back
    checked: int = 0  # zones validated by the server's own checker
    trusted: int = 0  # zones whose skeleton was already validated (see FileZoneServer)
    verified: int = 0  # answers confirmed
    timings: Mapping[str, float] = field(default_factory=dict)


@dataclass
class Applying:
    """An ApplyReport while ``apply`` finds it out, step by step; ``freeze`` ends it."""

    zones: list[str] = field(default_factory=list)
    failed: list[ZoneFailure] = field(default_factory=list)
    rollback: str = ""
    error: str = ""
    checked: int = 0
    trusted: int = 0
    verified: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def freeze(self) -> ApplyReport:
        return ApplyReport(
            tuple(self.zones),
            tuple(self.failed),
            self.rollback,
            self.error,
            self.checked,
            self.trusted,
            self.verified,
            dict(self.timings),
        )


@dataclass(frozen=True)
class RunReport:
    """Everything a run found and did, for humans (cron mail) and machines (--json)."""

    now: float
    dry_run: bool
    probes: tuple[ProbeResult, ...]
    decision: Decision
    previous: Roles | None
    zones_total: int = 0
    plans: tuple[ZonePlan, ...] = ()  # the zones to change
    outcome: Outcome = Outcome.UNCHANGED
    message: str = ""
    recovered: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # zone files that fail validation
    applied: ApplyReport | None = None
    timings: Mapping[str, float] = field(default_factory=dict)
    checked: bool = False  # the unchanged zones were validated (so problems is complete)
    seq_before: int = 0  # the state's last event id before this run
    # watch_nameservers: label ("blowfish/ipv4") -> the masters its answers name, and
    # whether every nameserver answered; None when not watched.
    nameservers: Mapping[str, tuple[str, ...]] | None = None
    nameservers_complete: bool = False
    # zones that could not be changed (not planned, not valid, not served: put back)
    failed: tuple[ZoneFailure, ...] = ()
    error_code: int | None = None  # set when an error stopped the run (outcome FAILED)

    @property
    def exit_code(self) -> int:
        if self.error_code is not None:
            return self.error_code
        if self.outcome == Outcome.ROLLED_BACK:
            return Exit.ROLLED_BACK
        if self.failed:
            return Exit.PARTIAL if self.outcome == Outcome.CHANGED else Exit.ZONES_FAILED
        return Exit.CHANGED if self.outcome == Outcome.CHANGED else Exit.OK

    @property
    def done(self) -> list[ZonePlan]:
        """The plans served now (or, in a dry run, that would be)."""
        if self.outcome != Outcome.CHANGED:
            return []
        failed = {f.zone for f in self.failed}
        return [p for p in self.plans if p.zone not in failed]

    @property
    def zone_problems(self) -> list[str]:
        """Zone files that cannot be changed as they are (open until fixed): the unchanged
        ones that fail validation, and those this run could not plan or validate."""
        own = [f"{f.zone}: {f.error}" for f in self.failed if f.stage in ("plan", "validate")]
        return [*self.problems, *own]
