"""Failover on the two-node lab: time to fail over, and false failovers under loss.

Run with ``bench/run-lab`` (it enters a private network namespace). Prints Markdown.

- time to failover: the master's web server is killed; rounds run every ``--interval``
  seconds (one round = one run on each node, as cron does every minute); the time is
  from the kill until every nameserver answers the standby over IPv4 and IPv6.
  Median of ``--trials`` trials, each followed by a failback.
- soak: 20% of the packets towards the master are dropped for ``--soak`` rounds with
  the master healthy; every round that changes records is a false failover.

Three contenders on fresh labs: kissha with its defaults; kissha configured the way
the original behaves (one failed check flips: 1 failure to demote, 1 success to
promote, no retry); and the original itself (bench/original.sh, run on each node).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lab.netlab import Lab

HERE = Path(__file__).resolve().parent
NODES = ("fishfinger", "blowfish")
NOW = "2026-11-23T12:00:00Z"  # an even week: kissha's rotation prefers fishfinger
NAME = "www.example.org"
# [health] keys for the lab (its own default timeout is 1 s, for speed)
DEFAULTS: dict[str, object] = {"timeout": 2.0}
ORIGINAL_LIKE: dict[str, object] = {
    "timeout": 2.0,
    "retries": 0,
    "failures_before_demotion": 1,
    "successes_before_promotion": 1,
}

Round = Callable[[Lab], list[int]]


def kissha_round(lab: Lab) -> list[int]:
    return [lab.kissha(n, "failover", now=NOW).returncode for n in NODES]


def original_round(lab: Lab) -> list[int]:
    codes = []
    for n in NODES:
        assert lab.ca is not None
        resolve = " ".join(
            f"--resolve {lab.node(x).fqdn}:443:{lab.node(x).ipv4},[{lab.node(x).ipv6}]"
            for x in NODES
        )
        nsd_conf = next(lab.node_root(n).rglob("nsd.conf"))
        env = [
            f"ZONES_DIR={lab.node_root(n) / 'zones'}",
            f"DEFAULT_MASTER={lab.node('fishfinger').fqdn}",
            f"DEFAULT_STANDBY={lab.node('blowfish').fqdn}",
            "ORIG_WEEK=1",  # the original swaps in even weeks: week 1 keeps fishfinger
            "DIG_SERVER=127.0.0.1",
            "DIG_PORT=53",
            f"NSD_CONTROL=nsd-control -c {nsd_conf}",
            "HTTPS_PORT=443",
            f"CURL_CACERT={lab.ca.cert}",
            f"CURL_RESOLVE_ARGS={resolve}",
        ]
        r = lab.exec(n, ["env", *env, "bash", str(HERE / "original.sh")], timeout=600)
        codes.append(r.returncode)
    return codes


def until(lab: Lab, run: Round, node: str, interval: float, limit: int) -> tuple[float, int]:
    """Rounds every ``interval`` s until every nameserver answers ``node``."""
    start = time.monotonic()
    for i in range(1, limit + 1):
        run(lab)
        if lab.all_point_at(node):
            return time.monotonic() - start, i
        next_at = start + i * interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    raise SystemExit(f"bench: no failover to {node} after {limit} rounds")


def failover_trials(
    run: Round, health: dict[str, object], trials: int, interval: float
) -> tuple[list[float], list[int]]:
    seconds, rounds = [], []
    with Lab(health=health) as lab:
        run(lab)
        for _ in range(trials):
            lab.stop("fishfinger", "web")
            took, n = until(lab, run, "blowfish", interval, 20)
            seconds.append(took)
            rounds.append(n)
            lab.start("fishfinger", "web")
            until(lab, run, "fishfinger", interval, 20)
    return seconds, rounds


def soak(run: Round, health: dict[str, object], rounds: int) -> tuple[int, float, float]:
    """False failovers (rounds that changed records) under 20% loss; round times."""
    changed, durations = 0, []
    with Lab(health=health) as lab:
        run(lab)
        lab.packet_loss("fishfinger", 20)
        for _ in range(rounds):
            t = time.monotonic()
            codes = run(lab)
            durations.append(time.monotonic() - t)
            changed += any(c != 0 for c in codes)
        lab.no_packet_loss("fishfinger")
    return changed, statistics.median(durations), max(durations)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--trials", type=int, default=5)
    p.add_argument("--interval", type=float, default=2.0, help="seconds between rounds")
    p.add_argument("--soak", type=int, default=20, help="rounds under 20%% loss")
    args = p.parse_args(argv)
    Lab.cleanup_stale()
    contenders: list[tuple[str, Round, dict[str, object]]] = [
        ("kissha, defaults (3 down / 5 up, 1 retry, 2 s)", kissha_round, DEFAULTS),
        (
            "kissha, configured like the original (1 down / 1 up, no retry)",
            kissha_round,
            ORIGINAL_LIKE,
        ),
        ("original (shell rendition on each node)", original_round, DEFAULTS),
    ]
    print(
        f"# lab failover ({time.strftime('%Y-%m-%d')}, rounds every {args.interval:g} s, "
        f"{args.trials} trials, soak {args.soak} rounds at 20% loss)\n"
    )
    print(
        "| contender | kill -> every nameserver answers the standby (median) | rounds "
        "(median) | with cron (1 round/min) | false failovers under 20% loss | round "
        "time under loss (median / max) |"
    )
    print("|---|---|---|---|---|---|")
    for name, run, health in contenders:
        seconds, rounds = failover_trials(run, health, args.trials, args.interval)
        false, med, worst = soak(run, health, args.soak)
        r = statistics.median(rounds)
        print(
            f"| {name} | {statistics.median(seconds):.1f} s | {r:g} | ~{r:g} min | "
            f"{false} of {args.soak} rounds | {med:.1f} s / {worst:.1f} s |",
            flush=True,
        )
    print("\n(json) " + json.dumps({"interval": args.interval, "trials": args.trials}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
