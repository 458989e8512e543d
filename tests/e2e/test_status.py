"""kissha status on the two-node lab: agreement, stale state, and split brain seen from
the client (the only place that reaches both nameservers when the nodes cannot)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lab.netlab import Lab

pytestmark = pytest.mark.e2e

NODES = ("fishfinger", "blowfish")
NOW = "2026-11-23T12:00:00Z"  # an even week: fishfinger leads, as the zones start
HOUR_LATER = "2026-11-23T13:00:00Z"


def round_(lab: Lab) -> None:
    """One kissha run on each node, as cron does every minute."""
    for node in NODES:
        r = lab.kissha(node, "failover", now=NOW)
        assert r.returncode in (0, 1), f"{node} exited {r.returncode}\n{r.stdout}{r.stderr}"


def status_from_client(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """kissha status with fishfinger's config, run in the client's namespace."""
    config = str(lab.config_path("fishfinger"))
    return lab.exec("client", [sys.executable, "-m", "kissha", "-c", config, "status", *args])


def test_steady_state_is_ok_and_old_state_is_stale(lab: Lab) -> None:
    round_(lab)
    r = lab.kissha("fishfinger", "status", "--json", now=NOW)
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(r.stdout)
    assert data["schema"] == "kissha.status/1"
    assert data["status"] == "OK", data["problems"]
    assert [(n["node"], n["family"]) for n in data["nameservers"]] == [
        (n, f) for n in NODES for f in ("ipv4", "ipv6")
    ]
    assert all(n["master"] == ["fishfinger"] for n in data["nameservers"])
    assert all(n["standby"] == ["blowfish"] for n in data["nameservers"])
    assert data["state"]["roles"] == {"master": "fishfinger", "standby": "blowfish"}

    r = status_from_client(lab, "--nagios", "--now", NOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("KISSHA OK - all 4 nameservers point at fishfinger | ns_agree=1")
    assert r.stdout.count("\n") == 1

    r = lab.kissha("blowfish", "status", "--nagios", now=HOUR_LATER)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.startswith("KISSHA WARNING - all 4 nameservers point at fishfinger; ")
    assert "stale state: last run 60m ago (limit 10m)" in r.stdout
    r = lab.kissha("blowfish", "status", now=HOUR_LATER)  # the same for people: exit 1
    assert r.returncode == 1
    assert "WARNING: all 4 nameservers point at fishfinger" in r.stdout


def test_split_brain_is_critical_from_the_client(lab: Lab) -> None:
    lab.cut_link("fishfinger", "blowfish")
    for _ in range(3):
        round_(lab)
    r = status_from_client(lab, "--nagios", "--now", NOW)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stdout.count("\n") == 1
    assert r.stdout.startswith(
        "KISSHA CRITICAL - SPLIT BRAIN: fishfinger's nameserver points at fishfinger, "
        "blowfish's nameserver points at blowfish"
    )
    assert "ns_agree=0" in r.stdout
    r = status_from_client(lab, "--json", "--now", NOW)
    assert r.returncode == 6
    masters = {n["node"]: n["master"] for n in json.loads(r.stdout)["nameservers"]}
    assert masters == {"fishfinger": ["fishfinger"], "blowfish": ["blowfish"]}
    # From inside a node the other nameserver is out of reach: a warning, not split brain.
    r = lab.kissha("fishfinger", "status", "--nagios", now=NOW)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "blowfish/ipv4 nameserver unreachable" in r.stdout
