"""An OSError the zone transaction lets out (say, a rollback's own write failing) is an
environment error with the path and the cause, exit 8, never 'internal error' (70); the
run's report still goes with it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from kissha.config import parse
from kissha.core.model import ProbeResult
from kissha.core.report import RunReport
from kissha.core.zonefile import ZonePlan
from kissha.engine import failover
from kissha.errors import RunFailed

ZONE = (
    "$ORIGIN example.org.\n@ 300 IN SOA ns1 hostmaster 1 3600 900 604800 300\n"
    "@ 300 IN NS ns1\nns1 300 IN A 203.0.113.10\n"
    "www 300 IN A 203.0.113.20 ; Enable failover\n"
)


class _BrokenDisk:
    """A server whose install fails with an OSError that no layer turned into words."""

    def recover(self) -> list[str]:
        return []

    def precheck(self, plans: object) -> list[str]:
        return []

    def converge(self, plans: object, broken: object = ()) -> tuple[list[str], list[str]]:
        return [], []

    def apply(self, plans: Sequence[ZonePlan], broken: Sequence[str] = ()) -> object:
        raise PermissionError(13, "Permission denied", str(plans[0].path))


def test_an_oserror_in_the_transaction_is_exit_8_with_the_path(tmp_path: Path) -> None:
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "example.org.zone").write_text(ZONE)
    cfg = parse(
        {
            "state_dir": str(tmp_path / "state"),
            "rotation": "off",
            "nodes": {
                "fishfinger": {"fqdn": "fishfinger.example.org", "ipv4": "203.0.113.10"},
                "blowfish": {"fqdn": "blowfish.example.org", "ipv4": "203.0.113.20"},
            },
            "dns": {"zones_dir": str(zones)},
        }
    )

    def prober(*_: object) -> list[ProbeResult]:
        return [
            ProbeResult(n, "https", "ipv4", a, True, "HTTP 200", True)
            for n, a in (("fishfinger", "203.0.113.10"), ("blowfish", "203.0.113.20"))
        ]

    with pytest.raises(RunFailed) as info:
        failover.run(cfg, 1_800_000_000.0, prober=prober, server=_BrokenDisk())  # type: ignore[arg-type]
    assert info.value.exit_code == 8
    assert str(info.value) == (
        f"{zones / 'example.org.zone'}: cannot complete the run: Permission denied"
    )
    report = info.value.report
    assert isinstance(report, RunReport) and report.decision.roles is not None
