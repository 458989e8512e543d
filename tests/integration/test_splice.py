"""Switches spliced at the layouts of state_dir/layouts.json (engine/scancache.py): each
file is byte for byte what a full scan of the text before would write, and a zone edited
by hand between two switches is scanned again, its edit kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from kissha.core.model import Node
from kissha.core.zonefile import plan_zone
from lab.site import LoopbackSite

pytestmark = pytest.mark.integration

NOW = "2026-11-23T12:00:00Z"  # an even week: fishfinger leads
A_FISH, A_BLOW = "127.0.0.11", "127.0.0.12"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[LoopbackSite]:
    health = {"failures_before_demotion": 1, "successes_before_promotion": 1}
    with LoopbackSite(tmp_path, health=health) as s:
        yield s


def switch(site: LoopbackSite, to_standby: bool) -> dict[str, Node]:
    """Switch; the nodes the marked records now point at, by role."""
    if to_standby:
        site.stop_web("fishfinger")
    else:
        site.start_web("fishfinger")
    r = site.kissha("failover", "--json", now=NOW)
    assert r.returncode == 1, r.stdout + r.stderr
    decision = json.loads(r.stdout)["decision"]
    nodes = {n.name: Node(n.name, n.fqdn, n.ipv4, n.ipv6) for n in site.nodes}
    return {role: nodes[decision[role]] for role in ("master", "standby")}


def test_spliced_switches_write_what_a_scan_writes(site: LoopbackSite) -> None:
    assert site.kissha("failover", now=NOW).returncode == 0  # scans, records the layouts
    layouts = site.root / "state" / "layouts.json"
    assert set(json.loads(layouts.read_text())["zones"]) == {
        str(site.zone_path(z)) for z in site.zones
    }
    edited = site.zones[1]
    for n, to_standby in enumerate((True, False, True)):
        if n == 1:  # a hand edit that moves every offset after it
            path = site.zone_path(edited)
            path.write_text("; edited by hand, longer than before\n" + path.read_text())
        before = {z: site.zone_path(z).read_text() for z in site.zones}
        targets = switch(site, to_standby)
        when = datetime.fromisoformat(NOW.replace("Z", "+00:00")).timestamp()
        for z in site.zones:
            path = site.zone_path(z)
            scanned = plan_zone(z, path, before[z], targets, "epoch", when)
            assert scanned.new_text is not None
            assert path.read_text() == scanned.new_text, (n, z)
        assert site.zone_path(edited).read_text().startswith("; edited") == (n >= 1)
        want_a = A_BLOW if to_standby else A_FISH
        assert site.answers(f"www.{site.zones[0]}", "A") == {want_a}
        assert site.answers(f"www.{edited}", "A", "::1") == {want_a}
