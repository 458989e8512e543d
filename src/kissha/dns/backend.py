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
from pathlib import Path
from typing import Protocol

from kissha.core.report import ApplyReport
from kissha.core.zonefile import ZonePlan


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


def journal_path(state_dir: Path) -> Path:
    return state_dir / "journal.json"
