"""The zones are known before any probe leaves the machine: a missing zones directory
or no matching file is a config error (exit 2), and no probe is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from kissha.config import parse
from kissha.core.model import ProbeResult
from kissha.engine import failover
from kissha.errors import ConfigError


def config(tmp_path: Path, zones_dir: Path) -> object:
    return parse(
        {
            "state_dir": str(tmp_path / "state"),
            "nodes": {
                "fishfinger": {"fqdn": "fishfinger.example.org", "ipv4": "203.0.113.10"},
                "blowfish": {"fqdn": "blowfish.example.org", "ipv4": "203.0.113.20"},
            },
            "dns": {"zones_dir": str(zones_dir)},
        }
    )


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: None, "the zones directory (dns.zones_dir) does not exist"),
        (lambda d: d.mkdir(), "no zone file matches '*.zone' (dns.zones)"),
        (lambda d: d.write_text(""), "the zones directory (dns.zones_dir) is not a directory"),
    ],
    ids=["missing", "empty", "a-file"],
)
@pytest.mark.parametrize("dry_run", [True, False])
def test_no_probe_before_the_zones_are_known(
    tmp_path: Path, make: object, words: str, dry_run: bool
) -> None:
    zones = tmp_path / "zones"
    make(zones)  # type: ignore[operator]
    probed: list[object] = []

    def prober(*args: object) -> list[ProbeResult]:
        probed.append(args)
        return []

    with pytest.raises(ConfigError) as info:
        failover.run(
            config(tmp_path, zones),  # type: ignore[arg-type]
            1_800_000_000.0,
            dry_run=dry_run,
            prober=prober,
        )
    assert info.value.exit_code == 2
    assert words in str(info.value)
    assert probed == []
