"""End-to-end scenarios on the two-node lab: what every nameserver answers the client.

Both nodes run kissha (one run each per "round", as cron would every minute) and
the client asks both nameservers over IPv4 and IPv6. Thresholds are the defaults:
3 failed rounds to demote, 5 good rounds to promote.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kissha.core.model import FAMILIES, Family
from lab.netlab import Lab

pytestmark = pytest.mark.e2e

NODES = ("fishfinger", "blowfish")
# Monday of an even week (2968 since 1970-01-05): rotation prefers fishfinger, as the
# zones start.
NOW = "2026-11-23T12:00:00Z"
NEXT_WEEK = "2026-11-30T12:00:00Z"
WEEK_AFTER = "2026-12-07T12:00:00Z"


def round_(lab: Lab, now: str = NOW) -> dict[str, int]:
    """One kissha run on each node; their exit codes."""
    codes = {}
    for node in NODES:
        r = lab.kissha(node, "failover", now=now)
        assert r.returncode in (0, 1), f"{node} exited {r.returncode}\n{r.stdout}{r.stderr}"
        codes[node] = r.returncode
    return codes


def answers(lab: Lab, server: str, family: Family, name: str = "www.example.org") -> tuple:
    return lab.dig(server, name, "A", family), lab.dig(server, name, "AAAA", family)


def at(lab: Lab, node: str) -> tuple[set[str], set[str]]:
    return {lab.address(node, "ipv4")}, {lab.address(node, "ipv6")}


def events(lab: Lab, node: str) -> list[str]:
    state = json.loads((lab.node_root(node) / "state" / "state.json").read_text())
    return [e["kind"] for e in state["events"]]


def test_1_steady_state_nothing_rewritten(lab: Lab) -> None:
    before = {n: lab.zone_path(n, "example.org").read_bytes() for n in NODES}
    for _ in range(2):
        assert round_(lab) == {"fishfinger": 0, "blowfish": 0}
    for server in NODES:
        for family in FAMILIES:
            assert answers(lab, server, family) == at(lab, "fishfinger")
            assert answers(lab, server, family, "standby.example.org") == at(lab, "blowfish")
    assert {n: lab.zone_path(n, "example.org").read_bytes() for n in NODES} == before
    assert events(lab, "fishfinger") == events(lab, "blowfish") == []


def test_2_master_web_server_stopped(lab: Lab) -> None:
    lab.stop("fishfinger", "web")
    codes = [round_(lab) for _ in range(3)]
    assert codes == [{"fishfinger": 0, "blowfish": 0}] * 2 + [{"fishfinger": 1, "blowfish": 1}]
    # the master's own nameserver follows too: it probes itself like any node
    for server in NODES:
        for family in FAMILIES:
            assert answers(lab, server, family) == at(lab, "blowfish")
    for node in NODES:
        assert events(lab, node)[-2:] == ["node-down", "failover"]


def test_3_master_cable_pulled(lab: Lab) -> None:
    lab.pull_cable("fishfinger")
    codes = [round_(lab) for _ in range(3)]
    assert [c["blowfish"] for c in codes] == [0, 0, 1]
    for family in FAMILIES:
        assert answers(lab, "blowfish", family) == at(lab, "blowfish")
        assert lab.dig("fishfinger", "www.example.org", "A", family) == {"TIMEOUT"}


def test_4_only_master_ipv6_broken(lab: Lab) -> None:
    lab.break_family("fishfinger", "ipv6")
    codes = [round_(lab) for _ in range(3)]
    assert [c["blowfish"] for c in codes] == [0, 0, 1]
    # Either family failing fails the node (as in the original): blowfish fails over.
    for family in FAMILIES:
        assert answers(lab, "blowfish", family) == at(lab, "blowfish")
    # fishfinger's nameserver is unreachable over IPv6, so IPv6 clients only ever get
    # blowfish. Over IPv4 it still names itself: it reaches its own IPv6 address over
    # loopback and sees blowfish's IPv6 fail, and with two nodes nothing can tell whose
    # IPv6 is broken (the planned witness can). IPv4 clients sent to fishfinger are
    # served, since its IPv4 works: every client still reaches a working node.
    assert lab.dig("fishfinger", "www.example.org", "A", "ipv6") == {"TIMEOUT"}
    assert answers(lab, "fishfinger", "ipv4") == at(lab, "fishfinger")


def test_5_failback_after_recovery_threshold_and_rotation(lab: Lab) -> None:
    lab.stop("fishfinger", "web")
    for _ in range(3):
        round_(lab)
    assert answers(lab, "blowfish", "ipv4") == at(lab, "blowfish")
    lab.start("fishfinger", "web")
    codes = [round_(lab) for _ in range(5)]
    assert codes == [{"fishfinger": 0, "blowfish": 0}] * 4 + [{"fishfinger": 1, "blowfish": 1}]
    for server in NODES:
        for family in FAMILIES:
            assert answers(lab, server, family) == at(lab, "fishfinger")
    # In an odd week the recovered fishfinger is the standby: rotation is respected.
    assert round_(lab, NEXT_WEEK) == {"fishfinger": 1, "blowfish": 1}
    assert answers(lab, "fishfinger", "ipv6") == at(lab, "blowfish")


def test_6_nodes_cannot_see_each_other_split_brain(lab: Lab) -> None:
    lab.cut_link("fishfinger", "blowfish")
    codes = [round_(lab) for _ in range(3)]
    assert [c["blowfish"] for c in codes] == [0, 0, 1]
    # Each nameserver answers its own node: accepted, as in the original (the
    # operating issue's `kissha status` reports it).
    for family in FAMILIES:
        assert answers(lab, "fishfinger", family) == at(lab, "fishfinger")
        assert answers(lab, "blowfish", family) == at(lab, "blowfish")


@pytest.fixture
def lab_default_timeout() -> Iterator[Lab]:
    # The lab's 1 s probe timeout is shorter than TCP's first SYN retransmission
    # (1 s): under loss it would fail attempts that the default 2 s lets finish.
    Lab.cleanup_stale()
    with Lab(health={"timeout": 2.0}) as built:
        yield built
    assert not built.leftovers(), built.leftovers()


def test_7_packet_loss_towards_master_causes_no_failover(
    lab_default_timeout: Lab,
) -> None:
    lab = lab_default_timeout
    lab.packet_loss("fishfinger", 20)
    for _ in range(8):  # bounded: 8 rounds on both nodes
        assert round_(lab) == {"fishfinger": 0, "blowfish": 0}
    lab.no_packet_loss("fishfinger")
    for server in NODES:
        for family in FAMILIES:
            assert answers(lab, server, family) == at(lab, "fishfinger")
    assert "failover" not in events(lab, "fishfinger") + events(lab, "blowfish")


def test_8_week_boundary_swaps_roles_and_back(lab: Lab) -> None:
    assert round_(lab, NOW) == {"fishfinger": 0, "blowfish": 0}
    assert round_(lab, NEXT_WEEK) == {"fishfinger": 1, "blowfish": 1}
    for server in NODES:
        for family in FAMILIES:
            assert answers(lab, server, family) == at(lab, "blowfish")
            assert answers(lab, server, family, "standby.example.org") == at(lab, "fishfinger")
    assert round_(lab, NEXT_WEEK) == {"fishfinger": 0, "blowfish": 0}
    assert round_(lab, WEEK_AFTER) == {"fishfinger": 1, "blowfish": 1}
    for server in NODES:
        assert answers(lab, server, "ipv4") == at(lab, "fishfinger")
    assert "node-down" not in events(lab, "fishfinger")  # no health failure involved


def test_9_standby_down_master_fine(lab: Lab) -> None:
    lab.stop("blowfish", "web")
    codes = [round_(lab) for _ in range(3)]
    # The master's records stay; the standby names move to the master (documented
    # choice, standby_when_down = "master": standby.example.org keeps working).
    assert codes[-1] == {"fishfinger": 1, "blowfish": 1}
    for server in NODES:
        for family in FAMILIES:
            assert answers(lab, server, family) == at(lab, "fishfinger")
            assert answers(lab, server, family, "standby.example.org") == at(lab, "fishfinger")
    assert "failover" not in events(lab, "fishfinger")
