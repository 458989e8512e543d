"""A/B of kissha trees on the big switch, each against a floor measured beside it.

Run inside a private network namespace, from the repository's root:

    git archive COMMIT src | tar -x -C /tmp/old
    scripts/isolated .venv/bin/python bench/ab_switch.py old=/tmp/old/src new=src

Each tree gets a loopback site of its own (``--zones`` zones x 50 marked records, real
nsd; its own ports), and one more site serves the floor (bench_failover.floor: write
every file with fsync, one reload, the first correct answer). After one cold switch
and one switch back per tree, each round makes a warm switch with every tree in turn,
then measures the floor once: on a machine whose speed drifts (a shared virtual
machine's CPU moved by 1.5-2x within an hour here), a switch is compared with the
floor measured right after it (the median of these paired ratios), as well as median
with median. Nothing here asserts on the figures.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench_failover import big_template, floor, kissha_argv, measure, switch

from lab.site import LoopbackSite

Sample = tuple[float, float, int, int]  # cpu s, wall s, peak RSS KiB, exit status


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("trees", nargs="+", metavar="NAME=DIR", help="a name and a src directory")
    p.add_argument("--zones", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=8, help="warm switches per tree")
    args = p.parse_args()
    trees = dict(t.split("=", 1) for t in args.trees)
    for tree in trees.values():  # byte code, as an installed kissha has it
        compileall.compile_dir(tree, quiet=1)
    names = [f"z{i:04d}.example" for i in range(args.zones - 1)] + ["example.org"]
    health = {"failures_before_demotion": 1, "successes_before_promotion": 1}
    envs = {k: {**os.environ, "PYTHONPATH": str(Path(t).resolve())} for k, t in trees.items()}
    with tempfile.TemporaryDirectory(dir="/tmp") as d, contextlib.ExitStack() as stack:

        def site(name: str, j: int) -> LoopbackSite:
            return stack.enter_context(
                LoopbackSite(
                    Path(d) / name,
                    zones=names,
                    template=big_template(50),
                    health=health,
                    dns_port=5353 + j,
                    https_port=8443 + j,
                )
            )

        sites = {k: site(k, j) for j, k in enumerate(trees)}
        floor_site = site("floor", len(trees))
        cold: dict[str, Sample] = {}
        for k, s in sites.items():
            switch(s, to_standby=True)
            cold[k] = measure(kissha_argv(s), envs[k])
            switch(s, to_standby=False)
            measure(kissha_argv(s), envs[k])
        warm: dict[str, list[Sample]] = {k: [] for k in trees}
        floors: list[float] = []
        for i in range(args.rounds):
            for k, s in sites.items():
                switch(s, to_standby=i % 2 == 0)
                sample = measure(kissha_argv(s), envs[k])
                if sample[3] != 1:
                    raise SystemExit(f"bench: {k} exited {sample[3]} on a switch")
                warm[k].append(sample)
            floors.append(floor(floor_site, names, (i + 1) % 2, 2_100_000_000 + i))
    print(f"# {args.zones} zones x 50 marked records, {args.rounds} rounds\n")
    print(
        f"floor: median {statistics.median(floors):.2f} s ({min(floors):.2f}-{max(floors):.2f})\n"
    )
    print(
        "| tree | cold: wall, CPU | warm: wall, CPU (medians) | peak RSS | warm / floor: "
        "medians | warm / floor: median of pairs |"
    )
    print("|---|---|---|---|---|---|")
    for k, samples in warm.items():
        wall = statistics.median(x[1] for x in samples)
        cpu = statistics.median(x[0] for x in samples)
        pairs = statistics.median(x[1] / f for x, f in zip(samples, floors, strict=True))
        rss = max(x[2] for x in samples) / 1024
        print(
            f"| {k} | {cold[k][1]:.2f} s, {cold[k][0]:.2f} s | {wall:.2f} s, {cpu:.2f} s "
            f"| {rss:.0f} MiB | {wall / statistics.median(floors):.2f}x | {pairs:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
