"""What the status page costs a run: kissha failover with and without [page].

Run with ``bench/run-page`` (it enters a private network namespace). Prints Markdown
tables; nothing asserts on them. Two measurements on the loopback site (real nsd, real
HTTPS nodes, 6 zones), each page case starting from a full 3-day history (a run a
minute, compacted as the file keeps it: ~470 lines):

1. a no-change ``kissha failover`` process (the every-minute cron case): CPU, wall
   time and peak RSS, median over N runs, for: no [page]; [page] not due (the history
   append and a stat); the page written at every run without and with asking the
   nameservers (on the loopback site the nodes' addresses refuse at once: an
   unreachable one would add up to health.timeout);
2. the parts in-process: folding a run into a full history file, reading 3 days of
   it, rendering the page, and the sizes.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench_failover import RUN_COLUMNS, compare_runs, print_heading, print_table, variant_argvs

from kissha import config as configmod
from kissha.core.model import ProbeResult
from kissha.engine.state import State
from kissha.observe import history, page, pagehtml
from lab.site import LoopbackSite

NOW = 1795435200.0  # 2026-11-23T12:00:00Z, as kissha_argv's --now
DAYS = 3


def probes(site: LoopbackSite) -> list[ProbeResult]:
    return [
        ProbeResult(n.name, "https", f, "a", True, "ok", latency_ms=12.5)
        for n in site.nodes
        for f in ("ipv4", "ipv6")
    ]


def full_history(state_dir: Path, site: LoopbackSite) -> None:
    """3 days of one run a minute, ending a minute before NOW, as the file holds them:
    compacted (older than two hours merged into 15-minute buckets)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ps = probes(site)
    width = history.bucket_width(DAYS)
    buckets = [
        history.bucket_of(NOW - DAYS * 86400 + i * width, ps, width)
        for i in range(DAYS * 86400 // width)
    ]
    lines = [b.to_line() for b in history.compact(buckets, NOW - 60, DAYS)]
    history.history_path(state_dir).write_bytes(b"".join(lines))


def bench_runs(site: LoopbackSite, runs: int) -> list[str]:
    cases = {
        "no [page]": None,
        "[page], not due (every = 3600)": "every = 3600",
        "[page] written every run, nameservers = false": "every = 0\nnameservers = false",
        "[page] written every run, asking 4 nameservers": f"every = 0\nport = {site.dns_port}",
    }
    tables = {
        name: None if keys is None else f'\n[page]\ndir = "{site.root / f"www-{i}"}"\n{keys}\n'
        for i, (name, keys) in enumerate(cases.items())
    }
    argvs = variant_argvs(site, tables)
    for i, keys in enumerate(cases.values()):
        if keys is not None:
            full_history(site.root / f"state-{i}", site)
    # The warm-up also writes the "not due" case's page once: later runs only append.
    return compare_runs(argvs, runs)


def bench_parts(site: LoopbackSite, root: Path, repeat: int) -> list[str]:
    state = root / "parts"
    full_history(state, site)
    ps = probes(site)

    def median_ms(fn: Callable[[], object], n: int) -> float:
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1000

    # Each call is a new minute: an append, not a fold (the rarer, dearer case).
    minutes = iter(range(10**6))
    record = median_ms(lambda: history.record(state, NOW + 60 * next(minutes), ps, DAYS), repeat)
    fold = median_ms(lambda: history.record(state, NOW, ps, DAYS), repeat)
    load = median_ms(lambda: history.load(state, NOW - DAYS * 86400), 20)
    cfg = replace(
        configmod.load(site.config_path),
        state_dir=state,
        page=configmod.PageConfig(dir=root / "www", nameservers=False),
    )
    data, _ = page.build(cfg, NOW, ps, State(), NOW, 53)
    render = median_ms(lambda: pagehtml.render(data), 20)
    size = len(pagehtml.render(data).encode())
    file_size = history.history_path(state).stat().st_size
    file_lines = len(history.history_path(state).read_bytes().splitlines())
    return [
        f"| fold a run into the last bucket (a daemon round) | {fold:.2f} ms |",
        f"| append a new bucket to a 3-day history | {record:.2f} ms |",
        f"| read 3 days of history ({file_lines} lines, {file_size // 1024} KiB) | {load:.1f} ms |",
        f"| render the page from them ({size // 1024} KiB of HTML) | {render:.1f} ms |",
    ]


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=20, help="runs per case")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kissha-bench-page-", dir="/tmp"))
    try:
        print_heading("The status page's cost")
        with LoopbackSite(root / "site") as site:
            print_table(
                "A no-change kissha failover run (6 zones)",
                RUN_COLUMNS,
                bench_runs(site, args.runs),
            )
            print_table(
                "The parts, in-process (medians)", ("step", "time"), bench_parts(site, root, 200)
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
