"""Kill kissha (SIGKILL) at every rename, link, unlink, fsync and process spawn of a
failover run, then run it again (the recovery) and check the zone files (sha256, owner,
mode), the leftovers and nsd's answers. See lab.killpoints.

Run with ``bench/run-killpoints`` (a private network namespace, strace). Prints the
calls counted per system call, the points killed, and every problem found (none
expected). Exit 1 if any problem was found.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from lab import killpoints
from lab.site import LoopbackSite


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--zones", type=int, default=3, help="zones on the site (default 3)")
    ap.add_argument(
        "--twice",
        action="store_true",
        help="also kill each recovery run, at its first vfork (the reload)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="kissha-kp-", dir="/tmp") as tmp:
        zones = tuple(f"z{i}.example" for i in range(args.zones))
        with LoopbackSite(Path(tmp) / "site", zones=zones) as site:
            t0 = time.monotonic()
            kp = killpoints.KillPoints(site)
            outcomes = kp.run()
            if args.twice:
                outcomes += kp.run(then=("vfork", 1))
            took = time.monotonic() - t0
    calls: Counter[str] = Counter(o.syscall.split(",")[0] for o in outcomes)
    killed: Counter[str] = Counter(o.syscall.split(",")[0] for o in outcomes if o.killed)
    print(f"## Kill points: {args.zones} zones, one failover run\n")
    twice = " (each twice: recovery killed too)" if args.twice else ""
    print(f"| system call | kill points{twice} | killed there | problems after recovery |")
    print("|---|---:|---:|---:|")
    for name in killpoints.SYSCALLS:
        if calls[name]:
            bad = sum(1 for o in outcomes if o.syscall.split(",")[0] == name and o.problems)
            print(f"| {name} | {calls[name]} | {killed[name]} | {bad} |")
    total_bad = [o for o in outcomes if o.problems]
    print(
        f"\n{len(outcomes)} kill points, {sum(killed.values())} runs killed, "
        f"{len(total_bad)} with problems, {took:.0f} s"
    )
    for o in total_bad:
        print(f"- {o.syscall} #{o.k}: " + "; ".join(o.problems))
    return 1 if total_bad else 0


if __name__ == "__main__":
    sys.exit(main())
