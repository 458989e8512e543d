"""The README's main-job command works and leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def test_demo_fails_over_fails_back_and_cleans_up(isolation: None) -> None:
    # The demo's lab names its namespaces k<its pid>x<n>-<host>: exactly those must be
    # gone afterwards. (The whole list is shared with anything else running as root.)
    demo = subprocess.Popen(
        [sys.executable, "-m", "lab.demo", "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = demo.communicate(timeout=120)
    finally:
        demo.kill()
    r = subprocess.CompletedProcess(demo.args, demo.returncode, stdout, stderr)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "failover: every nameserver answers blowfish" in r.stdout or (
        "failover: every nameserver answers fishfinger" in r.stdout
    )
    assert "failback: every nameserver answers" in r.stdout
    # The operator's mail and webhook: one of each per failover and per failback.
    told = [line.split() for line in r.stdout.splitlines() if "from" in line and "kissha:" in line]
    assert sorted((t[0], t[4]) for t in told) == [
        ("mail", "failback"),
        ("mail", "failover"),
        ("webhook", "failback"),
        ("webhook", "failover"),
    ], r.stdout
    assert "exit 0: KISSHA OK - all 4 nameservers point at" in r.stdout
    assert "the lab is gone: no namespace, process or file left" in r.stdout
    assert not {ns for ns in namespaces() if ns.startswith(f"k{demo.pid}x")}
