"""kissha monitor on the two-node lab: the original's default set (two nodes, six sites
with their www. and standby. names: 91 checks generated with no check line), run from
fishfinger with Debian's monitoring-plugins.

Run with ``bench/run-monitor`` (it enters a private network namespace). Prints Markdown.

- a run, healthy lab: wall time and CPU (user + system of kissha and its plugins, from
  GNU time) at concurrency 1 (sequential), 4, 8 (the default) and 16; median of
  ``--trials`` runs each (``--dry-run``: the same checks, nothing saved or told).
- inside the daemon: the CPU of one run times the runs an hour at ``[monitor] every``
  (5 minutes, as the original's cron), as a share of one core.
- a pulled cable (blowfish's): what the run costs when a node's checks time out and
  its dependent checks wait.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from lab.netlab import Lab

NODE = "fishfinger"
NOW = "2026-11-23T12:00:00Z"


def configure(lab: Lab, concurrency: int) -> None:
    path = lab.config_path(NODE)
    text = path.read_text().split("\n# bench-monitor\n")[0]
    text += "\n# bench-monitor\n" + "".join(f'[[sites]]\nname = "{z}"\n' for z in lab.zones)
    text += f'[monitor]\ntimezone = "UTC"\nconcurrency = {concurrency}\ntimeout = 3\n'
    path.write_text(text)


def one_run(lab: Lab) -> tuple[float, float, int]:
    """(wall s, CPU s, checks run) of one ``kissha monitor --dry-run --json``."""
    import json

    argv = ["/usr/bin/time", "-f", "TIME %e %U %S", sys.executable, "-m", "kissha"]
    argv += ["-c", str(lab.config_path(NODE)), "monitor", "--dry-run", "--json", "--now", NOW]
    done = lab.exec(NODE, argv, timeout=300)
    line = [ln for ln in done.stderr.splitlines() if ln.startswith("TIME ")][-1]
    wall, user, sys_ = (float(x) for x in line.split()[1:])
    data = json.loads(done.stdout)
    ran = sum(1 for c in data["checks"] if c["ran"])
    return wall, user + sys_, ran


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--every", type=float, default=300.0)
    args = parser.parse_args()
    print("## kissha monitor on the two-node lab\n")
    print(f"{args.trials} runs per row, median; `kissha monitor --dry-run` on {NODE}.\n")
    print("| case | concurrency | checks run | wall s | CPU s |")
    print("|---|---:|---:|---:|---:|")
    cpu_default = 0.0
    with Lab() as lab:
        for concurrency in (1, 4, 8, 16):
            configure(lab, concurrency)
            runs = [one_run(lab) for _ in range(args.trials)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            if concurrency == 8:
                cpu_default = cpu
            print(f"| healthy | {concurrency} | {runs[0][2]} | {wall:.2f} | {cpu:.2f} |")
        configure(lab, 8)
        lab.pull_cable("blowfish")
        runs = [one_run(lab) for _ in range(args.trials)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"| blowfish's cable pulled | 8 | {runs[0][2]} | {wall:.2f} | {cpu:.2f} |")
        lab.plug_cable("blowfish")
    per_hour = cpu_default * 3600 / args.every
    print(
        f"\nInside the daemon (a run every {args.every:g} s): {per_hour:.1f} CPU s an hour, "
        f"{100 * per_hour / 3600:.2f} % of one core.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
