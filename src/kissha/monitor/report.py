"""A monitor run's report, as data: what ran, the states it left, who was told.

The run (monitor/run.py) builds it; the outputs (render, metrics, status, page)
read it from here, so none of them imports the run."""

from __future__ import annotations

from dataclasses import dataclass, field

from kissha.monitor import logic
from kissha.monitor.model import CheckSpec, Result

SCHEMA = "kissha.monitor/1"  # of --json and the metrics' textfile


@dataclass
class Told:
    """What one channel was told (or would be, in a dry run), or why not."""

    channel: str
    subject: str
    kind: str
    error: str | None = None  # None: delivered (or dry run)


@dataclass
class MonitorReport:
    now: float
    node: str
    specs: list[CheckSpec]
    book: logic.Book
    states: dict[str, str]
    results: dict[str, Result] = field(default_factory=dict)
    told: list[Told] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duration: float = 0.0
    dry_run: bool = False
    ran: bool = True  # False: a view of the stored records (--nagios, status)

    @property
    def level(self) -> int:
        """Nagios levels: CRITICAL if any check is, WARNING for warnings, unknowns,
        stale or flapping checks, else OK."""
        values = set(self.states.values())
        if "CRITICAL" in values:
            return 2
        if values & {"WARNING", "UNKNOWN", "STALE", "FLAPPING"}:
            return 1
        return 0
