"""What notifications cost: kissha failover with and without [notify], and a delivery.

Run with ``bench/run-notify`` (it enters a private network namespace). Prints Markdown
tables; nothing asserts on them. On the loopback site (real nsd, real HTTPS nodes,
6 zones), with a real SMTP server (aiosmtpd) and a real webhook receiver on loopback:

1. a no-change ``kissha failover`` process (the every-minute cron case, nothing to
   tell): CPU, wall time and peak RSS, median over N runs, for: no [notify]; [notify]
   with a mail and a webhook channel; the same with ``watch_nameservers`` (every
   nameserver asked during the probes);
2. in-process: one notice delivered to both channels at once (SMTP and webhook), and
   to a black-holed channel (the time a run waits at most: ``[notify] timeout``).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_failover import (
    RUN_COLUMNS,
    compare_runs,
    config_variant,
    print_heading,
    print_table,
    variant_argvs,
)

from kissha import config as configmod
from kissha.core.model import Event
from kissha.engine.state import State
from kissha.notify import deliver, plan, render
from lab.sink import Sink
from lab.site import LoopbackSite

NOW = 1795435200.0  # 2026-11-23T12:00:00Z, as kissha_argv's --now


def notify_keys(smtp: tuple[str, int], http: tuple[str, int], extra: str = "") -> str:
    return (
        f'\n[notify]\nnode = "fishfinger"\ntimeout = 2.0\n{extra}\n'
        f'[[notify.mail]]\nto = "ops@example.org"\nsmtp = "{smtp[0]}:{smtp[1]}"\n'
        "starttls = false\n"
        f'[[notify.webhook]]\nurl = "http://{http[0]}:{http[1]}/kissha"\n'
    )


def bench_runs(site: LoopbackSite, sink: Sink, runs: int) -> list[str]:
    assert sink.smtp is not None and sink.http is not None
    cases = {
        "no [notify]": None,
        "[notify]: mail + webhook, nothing to tell": notify_keys(sink.smtp, sink.http),
        "the same + watch_nameservers": notify_keys(
            sink.smtp, sink.http, f"watch_nameservers = true\nwatch_port = {site.dns_port}"
        ),
    }
    argvs = variant_argvs(site, cases)
    before = len(sink.received)  # the warm-up runs start with a fresh state: no events
    rows = compare_runs(argvs, runs)
    quiet = len(sink.received) - before
    rows.append(f"\nMessages received during these quiet runs (warm-ups included): {quiet}.")
    return rows


def black_hole() -> tuple[socket.socket, int]:
    """A listening socket that never accepts: connects succeed, nothing ever answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s, s.getsockname()[1]


def bench_delivery(site: LoopbackSite, sink: Sink, repeat: int) -> list[str]:
    assert sink.smtp is not None and sink.http is not None
    cfg = configmod.load(config_variant(site, "deliver", notify_keys(sink.smtp, sink.http)))
    assert cfg.notify is not None
    st = State()
    message = "fishfinger is down: https/ipv4 connection refused"
    event = Event(1, NOW, "node-down", message, {"node": "fishfinger"})
    ctx = render.Context(cfg, "fishfinger", NOW, None, st)
    notice = plan.notice("node-down", [event], ctx)
    jobs = [(channel, [notice]) for channel in cfg.notify.channels]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        results = deliver.deliver_all(jobs, 5.0, "bench")
        times.append(time.perf_counter() - t)
        assert all(r is None for job in results for r in job), results
    hole, port = black_hole()
    try:
        held = notify_keys(("127.0.0.1", port), ("127.0.0.1", port))
        stuck = configmod.load(config_variant(site, "hole", held))
        assert stuck.notify is not None
        stuck_jobs = [(channel, [notice]) for channel in stuck.notify.channels]
        t = time.perf_counter()
        failed = deliver.deliver_all(stuck_jobs, stuck.notify.timeout, "bench")
        waited = time.perf_counter() - t
    finally:
        hole.close()
    errors = sorted({str(r) for job in failed for r in job})
    return [
        f"| one notice to SMTP and a webhook at once (median of {repeat}) "
        f"| {statistics.median(times) * 1000:.1f} ms |",
        f"| both channels black-holed, timeout = {stuck.notify.timeout:g} s "
        f"| {waited:.2f} s ({'; '.join(errors)[:120]}) |",
    ]


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=20, help="runs per case")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kissha-bench-notify-", dir="/tmp"))
    try:
        print_heading("What notifications cost")
        with (
            LoopbackSite(root / "site") as site,
            Sink(smtp=("127.0.0.1", 0), http=("127.0.0.1", 0)) as sink,
        ):
            print_table(
                "A no-change kissha failover run (6 zones)",
                RUN_COLUMNS,
                bench_runs(site, sink, args.runs),
            )
            print_table("Delivery, in-process", ("case", "time"), bench_delivery(site, sink, 20))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
