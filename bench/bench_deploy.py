"""kissha deploy and publish to the two lab nodes over real SSH (an sshd per node in its
namespace, as tests/e2e/test_deploy_lab.py), from the client namespace.

Run with ``bench/run-deploy`` (it enters a private network namespace). Prints Markdown.

- from scratch: both nodes' roots are emptied, then one deploy (every rendered file and
  the zones) and one publish of a small site;
- no change: the same deploy and publish again, nothing to do.

Wall time is the whole command (Python start, render, SSH connections, both nodes in
turn). Bytes are the client namespace's interface counters (received + sent, SSH and
TCP overhead included); files are what the report lists.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from lab.netlab import Lab

# The lab test's sshd per node, not duplicated here (tests/ has no py.typed).
from tests.e2e.test_deploy_lab import NODES, SRC, _listening, _sshd  # type: ignore[import-untyped]


def _bytes(lab: Lab) -> int:
    """Received + sent bytes on the client namespace's interfaces but loopback."""
    out = lab.exec("client", ["cat", "/proc/net/dev"]).stdout
    total = 0
    for line in out.splitlines()[2:]:
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            continue
        fields = rest.split()
        total += int(fields[0]) + int(fields[8])
    return total


def _config(tmp: Path, lab: Lab) -> Path:
    shutil.copytree(SRC / "zones", tmp / "zones")
    site = tmp / "www/example.org"
    site.mkdir(parents=True)
    for i in range(20):  # a small site: 20 pages of 4 KiB, one 256 KiB file
        (site / f"page{i}.html").write_text(f"<p>{i}</p>\n" * 400)
    (site / "big.bin").write_bytes(bytes(range(256)) * 1024)
    a, b = (lab.address(n, "ipv4") for n in NODES)
    config = tmp / "kissha.toml"
    config.write_text(
        (SRC / "debian.toml")
        .read_text()
        .replace(
            'flavour = "debian"',
            f'flavour = "debian"\nroot = "{tmp}/root/{{node}}"\n'
            f'hosts = {{ fishfinger = "{a}", blowfish = "{b}" }}\n'
            f'ssh_key = "{tmp}/id"\nknown_hosts = "{tmp}/known_hosts"\n'
            f'web_source = "{tmp}/www"\n'
            "[deploy.reload]\n"
            + "".join(
                f'"{s}" = ["true"]\n' for s in ("nsd", "nginx", "molly-brown@kissha", "systemd")
            ),
        )
    )
    return config


def _measure(lab: Lab, config: Path, command: str) -> tuple[float, int, int, int]:
    """wall seconds, bytes, files in the report, exit code"""
    prof = os.environ.get("KISSHA_BENCH_PROFILE")  # a file: cProfile output of each run
    pre = ["-m", "cProfile", "-o", f"{prof}.{command}.{time.monotonic_ns()}"] if prof else []
    argv = [sys.executable, *pre, "-m", "kissha", "-c", str(config), command]
    before = _bytes(lab)
    start = time.monotonic()
    done = lab.exec("client", argv, timeout=300)
    wall = time.monotonic() - start
    moved = _bytes(lab) - before
    if done.returncode not in (0, 1):
        raise SystemExit(f"{command} failed ({done.returncode}): {done.stdout}{done.stderr}")
    files = sum(1 for line in done.stdout.splitlines() if line.startswith("  /"))
    return wall, moved, files, done.returncode


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    Lab.cleanup_stale()
    rows: dict[str, list[tuple[float, int, int, int]]] = {}
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="kissha-bench-deploy-") as t:
        tmp = Path(t)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "id")],
            check=True, timeout=30,
        )  # fmt: skip
        servers = [_sshd(lab, n, tmp, tmp / "id.pub") for n in NODES]
        try:
            deadline = time.monotonic() + 10
            while not all(_listening(lab, n) for n in NODES) and time.monotonic() < deadline:
                time.sleep(0.1)
            config = _config(tmp, lab)
            for _ in range(args.runs):
                shutil.rmtree(tmp / "root", ignore_errors=True)
                for label, command in (
                    ("deploy, from scratch", "deploy"),
                    ("publish, from scratch", "publish"),
                    ("deploy, no change", "deploy"),
                    ("publish, no change", "publish"),
                ):
                    rows.setdefault(label, []).append(_measure(lab, config, command))
        finally:
            for server in servers:
                server.terminate()
                server.wait(10)
    print(f"# deploy and publish to the two lab nodes ({args.runs} runs, medians)\n")
    print("| what | exit | wall | bytes on the wire | files (both nodes) |")
    print("|---|---|---|---|---|")
    for label, samples in rows.items():
        wall = statistics.median(s[0] for s in samples)
        moved = statistics.median(s[1] for s in samples)
        files = statistics.median(s[2] for s in samples)
        codes = sorted({s[3] for s in samples})
        print(
            f"| {label} | {','.join(map(str, codes))} | {wall:.2f} s | "
            f"{moved / 1024:.0f} KiB | {files:g} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
