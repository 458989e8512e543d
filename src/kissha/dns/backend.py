"""DNS server backends: install a planned change, reload, verify, and undo on any doubt.

A backend takes the zone plans of one run and makes the local authoritative server
serve them, or leaves it serving what it served before. nsd is the first backend; file
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


@dataclass
class ApplyReport:
    """What ``apply`` did: the zones installed, how they were checked, and timings."""

    zones: list[str] = field(default_factory=list)
    checked: int = 0  # zones validated by the server's own checker
    trusted: int = 0  # zones whose skeleton was already validated (see FileZoneServer)
    verified: int = 0  # answers confirmed
    timings: dict[str, float] = field(default_factory=dict)


class DnsServer(Protocol):
    """What the failover flow needs from a DNS server backend."""

    def recover(self) -> list[str]:
        """Undo what an interrupted run left behind; return what was done, in words."""
        ...

    def precheck(self, plans: Sequence[ZonePlan]) -> list[str]:
        """Validate unchanged zones' files ahead of need; return problems, in words."""
        ...

    def apply(self, plans: Sequence[ZonePlan]) -> ApplyReport:
        """Serve the plans' new zones, verified, or raise ApplyFailed with the old ones back."""
        ...


def server_for(config: Config) -> DnsServer:
    """The backend named by ``dns.server``."""
    from kissha.dns.nsd import NsdServer

    backends = {"nsd": NsdServer}
    return backends[config.dns.server](config.dns, config.state_dir)


def journal_path(state_dir: Path) -> Path:
    return state_dir / "journal.json"
