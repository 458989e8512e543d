"""kissha daemon on the two-node lab: time to failover, and memory and CPU over a soak.

Run with ``bench/run-daemon`` (it enters a private network namespace). Prints Markdown;
asserts nothing. Rotation is off (the daemon runs at the real time); the thresholds are
kissha's defaults (probe timeout 2 s, 1 retry, 3 failed rounds to demote, 5 good
rounds to promote), as in ``bench/run-lab``.

- failover: a daemon on each node, a round every ``--interval`` s. Each trial starts
  from a steady state (every nameserver answers the master, and both daemons have run
  two quiet rounds since), waits a random fraction of an interval (so that the kill
  falls anywhere between two ticks), kills the master's web server, and times until
  both nameservers answer the standby over IPv4 and IPv6, asked from the client every
  0.1 s (a time includes the check that saw it, ~0.2 s). Then the web server comes
  back and the failback is timed the same way. "detection" is from the kill to the
  start of the round that failed over, on the slower node (its state's event time).
  ``--fault cable`` pulls the master's cable instead: then only the standby's
  nameserver can answer, and its rounds last up to (retries + 1) x timeout.
- soak: one daemon on the master, both nodes healthy, for ``--soak-minutes`` at
  ``--interval``, then a fresh daemon for ``--idle-minutes`` at ``--idle-interval``
  (the default 60 s). Every ``--sample`` s: VmRSS from /proc/PID/status and CPU time
  (utime + stime, and the same for reaped children) from /proc/PID/stat. CPU per hour
  is extrapolated from the time between the first and the last sample; the first
  sample is taken after the first round, so start-up is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_lab import DEFAULTS, NODES

from lab.netlab import Lab

MASTER, STANDBY = NODES
POLL = 0.1
WAIT = 60.0  # the bound of every wait
TARGET_FAILOVER = 5.0
TARGET_RSS_MB = 60.0


def eventually(check: Callable[[], bool], seconds: float = WAIT) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > seconds:
            raise SystemExit(f"bench: gave up after {seconds:g} s")
        time.sleep(POLL)
    return time.monotonic() - start


def state(lab: Lab, node: str) -> dict[str, Any]:
    path = lab.node_root(node) / "state" / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def last_run(lab: Lab, node: str) -> float:
    return float(state(lab, node).get("last_run", {}).get("time", 0.0))


def rounds_pass(lab: Lab, nodes: Sequence[str], count: int) -> None:
    """Wait until every daemon on nodes has saved ``count`` more rounds."""
    seen = {n: {last_run(lab, n)} for n in nodes}

    def done() -> bool:
        for n in nodes:
            seen[n].add(last_run(lab, n))
        return all(len(t) > count for t in seen.values())

    eventually(done)


def last_event_time(lab: Lab, node: str, kind: str) -> float:
    return float(max(e["time"] for e in state(lab, node)["events"] if e["kind"] == kind))


@dataclass(frozen=True)
class Trial:
    failover: float
    detection: float
    failback: float


@dataclass(frozen=True)
class Fault:
    make: Callable[[Lab], None]
    undo: Callable[[Lab], None]
    # The nameservers that must answer the standby: a master without its cable answers
    # nobody, so then only the standby's (it is also the only node that saw a failure).
    servers: tuple[str, ...]


FAULTS = {
    "web": Fault(lambda lab: lab.stop(MASTER, "web"), lambda lab: lab.start(MASTER, "web"), NODES),
    "cable": Fault(
        lambda lab: lab.pull_cable(MASTER), lambda lab: lab.plug_cable(MASTER), (STANDBY,)
    ),
}


def failover_trials(trials: int, interval: float, fault: Fault) -> list[Trial]:
    done = []
    with Lab(health=DEFAULTS, rotation="off") as lab:
        for node in NODES:
            lab.start_daemon(node, "--interval", f"{interval:g}")
        eventually(lambda: all(last_run(lab, n) for n in NODES))
        for i in range(trials):
            eventually(lambda: lab.all_point_at(MASTER))
            rounds_pass(lab, NODES, 2)
            time.sleep(random.uniform(0, interval))
            killed_at = time.time()
            fault.make(lab)
            failover = eventually(lambda: lab.all_point_at(STANDBY, servers=fault.servers))
            detection = max(last_event_time(lab, n, "node-down") for n in fault.servers) - killed_at
            fault.undo(lab)
            failback = eventually(lambda: lab.all_point_at(MASTER))
            done.append(Trial(failover, detection, failback))
            print(
                f"- trial {i + 1}: failover {failover:.2f} s (detection {detection:.2f} s), "
                f"failback {failback:.2f} s",
                flush=True,
            )
        for node in NODES:
            lab.stop_daemon(node, timeout=WAIT)
    return done


@dataclass(frozen=True)
class Sample:
    at: float  # monotonic seconds
    rss_kb: int
    cpu_s: float  # utime + stime
    children_cpu_s: float  # cutime + cstime (reaped nsd-control, nsd-checkzone, ...)


def sample(pid: int) -> Sample:
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    # The command name may hold spaces or parentheses: the fields start after the last ')'.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return Sample(time.monotonic(), rss, (utime + stime) / tick, (cutime + cstime) / tick)


def soak(minutes: float, interval: float, every: float) -> list[Sample]:
    samples: list[Sample] = []
    if minutes <= 0:
        return samples
    with Lab(health=DEFAULTS, rotation="off") as lab:
        daemon = lab.start_daemon(MASTER, "--interval", f"{interval:g}")
        eventually(lambda: last_run(lab, MASTER) > 0)
        start = time.monotonic()
        while True:
            samples.append(sample(daemon.pid))
            elapsed = time.monotonic() - start
            if elapsed >= minutes * 60 - 1e-3 or daemon.poll() is not None:
                break
            time.sleep(min(every, minutes * 60 - elapsed))
        code = lab.stop_daemon(MASTER, timeout=WAIT)
        log = lab.daemon_log(MASTER)
        if code != 0 or "Traceback" in log or "round failed" in log:
            print(f"\n(the daemon exited {code}; its log ends:)\n```\n{log[-2000:]}\n```\n")
    return samples


def seconds(values: list[float]) -> str:
    p90 = statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else 0
    return (
        f"median {statistics.median(values):.1f} s, p90 {p90:.1f} s, "
        f"max {max(values):.1f} s (each: {', '.join(f'{v:.1f}' for v in values)})"
    )


def soak_figures(name: str, samples: list[Sample]) -> str:
    if len(samples) < 2:
        return f"| {name} | (no samples) | | | | |"
    first, last = samples[0], samples[-1]
    mb = [s.rss_kb / 1024 for s in samples]
    # Growth over the second half: warm-up (lazy imports, first TLS contexts) is over
    # by then, so a leak would show there.
    middle = samples[len(samples) // 2].rss_kb / 1024
    hours = (last.at - first.at) / 3600
    own = (last.cpu_s - first.cpu_s) / hours
    kids = (last.children_cpu_s - first.children_cpu_s) / hours
    return (
        f"| {name} | {mb[0]:.1f} / {mb[-1]:.1f} / {max(mb):.1f} MB | {mb[-1] - mb[0]:+.2f} MB "
        f"| {mb[-1] - middle:+.2f} MB | {own:.1f} s (+ {kids:.1f} s in child processes) | "
        f"{(last.at - first.at) / 60:.1f} min, {len(samples)} samples |"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--trials", type=int, default=10, help="failover trials (0: none)")
    p.add_argument("--interval", type=float, default=1.0, help="the daemon's interval, s")
    p.add_argument(
        "--fault",
        choices=sorted(FAULTS),
        default="web",
        help="web: the master's web server killed (default); cable: its cable pulled",
    )
    p.add_argument("--soak-minutes", type=float, default=10.0, help="soak at --interval")
    p.add_argument("--idle-minutes", type=float, default=5.0, help="soak at --idle-interval")
    p.add_argument("--idle-interval", type=float, default=60.0)
    p.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    args = p.parse_args(argv)
    Lab.cleanup_stale()
    print(
        f"# kissha daemon on the lab ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
        f"interval {args.interval:g} s, default thresholds)\n",
        flush=True,
    )
    figures: dict[str, object] = {
        "interval": args.interval,
        "trials": args.trials,
        "fault": args.fault,
    }
    if args.trials > 0:
        trials = failover_trials(args.trials, args.interval, FAULTS[args.fault])
        fo = [t.failover for t in trials]
        median = statistics.median(fo)
        verdict = "met" if median <= TARGET_FAILOVER else "MISSED"
        detection = [t.detection for t in trials]
        failback = [t.failback for t in trials]
        which = (
            "both nameservers answer" if args.fault == "web" else "the standby's nameserver answers"
        )
        print(f"\n- fault ({args.fault}) -> {which} the standby: {seconds(fo)}")
        print(f"- detection (kill -> start of the round that failed over): {seconds(detection)}")
        print(f"- failback (fault undone -> both answer the master): {seconds(failback)}")
        print(f"- target: median <= {TARGET_FAILOVER:g} s: {verdict}\n", flush=True)
        figures["failover"] = fo
        figures["detection"] = [round(t.detection, 3) for t in trials]
        figures["failback"] = [round(t.failback, 3) for t in trials]
    runs = [
        (f"interval {args.interval:g} s", args.soak_minutes, args.interval),
        (f"interval {args.idle_interval:g} s", args.idle_minutes, args.idle_interval),
    ]
    if any(minutes > 0 for _, minutes, _ in runs):
        print(
            "| daemon | RSS first / last / max | growth | growth in the second half "
            "| CPU per hour | measured over |"
        )
        print("|---|---|---|---|---|---|", flush=True)
    peak = 0.0
    for name, minutes, interval in runs:
        samples = soak(minutes, interval, args.sample)
        if not samples:
            continue
        print(soak_figures(name, samples), flush=True)
        figures[name] = [(round(s.at - samples[0].at), s.rss_kb, s.cpu_s) for s in samples]
        peak = max(peak, *(s.rss_kb / 1024 for s in samples))
    if peak:
        verdict = "met" if peak <= TARGET_RSS_MB else "MISSED"
        print(f"\n- target: RSS <= {TARGET_RSS_MB:g} MB: {verdict} (max {peak:.1f} MB)")
    print("\n(json) " + json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
