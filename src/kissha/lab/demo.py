"""The loopback demo: a real nsd and two HTTPS nodes; kill the master, watch kissha fail over.

Run through ``scripts/demo`` (it sets up and enters a private network namespace).
Cron would run kissha once a minute; the demo runs it once a second to show the same
rounds quickly.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from kissha.lab.site import LoopbackSite

ZONE = "example.org"


def say(text: str = "") -> None:
    print(text, flush=True)


def show_answers(site: LoopbackSite) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = {}
    for server in ("127.0.0.1", "::1"):
        for name in (f"www.{ZONE}", f"standby.{ZONE}"):
            for rdtype in ("A", "AAAA"):
                got = site.answers(name, rdtype, server)
                seen[f"{server} {name} {rdtype}"] = got
        a = ", ".join(sorted(site.answers(f"www.{ZONE}", "A", server)))
        aaaa = ", ".join(sorted(site.answers(f"www.{ZONE}", "AAAA", server)))
        sa = ", ".join(sorted(site.answers(f"standby.{ZONE}", "A", server)))
        say(f"    nameserver {server:<9}  www -> {a} / {aaaa}   standby -> {sa}")
    return seen


def who(site: LoopbackSite, address: str) -> str:
    for n in site.nodes:
        if address in (n.ipv4, n.ipv6):
            return n.name
    return address


def run_kissha(site: LoopbackSite) -> dict[str, object]:
    r = site.kissha("failover", "--json")
    if r.returncode not in (0, 1):
        say(r.stdout)
        say(r.stderr)
        raise SystemExit(f"demo: kissha failover exited {r.returncode}")
    data: dict[str, object] = json.loads(r.stdout)
    return data


def both_point_at(site: LoopbackSite, node: str) -> bool:
    n = next(x for x in site.nodes if x.name == node)
    return all(
        site.answers(f"www.{ZONE}", "A", s) == {n.ipv4}
        and site.answers(f"www.{ZONE}", "AAAA", s) == {n.ipv6}
        for s in ("127.0.0.1", "::1")
    )


def until_both_point_at(site: LoopbackSite, node: str, interval: float, limit: int) -> float:
    """Run kissha every ``interval`` s until both nameservers answer ``node``; seconds taken."""
    start = time.monotonic()
    for i in range(1, limit + 1):
        data = run_kissha(site)
        health = data["health"]
        assert isinstance(health, dict)
        state = ", ".join(
            f"{name} {'up' if h['up'] else 'DOWN'}"
            + (f" ({h['fail_streak']} failed)" if h["fail_streak"] else "")
            + (f" ({h['ok_streak']} good)" if not h["up"] and h["ok_streak"] else "")
            for name, h in health.items()
        )
        say(f"  run {i}: exit {data['exit_code']}, {state}")
        if both_point_at(site, node):
            return time.monotonic() - start
        time.sleep(interval)
    raise SystemExit(f"demo: the nameservers did not point at {node} after {limit} runs")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--interval", type=float, default=1.0, help="seconds between runs")
    p.add_argument("--keep", action="store_true", help="keep the demo directory")
    args = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="kissha-demo-", dir="/tmp"))
    t0 = time.monotonic()
    try:
        say("kissha demo: building a site on loopback (private network namespace)")
        say("  - a test CA, two nodes with HTTPS on IPv4 and IPv6, six seed-style zones")
        say("  - one real nsd serving the zones on 127.0.0.1 and ::1")
        with LoopbackSite(root / "site") as site:
            for n in site.nodes:
                say(f"  - node {n.name:<10} {n.fqdn:<24} {n.ipv4:<11} {n.ipv6}")
            say(f"  config: {site.config_path}")
            say()
            say("1. first run: kissha probes both nodes and aligns the records with this")
            say("   week's rotation (weeks count in UTC, roles swap every Monday)")
            data = run_kissha(site)
            decision = data["decision"]
            assert isinstance(decision, dict)
            master, standby = decision["master"], decision["standby"]
            say(f"   master {master}, standby {standby} (exit {data['exit_code']})")
            show_answers(site)
            say()
            say(f"2. stopping {master}'s web server; kissha needs 3 failed rounds in a row")
            say("   (each probe is retried once within a round) before it fails over")
            site.stop_web(master)
            killed = time.monotonic()
            took = until_both_point_at(site, standby, args.interval, 10)
            since_kill = time.monotonic() - killed
            say(f"   failover: both nameservers answer {standby} {since_kill:.1f} s after the kill")
            say(f"   ({took:.1f} s of runs, one per {args.interval:g} s; cron runs one a minute)")
            show_answers(site)
            say()
            say("   what cron would have mailed (kissha failover, human output):")
            r = site.kissha("failover", "--dry-run")
            for line in r.stdout.splitlines()[:14]:
                say(f"   | {line}")
            say()
            say(f"3. {master} is back; kissha waits for 5 good rounds before failing back")
            site.start_web(master)
            back = time.monotonic()
            until_both_point_at(site, master, args.interval, 12)
            say(
                f"   failback: both nameservers answer {master} again "
                f"{time.monotonic() - back:.1f} s after the restart"
            )
            show_answers(site)
            events = json.loads((site.root / "state" / "state.json").read_text())["events"]
            say()
            say("4. kissha's event history (state.json):")
            for e in events:
                stamp = time.strftime("%H:%M:%S", time.gmtime(e["time"]))
                say(f"   {stamp}  {e['kind']:<9} {e['message']}")
        say()
        say(f"done in {time.monotonic() - t0:.1f} s; nsd and the web servers are stopped")
    finally:
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
