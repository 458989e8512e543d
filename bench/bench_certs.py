"""What kissha certs costs: the daily run when nothing is due, and 20 names from scratch.

Run with ``bench/run-certs`` (it enters a private network namespace). Prints Markdown
tables; nothing asserts on them.

1. A daily ``kissha certs`` run with nothing due (19 names already obtained from
   pebble, which is then stopped: a run that tried the network would fail), against a
   no-change ``kissha failover`` on the loopback site (6 zones): CPU, wall, peak RSS.
2. 20 names obtained from scratch from a real pebble on loopback (HTTP-01 answered by
   ``kissha challenges`` on 127.0.0.1:80, pebble-challtestsrv as its DNS), with
   ``concurrency`` 1 (sequential orders), 4 and 8: wall time of the whole run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_failover import RUN_COLUMNS, compare_runs, kissha_argv, print_heading, print_table

from lab.pebble import ChallTestSrv, Pebble
from lab.site import DEFAULT_ZONES, LoopbackSite

NOW = "2026-11-23T12:00:00Z"


def certs_keys(root: Path, pebble: Pebble, sites: str, concurrency: int) -> str:
    return f"""
{sites}
[certs]
node = "fishfinger"
directory = "{pebble.directory}"
ca_file = "{pebble.tls_ca}"
cert = "{root}/ssl/{{name}}.crt"
key = "{root}/ssl/private/{{name}}.key"
fullchain = "{root}/ssl/{{name}}.fullchain.pem"
challenge_dir = "{root}/acme"
concurrency = {concurrency}
reload = [["true"]]
"""


def responder(config: Path) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kissha",
            "-c",
            str(config),
            "challenges",
            "--listen",
            "127.0.0.1:80",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return p


def certs_argv(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "kissha", "-c", str(config), "certs", "--now", NOW, *extra]


def bench_nothing_due(site: LoopbackSite, pebble: Pebble, runs: int) -> list[str]:
    sites = "\n".join(f'[[sites]]\nname = "{z}"' for z in DEFAULT_ZONES)
    root = site.root / "certs-daily"
    config = site.root / "kissha-certs.toml"
    config.write_text(
        site.config_text().replace(str(site.root / "state"), str(root / "state"))
        + certs_keys(root, pebble, sites, 4)
    )
    r = responder(config)
    try:
        done = subprocess.run(certs_argv(config, "--json"), capture_output=True, text=True)
        names = json.loads(done.stdout)["names"]
        assert done.returncode == 1 and all(n["action"] == "obtained" for n in names), done.stdout
    finally:
        r.terminate()
        r.wait()
    pebble.stop()  # from now on any request would fail the run (exit 3)
    rows = compare_runs(
        {
            "kissha failover, no change (6 zones)": kissha_argv(site),
            f"kissha certs, nothing due ({len(names)} names)": certs_argv(config),
        },
        runs,
    )
    rows.append("\npebble was stopped during these runs: the certs runs made no request.")
    pebble.start()
    return rows


def bench_scratch(root: Path, pebble: Pebble, site: LoopbackSite, repeat: int) -> list[str]:
    # 5 sites x (name + 3 aliases), no standby names, node FQDN excluded: 20 names.
    sites = "\n".join(
        f'[[sites]]\nname = "site{i}.example"\naliases = ["www", "w2", "w3"]\nstandby = []'
        for i in range(5)
    )
    rows = []
    for concurrency in (1, 4, 8):
        times = []
        for k in range(repeat):
            case = root / f"scratch-{concurrency}-{k}"
            config = root / f"scratch-{concurrency}-{k}.toml"
            text = site.config_text().replace(str(site.root / "state"), str(case / "state"))
            config.write_text(
                text
                + certs_keys(case, pebble, sites, concurrency)
                + 'exclude = ["fishfinger.example.org"]\n'
            )
            r = responder(config)
            try:
                start = time.perf_counter()
                done = subprocess.run(certs_argv(config, "--json"), capture_output=True, text=True)
                times.append(time.perf_counter() - start)
            finally:
                r.terminate()
                r.wait()
            names = json.loads(done.stdout)["names"]
            assert len(names) == 20 and all(n["action"] == "obtained" for n in names), done.stdout
        median = sorted(times)[len(times) // 2]
        rows.append(
            f"| 20 names, concurrency {concurrency} | {repeat} | {median:.2f} s "
            f"| {min(times):.2f}-{max(times):.2f} s |"
        )
    return rows


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=20, help="runs per no-change case")
    p.add_argument("--repeat", type=int, default=3, help="from-scratch runs per concurrency")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kissha-bench-certs-", dir="/tmp"))
    dns = ChallTestSrv().start()
    pebble = Pebble(root / "pebble", http_port=80, dns="127.0.0.1:8053").start()
    try:
        print_heading("What kissha certs costs")
        with LoopbackSite(root / "site") as site:
            print_table(
                "A daily run with nothing due, against a no-change failover run",
                RUN_COLUMNS,
                bench_nothing_due(site, pebble, args.runs),
            )
            print_table(
                "20 names from scratch on pebble (loopback, PEBBLE_VA_NOSLEEP=1)",
                ("case", "runs", "wall (median)", "range"),
                bench_scratch(root, pebble, site, args.repeat),
            )
    finally:
        pebble.stop()
        dns.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
