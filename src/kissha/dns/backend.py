"""DNS server backends: install a planned change, reload, verify, and undo on any doubt.

A backend takes the zone plans of one run and makes the local authoritative server
serve them, or leaves it serving what it served before. Zones are independent: one
that fails validation or verification is left (or put back) as it was, and the others
still go through. nsd is the first backend; file
based servers (Knot, BIND) share ``FileZoneServer``; an RFC 2136 backend would implement
the same ``apply`` with dynamic updates instead of files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kissha.config import Config
from kissha.core.zonefile import ZonePlan


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


class DnsServer(Protocol):
    """What the failover flow needs from a DNS server backend."""

    def recover(self) -> list[str]:
        """Undo what an interrupted run left behind; return what was done, in words.
        Raise EnvError (JournalError) when that cannot be done safely."""
        ...

    def precheck(self, plans: Sequence[ZonePlan]) -> list[str]:
        """Validate unchanged zones' files ahead of need; return problems, in words."""
        ...

    def converge(
        self, plans: Sequence[ZonePlan], broken: Sequence[str] = ()
    ) -> tuple[list[str], list[str]]:
        """Make the server serve what the unchanged zones' files say (after a crash or a
        failed reload it may serve another serial): (what was done, warnings).
        ``broken``: zones whose files cannot be planned, never to be reloaded."""
        ...

    def apply(self, plans: Sequence[ZonePlan], broken: Sequence[str] = ()) -> ApplyReport:
        """Serve the plans' new zones, each verified or put back; raise EnvError, with
        nothing changed, when a file or program cannot be used. ``broken`` as above."""
        ...


def server_for(config: Config) -> DnsServer:
    """The backend named by ``dns.server``."""
    from kissha.dns.nsd import NsdServer

    backends = {"nsd": NsdServer}
    return backends[config.dns.server](config.dns, config.state_dir)


def journal_path(state_dir: Path) -> Path:
    return state_dir / "journal.json"
