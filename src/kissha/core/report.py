"""A run's report: what one failover run found and did, as data.

The run (engine/failover.py) fills it in; every output (the text and JSON reports,
events, notifications, the page, the metrics) reads it from here, so none of them
imports the run that made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass
class ApplyReport:
    """What ``apply`` did: the zones served and verified, those that could not be
    changed, how they were checked, and timings."""

    zones: list[str] = field(default_factory=list)  # installed, reloaded and verified
    failed: list[ZoneFailure] = field(default_factory=list)
    rollback: str = ""  # how the put-back zones went, in words ("" when none)
    error: str = ""  # the reload's own failure, when every zone was put back
    checked: int = 0  # zones validated by the server's own checker
    trusted: int = 0  # zones whose skeleton was already validated (see FileZoneServer)
    verified: int = 0  # answers confirmed
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class RunReport:
    """Everything a run found and did, for humans (cron mail) and machines (--json)."""

    now: float
    dry_run: bool
    probes: list[ProbeResult]
    decision: Decision
    previous: Roles | None
    zones_total: int = 0
    plans: list[ZonePlan] = field(default_factory=list)
    # unchanged | changed (some zones, maybe not all) | rolled-back (none served) |
    # not-changed (every zone to change failed before install) | kept | failed (error)
    outcome: str = "unchanged"
    message: str = ""
    recovered: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # zone files that fail validation
    applied: ApplyReport | None = None
    timings: dict[str, float] = field(default_factory=dict)
    checked: bool = False  # the unchanged zones were validated (so problems is complete)
    seq_before: int = 0  # the state's last event id before this run
    # watch_nameservers: label ("blowfish/ipv4") -> the masters its answers name, and
    # whether every nameserver answered; None when not watched.
    nameservers: dict[str, tuple[str, ...]] | None = None
    nameservers_complete: bool = False
    # zones that could not be changed (not planned, not valid, not served: put back)
    failed: list[ZoneFailure] = field(default_factory=list)
    error_code: int | None = None  # set when an error stopped the run (outcome "failed")

    @property
    def exit_code(self) -> int:
        if self.error_code is not None:
            return self.error_code
        if self.outcome == "rolled-back":
            return Exit.ROLLED_BACK
        if self.failed:
            return Exit.PARTIAL if self.outcome == "changed" else Exit.ZONES_FAILED
        return Exit.CHANGED if self.outcome == "changed" else Exit.OK

    @property
    def done(self) -> list[ZonePlan]:
        """The plans served now (or, in a dry run, that would be)."""
        if self.outcome != "changed":
            return []
        failed = {f.zone for f in self.failed}
        return [p for p in self.plans if p.zone not in failed]

    @property
    def zone_problems(self) -> list[str]:
        """Zone files that cannot be changed as they are (open until fixed): the unchanged
        ones that fail validation, and those this run could not plan or validate."""
        own = [f"{f.zone}: {f.error}" for f in self.failed if f.stage in ("plan", "validate")]
        return self.problems + own
