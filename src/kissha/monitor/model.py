"""Frozen value types of the monitor: a check, what one attempt found, a run's result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kissha.core.model import Family

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
# What the operator is told about a check besides its plugin state: it has not run for
# too long, or it changes state too often to tell each change.
STALE, FLAPPING = "STALE", "FLAPPING"
# Told states, worst first (for the order of a message's lines).
TOLD_ORDER = ("CRITICAL", "WARNING", "UNKNOWN", STALE, FLAPPING, "OK")

Scope = Literal["cluster", "local"]
CHECK_KINDS = (
    "plugin",  # any Nagios plugin: an argv list
    "ping",  # check_ping when installed, else a built-in reachability test
    "probe",  # one of kissha's [health.probes] against one node and family
    "cert",  # a TLS handshake to a node with a site name as SNI: days to expiry
    "http",  # a site name over HTTPS at the node it points at
    "nameserver",  # what one nameserver answers, judged as kissha status does
    "tcp",  # a TCP connect
    "disk",  # local: check_disk when installed, else statvfs
    "load",  # local: check_load when installed, else os.getloadavg
    "swap",  # local: check_swap when installed, else /proc/meminfo
)


@dataclass(frozen=True)
class Perf:
    """One perfdata item: ``label=value[uom];[warn];[crit];[min];[max]``."""

    label: str
    value: float
    uom: str = ""
    warn: str = ""
    crit: str = ""
    min: float | None = None
    max: float | None = None

    def text(self) -> str:
        label = f"'{self.label}'" if any(c in self.label for c in " '=") else self.label
        bounds = ["" if b is None else f"{b:g}" for b in (self.min, self.max)]
        tail = ";".join([self.warn, self.crit, *bounds]).rstrip(";")
        return f"{label}={self.value:g}{self.uom}" + (f";{tail}" if tail else "")


@dataclass(frozen=True)
class Outcome:
    """What one attempt of a check found: a Nagios state, one line, perfdata."""

    state: int
    text: str
    perf: tuple[Perf, ...] = ()
    long: str = ""  # plugin output after the first line


@dataclass(frozen=True)
class CheckSpec:
    """One check as this node runs it (generated defaults and [[monitor.checks]] merged).

    ``node`` is the node the check is about (None: this host itself); ``scope`` says who
    tells its changes: "local" checks by the node that runs them, "cluster" checks by
    the node the teller rule picks (see kissha.monitor.logic.responsible).
    """

    id: str
    kind: str
    argv: tuple[str, ...] = ()
    node: str | None = None
    family: Family | None = None
    name: str | None = None  # a site name (cert, http) or the SNI/host
    address: str | None = None  # where to connect (node address, resolved per run)
    port: int = 0
    path: str = "/"
    probe: str | None = None
    depends: tuple[str, ...] = ()
    retries: int = 2
    retry_interval: float = 3.0
    interval: float = 0.0  # 0: every run
    spread: float = 0.0
    timeout: float = 10.0
    quiet: tuple[tuple[int, int], ...] = ()  # (start, end) minutes of the day
    scope: Scope = "cluster"
    warn_days: int = 20
    crit_days: int = 7
    about: str = ""  # what the check is, for --list

    @property
    def label(self) -> str:
        return self.id


@dataclass(frozen=True)
class Result:
    """A check in one run: its final outcome after retries, or why it did not run."""

    id: str
    outcome: Outcome | None  # None: not run (``why`` says why)
    duration: float = 0.0
    attempts: int = 0
    dependent_on: str | None = None  # a dependency was not OK: not run, not alerted
    why: str = ""  # "not due", "dependency", "deadline"
