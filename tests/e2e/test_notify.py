"""Notifications on the two-node lab: both nodes run kissha, the operator's mail server
and webhook receiver live on the client's host, as they would somewhere off the nodes.

The rule under test (README, "Notifications"): what concerns the whole site (a
failover, a failback, a node down or up) is told by the node that is master after the
run, so the operator gets one mail and one webhook per failover and per recovery, not
one per node. Split brain is told by every node that sees it.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lab.netlab import HTTPS_PORT, SINK_HTTP_PORT, Lab
from lab.netlab_text import GEMINI_PORT
from lab.sink import messages

pytestmark = pytest.mark.e2e

NODES = ("fishfinger", "blowfish")
START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # an even week: fishfinger leads


class Rounds:
    """One kissha run on each node per round, a minute of (pretend) time apart."""

    def __init__(self, lab: Lab) -> None:
        self.lab, self.minute = lab, 0

    def __call__(self, n: int = 1) -> None:
        for _ in range(n):
            now = (START + timedelta(minutes=self.minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.minute += 1
            for node in NODES:
                r = self.lab.kissha(node, "failover", now=now)
                assert r.returncode in (0, 1), f"{node}: {r.returncode}\n{r.stdout}{r.stderr}"
                assert "notify" not in r.stdout, r.stdout  # every delivery got through


@pytest.fixture
def inbox(lab: Lab) -> Path:
    """The sink on the client, both nodes notifying it; the file it appends to."""
    out = lab.start_sink()
    for node in NODES:
        lab.notify_to_sink(node)
    return out


def told(inbox: Path, kind: str) -> list[tuple[str, str]]:
    return sorted((m["via"], m["node"]) for m in messages(inbox) if m["kind"] == kind)


def test_one_mail_and_one_webhook_per_failover_and_per_recovery(lab: Lab, inbox: Path) -> None:
    rounds = Rounds(lab)
    rounds(2)
    assert messages(inbox) == []
    lab.stop("fishfinger", "web")
    rounds(5)  # demoted in the third, then two quiet rounds
    assert lab.all_point_at("blowfish")
    msgs = messages(inbox)
    assert sorted((m["via"], m["kind"], m["node"]) for m in msgs) == [
        ("mail", "failover", "blowfish"),
        ("webhook", "failover", "blowfish"),
    ]
    assert msgs[0]["title"] == msgs[1]["title"]
    assert msgs[0]["title"].startswith(
        "kissha: failover fishfinger -> blowfish (fishfinger down: https/ipv4: connection refused"
    )
    lab.start("fishfinger", "web")
    rounds(7)  # trusted again after five good rounds: fishfinger leads again
    assert lab.all_point_at("fishfinger")
    assert told(inbox, "failback") == [("mail", "fishfinger"), ("webhook", "fishfinger")]
    assert len(messages(inbox)) == 4


def test_split_brain_is_told_by_each_node_that_sees_it_and_so_is_its_end(
    lab: Lab, inbox: Path
) -> None:
    for node in NODES:
        lab.notify_to_sink(node, 'watch_nameservers = true\nsplit_brain_after = "2m"\n')
    rounds = Rounds(lab)
    rounds(1)
    # The web is cut between the nodes, DNS is not: each sees the other down, points the
    # names at itself, and can ask the other's nameserver what it answers.
    lab.cut_ports("fishfinger", "blowfish", [HTTPS_PORT, GEMINI_PORT])
    rounds(3)
    assert told(inbox, "split-brain") == []  # not yet for two minutes
    rounds(3)
    assert told(inbox, "split-brain") == [
        ("mail", "blowfish"),
        ("mail", "fishfinger"),
        ("webhook", "blowfish"),
        ("webhook", "fishfinger"),
    ]
    split = next(m for m in messages(inbox) if m["kind"] == "split-brain")
    assert "nameservers disagree: fishfinger/ipv4 -> fishfinger" in split["title"]
    rounds(2)
    assert len(told(inbox, "split-brain")) == 4
    lab.restore_ports("fishfinger", "blowfish")
    rounds(7)
    assert lab.all_point_at("fishfinger")
    assert told(inbox, "split-brain-resolved") == told(inbox, "split-brain")


def test_a_monitoring_host_tells_the_split_brain_the_nodes_cannot_see(
    lab: Lab, inbox: Path
) -> None:
    """The link between the nodes is cut: each sees the other's nameserver unreachable.
    The client reaches both: kissha status --notify there tells the split brain."""
    client = lab.address("client", "ipv4")
    monitor = lab.root / "monitor.toml"
    text = lab.config_path("fishfinger").read_text().split("\n[notify]\n")[0]
    text = text.replace(str(lab.node_root("fishfinger") / "state"), str(lab.root / "monitor"))
    monitor.write_text(
        text
        + '\n[notify]\nsplit_brain_after = "2m"\n'
        + f'[[notify.webhook]]\nurl = "http://{client}:{SINK_HTTP_PORT}/kissha"\n'
    )

    def status(minute: int) -> int:
        now = (START + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")
        argv = [sys.executable, "-m", "kissha", "-c", str(monitor), "status", "--notify"]
        r = lab.exec("client", [*argv, "--nagios", "--now", now])
        assert "notify" not in r.stderr, r.stderr
        return r.returncode

    rounds = Rounds(lab)
    rounds(1)
    # WARNING, not OK: this host has no failover state of its own (stale state).
    assert status(0) == 1
    lab.cut_link("fishfinger", "blowfish")
    rounds(3)
    assert [status(m) for m in (3, 4)] == [2, 2]  # CRITICAL, not told yet
    assert told(inbox, "split-brain") == []
    assert status(5) == 2
    ((via, sender),) = told(inbox, "split-brain")
    assert via == "webhook" and sender not in NODES  # the monitoring host
    assert status(6) == 2
    assert len(told(inbox, "split-brain")) == 1
    lab.restore_link("fishfinger", "blowfish")
    rounds(6)
    assert status(13) == 1
    assert told(inbox, "split-brain-resolved") == [("webhook", sender)]
