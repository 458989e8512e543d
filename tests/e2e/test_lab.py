"""The network lab itself: it comes up, every fault does what it says, and its undo works."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

from lab import faults
from lab.faults import FAMILIES, Family
from lab.netlab import SERIAL, Lab
from lab.netlab_text import parse_dig

pytestmark = pytest.mark.integration

NODES = ("fishfinger", "blowfish")
SOA = f"ns1.example.org. hostmaster.example.org. {SERIAL} 3600 1800 604800 3600"
T = TypeVar("T")


def eventually(probe: Callable[[], T], want: T, seconds: float = 5) -> T:
    """probe() until it returns want or seconds pass (a link coming back needs a moment)."""
    deadline = time.monotonic() + seconds
    got = probe()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.1)
        got = probe()
    return got


def soa(lab: Lab, node: str, family: Family = "ipv4", tries: int = 2) -> set[str]:
    return lab.dig(node, "example.org", "SOA", family, tries=tries)


def welcome(node: str) -> str:
    return f"Welcome to {node}.example.org!\n"


def test_lab_serves_dns_https_and_gemini_on_both_nodes_and_families(lab: Lab) -> None:
    for node in NODES:
        for family in FAMILIES:
            assert soa(lab, node, family) == {SOA}, (node, family)
            assert lab.dig(node, "www.example.org", "A", family) == {"198.51.100.11"}
            assert lab.dig(node, "standby.example.org", "AAAA", family) == {"2001:db8:1::12"}
            assert lab.fetch_https("client", node, family) == welcome(node), (node, family)
            gemini = lab.fetch_gemini("client", node, family)
            assert gemini.startswith("20 text/gemini"), gemini
            assert welcome(node) in gemini
    # Each node has its own nsd, zones and config.
    assert lab.zone_path("fishfinger", "example.org") != lab.zone_path("blowfish", "example.org")
    assert lab.config_path("fishfinger").read_text() != lab.config_path("blowfish").read_text()


# Mondays of an even and an odd week since 1970-01-05 (2968 and 2969): weekly rotation
# prefers fishfinger, then blowfish. The lab's zones start with fishfinger as master.
WEEKS = [("2026-11-23T12:00:00Z", "fishfinger", 0), ("2026-11-30T12:00:00Z", "blowfish", 1)]


@pytest.mark.parametrize(("now", "master", "code"), WEEKS, ids=["even-week", "odd-week"])
def test_kissha_runs_inside_a_node_and_sees_both_nodes(
    lab: Lab, now: str, master: str, code: int
) -> None:
    """Never at the real time: rotation would make the expected master depend on the week."""
    r = lab.kissha("fishfinger", "failover", "--dry-run", "--json", now=now)
    assert r.returncode == code, r.stdout + r.stderr
    report = json.loads(r.stdout)
    seen = {(p["node"], p["family"]) for p in report["probes"] if p["ok"]}
    assert seen == {(n, f) for n in NODES for f in FAMILIES}, report["probes"]
    assert report["decision"]["master"] == master


def test_pulled_cable_times_out_until_plugged_back(lab: Lab) -> None:
    lab.pull_cable("fishfinger")
    assert soa(lab, "fishfinger", "ipv4", tries=1) == {"TIMEOUT"}
    assert soa(lab, "fishfinger", "ipv6", tries=1) == {"TIMEOUT"}
    assert soa(lab, "blowfish") == {SOA}
    lab.plug_cable("fishfinger")
    assert eventually(lambda: soa(lab, "fishfinger", "ipv4"), {SOA}) == {SOA}
    assert eventually(lambda: soa(lab, "fishfinger", "ipv6"), {SOA}) == {SOA}


def test_stopped_services_refuse_and_come_back(lab: Lab) -> None:
    lab.stop("fishfinger", "web")
    assert "refused" in lab.connect("client", "fishfinger", 443)
    assert lab.fetch_https("client", "fishfinger").startswith("error:")
    assert lab.fetch_https("client", "blowfish") == welcome("blowfish")
    lab.start("fishfinger", "web")
    assert lab.fetch_https("client", "fishfinger", "ipv6") == welcome("fishfinger")

    lab.stop("blowfish", "gemini")
    assert "refused" in lab.fetch_gemini("client", "blowfish")
    lab.start("blowfish", "gemini")
    assert welcome("blowfish") in lab.fetch_gemini("client", "blowfish")

    lab.stop("blowfish", "nsd")
    assert not lab.running("blowfish", "nsd")
    assert soa(lab, "blowfish", tries=1) == {"CONNREFUSED"}
    lab.start("blowfish", "nsd")
    assert soa(lab, "blowfish", "ipv6") == {SOA}


@pytest.mark.parametrize(("broken", "working"), [("ipv6", "ipv4"), ("ipv4", "ipv6")])
def test_broken_family_drops_only_that_family(lab: Lab, broken: Family, working: Family) -> None:
    lab.break_family("fishfinger", broken)
    assert soa(lab, "fishfinger", broken, tries=1) == {"TIMEOUT"}
    assert soa(lab, "fishfinger", working) == {SOA}
    # The node's own loopback still works: kissha verifies on 127.0.0.1 and ::1.
    for server in ("127.0.0.1", "::1"):
        r = lab.exec("fishfinger", ["dig", "+short", "+time=1", f"@{server}", "example.org", "SOA"])
        assert r.stdout.strip() == SOA, (server, r.stdout, r.stderr)
    lab.repair_family("fishfinger", broken)
    assert soa(lab, "fishfinger", broken) == {SOA}


def test_packet_loss_drops_and_is_removed(lab: Lab) -> None:
    lab.packet_loss("blowfish", 100)
    assert soa(lab, "blowfish", "ipv4", tries=1) == {"TIMEOUT"}
    assert soa(lab, "blowfish", "ipv6", tries=1) == {"TIMEOUT"}
    assert soa(lab, "fishfinger") == {SOA}
    lab.packet_loss("blowfish", 20)  # replaces the 100 % table
    lab.no_packet_loss("blowfish")
    assert soa(lab, "blowfish") == {SOA}
    lab.no_packet_loss("blowfish")  # undoing twice is harmless


def test_cut_link_separates_the_nodes_but_not_the_client(lab: Lab) -> None:
    assert lab.connect("fishfinger", "blowfish", 443) == "ok"
    lab.cut_link("fishfinger", "blowfish")
    for family in FAMILIES:
        assert lab.connect("fishfinger", "blowfish", 443, family, timeout=0.5) != "ok"
        assert lab.connect("blowfish", "fishfinger", 443, family, timeout=0.5) != "ok"
        for node in NODES:
            assert lab.connect("client", node, 443, family) == "ok"
            assert soa(lab, node, family) == {SOA}
    lab.restore_link("fishfinger", "blowfish")
    for family in FAMILIES:
        assert lab.connect("fishfinger", "blowfish", 443, family) == "ok"
        assert lab.connect("blowfish", "fishfinger", 443, family) == "ok"


def test_teardown_after_an_error_leaves_nothing(isolation: None) -> None:
    with pytest.raises(RuntimeError, match="boom"), Lab() as lab:
        lab.stop("blowfish", "web")
        raise RuntimeError("boom")
    assert not lab.teardown_problems
    assert lab.namespaces and lab.pids  # it did build something
    assert not lab.leftovers(), lab.leftovers()


def test_a_daemon_runs_in_its_node_and_teardown_stops_it(isolation: None) -> None:
    with Lab(rotation="off") as lab:
        daemon = lab.start_daemon("fishfinger", "--interval", "0.5")
        assert lab.daemon("fishfinger") is daemon
        state = lab.node_root("fishfinger") / "state" / "state.json"
        assert eventually(state.exists, True, seconds=20), lab.daemon_log("fishfinger")
        # Its probes ran from inside the node: both nodes are up over both families.
        probes = json.loads(state.read_text())["last_run"]["probes"]
        assert probes and all(p["ok"] for p in probes), probes
        assert f"pid {daemon.pid}" in lab.daemon_log("fishfinger")
        assert daemon.pid in lab.pids
    # Left running: teardown sent SIGTERM (SIGKILL had it not stopped) and reaped it.
    assert daemon.returncode is not None
    assert not lab.teardown_problems
    assert not lab.leftovers(), lab.leftovers()


def test_cleanup_stale_removes_namespaces_of_dead_labs(isolation: None) -> None:
    dead = subprocess.Popen(["true"])  # a PID that no longer runs
    dead.wait()
    stale = f"k{dead.pid}x1-sw"
    subprocess.run(["ip", "netns", "add", stale], check=True, timeout=10)
    try:
        assert stale in Lab.cleanup_stale()
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
        assert stale not in listed.stdout.split()
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True, timeout=10)


# -- the pure parts, no lab needed ----------------------------------------------------------

DIG_OK = """\
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 4711
;; flags: qr aa rd; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1

www.example.org.\t300\tIN\tA\t198.51.100.11
www.example.org.\t300\tIN\tA\t198.51.100.12
"""


@pytest.mark.parametrize(
    ("rc", "output", "want"),
    [
        (0, DIG_OK, {"198.51.100.11", "198.51.100.12"}),
        (0, DIG_OK.replace("NOERROR", "SERVFAIL"), {"SERVFAIL"}),
        (9, ";; communications error to 198.51.100.11#53: timed out\n", {"TIMEOUT"}),
        (9, ";; communications error to ::1#53: connection refused\n", {"CONNREFUSED"}),
        (
            10,
            "dig: couldn't get address for 'x': not found\n",
            {"ERROR dig: couldn't get address for 'x': not found"},
        ),
    ],
)
def test_parse_dig(rc: int, output: str, want: set[str]) -> None:
    assert parse_dig(rc, output, "A") == want


def test_fault_scripts_replace_their_table_and_spare_loopback() -> None:
    script = faults.packet_loss(30)
    assert script.startswith("add table inet kissha_loss\ndelete table inet kissha_loss\n")
    assert 'iifname "lo" accept' in script
    assert "numgen random mod 100 < 30 drop" in script
    assert "numgen" not in faults.packet_loss(100)  # nft refuses "< 100" after "mod 100"
    assert "drop" not in faults.packet_loss(0)
    assert "table ip6 kissha_break" in faults.break_family("ipv6")
    cut = faults.cut_link("blowfish", ["198.51.100.12", "2001:db8:1::12"])
    assert "ip saddr 198.51.100.12 drop" in cut
    assert "ip6 daddr 2001:db8:1::12 drop" in cut
    with pytest.raises(ValueError):
        faults.packet_loss(101)
