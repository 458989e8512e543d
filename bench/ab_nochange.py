"""A/B of kissha trees on the cron case: interleaved no-change runs on one loopback site.

    scripts/isolated .venv/bin/python bench/ab_nochange.py old=/tmp/old/src new=src \\
        [--runs 40] [--zones 1000] [--callgrind 3]

Each NAME=DIR runs ``python -m kissha ... failover`` with ``PYTHONPATH=DIR`` (e.g. an
export of another commit: ``git archive main src | tar -x -C /tmp/old``), alternating
run by run, after one warm-up each; the byte code is compiled first. Prints, per tree,
the median CPU (user + system, from wait4: microseconds, not GNU time's 10 ms ticks)
and wall time, with the CPU's interquartile range. With ``--callgrind N``, also the
instructions of N runs of each under valgrind's callgrind: unlike CPU time on a
shared machine, they hardly move with the load (the probes' threads make them vary by
about 1 %). Nothing here asserts on the figures.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench_failover import big_template, kissha_argv

from lab.site import DEFAULT_ZONES, ZONE_TEMPLATE, LoopbackSite


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one run that must exit 0 or 1."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"ab: {argv} exited {code}")
    return usage.ru_utime + usage.ru_stime, wall


def instructions(argv: list[str], env: dict[str, str]) -> float:
    """Millions of instructions of one run under callgrind."""
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise SystemExit(f"ab: callgrind said: {out.stderr[-500:]}")
    return int(found.group(1)) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="+", metavar="NAME=DIR")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--zones", type=int, default=0, help="default: the site's 6 zones")
    ap.add_argument("--callgrind", type=int, default=0, metavar="N")
    args = ap.parse_args()
    trees = dict(t.split("=", 1) for t in args.trees)
    for directory in trees.values():
        compileall.compile_dir(directory, quiet=1)
    envs = {k: {**os.environ, "PYTHONPATH": str(Path(d).resolve())} for k, d in trees.items()}
    zones: Sequence[str] = DEFAULT_ZONES
    template = ZONE_TEMPLATE
    if args.zones:  # as the bench's 1,000-zone site: 50 marked records a zone
        zones = [f"z{i:04d}.example" for i in range(args.zones - 1)] + ["example.org"]
        template = big_template(50)
    with (
        tempfile.TemporaryDirectory() as d,
        LoopbackSite(Path(d) / "s", zones=zones, template=template) as site,
    ):
        argv = kissha_argv(site)
        samples: dict[str, list[tuple[float, float]]] = {k: [] for k in trees}
        for env in envs.values():
            measure(argv, env)  # warm-up: page cache, the site's caches
        for _ in range(args.runs):
            for k, env in envs.items():
                samples[k].append(measure(argv, env))
        for k, s in samples.items():
            cpu = [x[0] * 1e3 for x in s]
            q = statistics.quantiles(cpu, n=4)
            wall = statistics.median(x[1] for x in s) * 1e3
            print(
                f"{k}: CPU median {statistics.median(cpu):.1f} ms "
                f"(IQR {q[0]:.1f}-{q[2]:.1f}), wall median {wall:.1f} ms, {len(s)} runs"
            )
        for _ in range(args.callgrind):
            for k, env in envs.items():
                print(f"{k}: {instructions(argv, env):.1f} M instructions")


if __name__ == "__main__":
    main()
