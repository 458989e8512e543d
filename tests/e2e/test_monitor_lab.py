"""kissha monitor on the two-node lab, with Debian's monitoring-plugins: both nodes run
the default checks (generated from the config: zero check lines), the operator's mail
server and webhook receiver are on the client.

The rule under test (README, "Monitoring"): a change both nodes see is told once, by
the first node in the config's order that the observer can reach; a node that told a
problem tells its end; a node that cannot reach the others tells what it sees itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lab.netlab import Lab
from lab.sink import messages

pytestmark = pytest.mark.e2e

NODES = ("fishfinger", "blowfish")
START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
MONITOR = """
[monitor]
timezone = "UTC"
timeout = 3
retries = 0
"""


def sites(lab: Lab) -> str:
    return "".join(f'\n[[sites]]\nname = "{z}"\n' for z in lab.zones)


@pytest.fixture
def inbox(lab: Lab) -> Path:
    out = lab.start_sink()
    for node in NODES:
        lab.notify_to_sink(node)
        path = lab.config_path(node)
        path.write_text(path.read_text() + sites(lab) + MONITOR)
    return out


def at(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def monitor(lab: Lab, node: str, minutes: float) -> dict[str, Any]:
    r = lab.kissha(node, "monitor", "--json", now=at(minutes), timeout=120)
    assert r.returncode == 0, f"{node}: {r.returncode}\n{r.stdout}{r.stderr}"
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def states(data: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["state"] for c in data["checks"]}


def test_default_checks_pass_and_a_killed_web_server_is_told_once_and_its_return_once(
    lab: Lab, inbox: Path
) -> None:
    for node in NODES:
        data = monitor(lab, node, 0)
        bad = {k: v for k, v in states(data).items() if v != "OK"}
        assert not bad, json.dumps([c for c in data["checks"] if c["state"] != "OK"], indent=1)
        # two nodes, both families, six sites with www. and standby.: the original's set
        assert len(data["checks"]) == 91
        assert data["told"] == [] and data["warnings"] == []
        ping = next(c for c in data["checks"] if c["id"] == "ping/blowfish/ipv6")
        assert ping["output"].startswith("PING OK"), ping  # check_ping, not the built-in
    assert messages(inbox) == []

    lab.stop("fishfinger", "web")
    for node in NODES:
        data = monitor(lab, node, 5)
    msgs = messages(inbox)
    assert sorted((m["via"], m["kind"], m["node"]) for m in msgs) == [
        ("mail", "monitor", "fishfinger"),
        ("webhook", "monitor", "fishfinger"),
    ], msgs
    # The https probes, the certificates fishfinger serves and the master names over
    # HTTPS: one message for all of them (2 + 18 + 24 = 44 checks)
    assert msgs[0]["title"].startswith("kissha monitor (fishfinger): CRITICAL cert/"), msgs
    assert "(+43 more) [C:44 W:0 U:0 stale:0 OK:47]" in msgs[0]["title"]
    assert states(data)["https/fishfinger/ipv4"] == "CRITICAL"  # blowfish saw it too
    # Shown where people look: kissha status, the outside monitor's line, the metrics.
    r = lab.kissha("blowfish", "status", "--json", now=at(5))
    shown = {c["id"]: c for c in json.loads(r.stdout)["checks"]}
    assert shown["https/fishfinger/ipv4"]["state"] == "CRITICAL"
    assert shown["https/fishfinger/ipv4"]["output"].startswith(
        "HTTPS CRITICAL - connection refused"
    )
    r = lab.kissha("blowfish", "monitor", "--nagios", now=at(6))
    assert r.returncode == 2 and r.stdout.startswith("KISSHA MONITOR CRITICAL - CRITICAL "), (
        r.stdout
    )
    assert " critical=44;;;0 " in r.stdout

    lab.start("fishfinger", "web")
    for node in NODES:
        monitor(lab, node, 10)
    msgs = messages(inbox)[2:]
    assert sorted((m["via"], m["node"]) for m in msgs) == [
        ("mail", "fishfinger"),
        ("webhook", "fishfinger"),
    ], msgs
    assert msgs[0]["title"].startswith("kissha monitor (fishfinger): OK ")
    for node in NODES:  # a quiet run after: nothing more
        monitor(lab, node, 15)
    assert len(messages(inbox)) == 4


def test_a_pulled_cable_gives_one_message_not_one_per_check(lab: Lab, inbox: Path) -> None:
    for node in NODES:
        monitor(lab, node, 0)
    lab.pull_cable("fishfinger")
    seen = {node: monitor(lab, node, 5) for node in NODES}
    msgs = messages(inbox)
    assert sorted((m["via"], m["node"]) for m in msgs) == [
        ("mail", "blowfish"),
        ("webhook", "blowfish"),
    ], msgs
    title = msgs[0]["title"]
    assert title.startswith("kissha monitor (blowfish): CRITICAL ping/fishfinger/ipv4 (+1 more)")
    # Everything about fishfinger waits on its pings: reported as such, not alerted.
    from_b = states(seen["blowfish"])
    assert from_b["https/fishfinger/ipv4"] == from_b["cert/example.org/fishfinger"] == "DEPENDENT"
    assert from_b["http/www.example.org/ipv6"] == "DEPENDENT"  # the master names
    assert from_b["http/standby.example.org/ipv4"] == "OK"  # the standby names: blowfish
    # fishfinger, cut off, saw blowfish gone and could not tell anyone.
    assert [t["error"] is not None for t in seen["fishfinger"]["told"]] == [True, True]

    lab.plug_cable("fishfinger")
    for node in NODES:
        monitor(lab, node, 10)
    msgs = messages(inbox)[2:]
    # blowfish told the problem: it tells its end; fishfinger's undelivered news of
    # blowfish's "outage" is gone with it, never told late.
    assert sorted((m["via"], m["node"]) for m in msgs) == [
        ("mail", "blowfish"),
        ("webhook", "blowfish"),
    ], msgs
    assert msgs[0]["title"].startswith("kissha monitor (blowfish): OK ping/fishfinger/ipv4")
    for node in NODES:
        monitor(lab, node, 15)
    assert len(messages(inbox)) == 4
