"""The demo: two nodes and a client in network namespaces; kill the master, watch kissha.

Run through ``scripts/demo`` (it sets up and enters a private network namespace).
Both nodes run kissha once per "round" as cron would once a minute; the demo runs a
round every second to show the same steps quickly.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from kissha.core.model import FAMILIES
from lab.netlab import Lab
from lab.sink import messages

NODES = ("fishfinger", "blowfish")
NAME = "www.example.org"


def say(text: str = "") -> None:
    print(text, flush=True)


def round_(lab: Lab) -> dict[str, dict[str, object]]:
    """kissha failover on each node; each node's JSON report."""
    out = {}
    for node in NODES:
        r = lab.kissha(node, "failover", "--json")
        if r.returncode not in (0, 1):
            say(r.stdout + r.stderr)
            raise SystemExit(f"demo: kissha on {node} exited {r.returncode}")
        out[node] = json.loads(r.stdout)
    return out


def who(lab: Lab, addresses: set[str]) -> str:
    for n in NODES:
        if addresses == {lab.address(n, "ipv4")} or addresses == {lab.address(n, "ipv6")}:
            return n
    return ", ".join(sorted(addresses)) or "nothing"


def show_answers(lab: Lab) -> None:
    for server in NODES:
        for family in FAMILIES:
            a = lab.dig(server, NAME, "A", family)
            aaaa = lab.dig(server, NAME, "AAAA", family)
            say(
                f"    {server}'s nameserver over {family}: {NAME} -> "
                f"{', '.join(sorted(a))} / {', '.join(sorted(aaaa))}  ({who(lab, a)})"
            )


def show_told(inbox: Path, seen: int) -> int:
    """The notifications the operator got since ``seen``; returns how many there are."""
    got = messages(inbox)
    for m in got[seen:]:
        say(f"    {m['via']:<7} from {m['node']:<10} {m['title']}")
    if len(got) == seen:
        say("    (none)")
    return len(got)


def status_from_client(lab: Lab) -> None:
    """kissha status --nagios with fishfinger's config, from the client (as a monitor)."""
    argv = [sys.executable, "-m", "kissha", "-c", str(lab.config_path("fishfinger"))]
    r = lab.exec("client", [*argv, "status", "--nagios"])
    say(f"    exit {r.returncode}: {r.stdout.strip()}")


def rounds_until(lab: Lab, node: str, interval: float, limit: int) -> int:
    for i in range(1, limit + 1):
        reports = round_(lab)
        parts = []
        for n, rep in reports.items():
            health = rep["health"]
            assert isinstance(health, dict)
            state = " ".join(
                f"{name}:{'up' if h['up'] else 'DOWN'}"
                + (f"({h['fail_streak']} failed)" if h["fail_streak"] else "")
                + (f"({h['ok_streak']} good)" if not h["up"] and h["ok_streak"] else "")
                for name, h in health.items()
            )
            parts.append(f"{n} exit {rep['exit_code']} [{state}]")
        say(f"  round {i}: " + "; ".join(parts))
        if lab.all_point_at(node):
            return i
        time.sleep(interval)
    raise SystemExit(f"demo: the nameservers did not all point at {node} after {limit} rounds")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    args = p.parse_args(argv)
    t0 = time.monotonic()
    say("kissha demo: two nodes and a client on one bridge, in network namespaces")
    Lab.cleanup_stale()
    with Lab() as lab:
        for n in NODES:
            node = lab.node(n)
            say(
                f"  {n:<10} {node.fqdn:<24} {node.ipv4:<15} {node.ipv6}: nsd, HTTPS, "
                "Gemini (molly-brown), kissha"
            )
        say("  client     asks both nameservers over IPv4 and IPv6, and runs the operator's")
        say("             mail server and webhook receiver (both nodes notify them)")
        inbox = lab.start_sink()
        for n in NODES:
            lab.notify_to_sink(n)
        say(f"  (built in {time.monotonic() - t0:.1f} s)")
        say()
        say("1. a first round: each node probes both nodes (HTTPS, Gemini; DNS reported)")
        say("   and aligns its own zones with this week's rotation (weeks count in UTC)")
        first = round_(lab)
        decision = first["fishfinger"]["decision"]
        assert isinstance(decision, dict)
        master, standby = str(decision["master"]), str(decision["standby"])
        say(f"   master {master}, standby {standby}")
        show_answers(lab)
        say()
        say(f"2. stopping {master}'s web server; each node needs 3 failed rounds in a row")
        say("   (a failed probe is retried within the round) before it fails over")
        lab.stop(master, "web")
        killed = time.monotonic()
        rounds = rounds_until(lab, standby, args.interval, 10)
        took = time.monotonic() - killed
        say(f"   failover: every nameserver answers {standby} {took:.1f} s after the kill,")
        say(f"   after {rounds} rounds (with cron, one round a minute: about {rounds} minutes)")
        show_answers(lab)
        say("   the operator is told once (by the new master), by mail and by webhook:")
        seen = show_told(inbox, 0)
        say()
        say(f"3. {master}'s web server is back; 5 good rounds in a row before it is trusted")
        lab.start(master, "web")
        back = time.monotonic()
        rounds = rounds_until(lab, master, args.interval, 12)
        say(
            f"   failback: every nameserver answers {master} again after {rounds} rounds, "
            f"{time.monotonic() - back:.1f} s"
        )
        show_answers(lab)
        say(f"   the recovery, told once too (by the master, {master} again):")
        show_told(inbox, seen)
        say()
        say("4. kissha status from the client, as a Nagios check (split brain would be")
        say("   CRITICAL):")
        status_from_client(lab)
        say()
        say(f"5. {master}'s event history (state.json):")
        state = json.loads((lab.node_root(master) / "state" / "state.json").read_text())
        for e in state["events"]:
            stamp = time.strftime("%H:%M:%S", time.gmtime(e["time"]))
            say(f"   {stamp}  {e['kind']:<9} {e['message']}")
    left = lab.leftovers()
    say()
    say(
        f"done in {time.monotonic() - t0:.1f} s; "
        + (
            "the lab is gone: no namespace, process or file left"
            if not left
            else f"LEFT BEHIND: {left}"
        )
    )
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
