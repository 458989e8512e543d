"""One broken zone file never holds back the failover of the others (the lab).

The master's web server goes down while a stray ``notes.zone`` (an unbalanced '(',
no marked records) sits in both nodes' zones directories: every other zone fails over
on both nodes, the broken file stays byte for byte as it was, and every run names it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kissha.core.model import FAMILIES
from lab.netlab import Lab

pytestmark = pytest.mark.e2e

NODES = ("fishfinger", "blowfish")
NOW = "2026-11-23T12:00:00Z"  # an even week: fishfinger preferred, as the zones start
NOTES = "; notes for the next migration\n$ORIGIN notes.\n@ IN SOA ns1 host (\n 1 2 3 4 5\n"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_broken_zone_file_does_not_hold_back_the_others(lab: Lab) -> None:
    notes = {n: lab.zone_path(n, "example.org").with_name("notes.zone") for n in NODES}
    for path in notes.values():
        path.write_text(NOTES)
    before = {n: digest(p) for n, p in notes.items()}
    lab.stop("fishfinger", "web")
    codes = []
    for _ in range(3):
        runs = {n: lab.kissha(n, "failover", now=NOW) for n in NODES}
        codes.append({n: r.returncode for n, r in runs.items()})
        for n, r in runs.items():
            # every run tells the probes, the health and the decision, and names the file
            probes = [line.split() for line in r.stdout.splitlines() if "https" in line]
            assert ["fishfinger", "https", "ipv4", "FAILED"] in [x[:4] for x in probes], r.stdout
            assert "health: fishfinger " in r.stdout and "decision: master " in r.stdout
            assert "notes. [plan]: " in r.stdout and str(notes[n]) in r.stdout
    # Before the threshold only notes.zone cannot change (5); then the rest moves (7).
    assert codes == [{"fishfinger": 5, "blowfish": 5}] * 2 + [{"fishfinger": 7, "blowfish": 7}]
    for server in NODES:
        for family in FAMILIES:
            for zone in lab.zones:
                assert lab.dig(server, f"www.{zone}", "A", family) == {
                    lab.address("blowfish", "ipv4")
                }, (server, family, zone)
                assert lab.dig(server, f"www.{zone}", "AAAA", family) == {
                    lab.address("blowfish", "ipv6")
                }
    assert {n: digest(p) for n, p in notes.items()} == before
    for n in NODES:
        r = lab.kissha(n, "failover", now=NOW)
        assert r.returncode == 5, r.stdout + r.stderr
        assert "could not be changed: notes." in r.stdout
