"""kissha daemon on the two-node lab: one daemon per node at interval 1 s, as a service
manager would run it; what both nameservers answer the client; SIGTERM and SIGHUP.

Times are printed (``pytest -s`` shows them), never asserted: ``bench/run-daemon``
measures them. Every wait is bounded. tests/integration/test_daemon.py covers the
daemon's metrics and cron runs beside it on loopback.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator

import pytest

from lab.netlab import Lab

pytestmark = pytest.mark.e2e

NODES = ("fishfinger", "blowfish")
WAIT = 30.0  # the bound of every wait: seconds
STEP = 0.2


@pytest.fixture
def lab(isolation: None) -> Iterator[Lab]:
    """The lab with rotation off: daemons run at the real time, which --now cannot pin."""
    Lab.cleanup_stale()
    with Lab(rotation="off") as built:
        yield built
    assert not built.teardown_problems, built.teardown_problems
    assert not built.leftovers(), built.leftovers()


def eventually(check: Callable[[], bool], seconds: float = WAIT) -> float | None:
    """Seconds until check() held, polling every STEP; None if it never did."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if check():
            return time.monotonic() - start
        time.sleep(STEP)
    return None


def state(lab: Lab, node: str) -> dict:
    path = lab.node_root(node) / "state" / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def last_run(lab: Lab, node: str) -> float:
    return float(state(lab, node).get("last_run", {}).get("time", 0.0))


def events(lab: Lab, node: str) -> list[str]:
    return [e["kind"] for e in state(lab, node).get("events", [])]


def rounds_pass(lab: Lab, count: int) -> bool:
    """Whether every daemon saves the state of ``count`` more rounds (within WAIT)."""
    seen = {n: {last_run(lab, n)} for n in NODES}

    def done() -> bool:
        for n in NODES:
            seen[n].add(last_run(lab, n))
        return all(len(times) > count for times in seen.values())

    return eventually(done) is not None


def logs(lab: Lab) -> str:
    return "\n".join(f"--- {n}\n{lab.daemon_log(n)}" for n in NODES)


def start_daemons(lab: Lab) -> None:
    for node in NODES:
        lab.start_daemon(node, "--interval", "1")
    assert eventually(lambda: all(last_run(lab, n) for n in NODES)), logs(lab)


def stop_daemons(lab: Lab) -> None:
    """SIGTERM each daemon: the round in progress finishes, then exit 0."""
    for node in NODES:
        assert lab.stop_daemon(node, timeout=WAIT) == 0, logs(lab)
        log = lab.daemon_log(node)
        assert log.rstrip().endswith("daemon stopped"), log
        assert "Traceback" not in log, log


def test_daemons_fail_over_and_back_then_stop_on_sigterm(lab: Lab) -> None:
    before = {n: lab.zone_path(n, "example.org").read_bytes() for n in NODES}
    start_daemons(lab)
    # Steady state: rounds happen, nothing is rewritten.
    assert rounds_pass(lab, 3), logs(lab)
    assert {n: lab.zone_path(n, "example.org").read_bytes() for n in NODES} == before
    assert all(events(lab, n) == [] for n in NODES), logs(lab)
    assert "daemon: changed:" not in logs(lab)
    assert lab.all_point_at("fishfinger")

    lab.stop("fishfinger", "web")  # scenario 2's fault
    took = eventually(lambda: lab.all_point_at("blowfish"))
    assert took is not None, logs(lab)
    print(f"daemons at 1 s: web killed -> both nameservers answer blowfish: {took:.1f} s")
    for node in NODES:
        assert events(lab, node)[-2:] == ["node-down", "failover"], logs(lab)

    lab.start("fishfinger", "web")
    took = eventually(lambda: lab.all_point_at("fishfinger"))
    assert took is not None, logs(lab)
    print(f"daemons at 1 s: web back -> both nameservers answer fishfinger: {took:.1f} s")
    for node in NODES:
        assert events(lab, node)[-2:] == ["node-up", "failover"], logs(lab)

    stop_daemons(lab)
    for node in NODES:
        st = state(lab, node)
        assert st["roles"]["master"] == "fishfinger"
        assert st["counters"]["failovers"] == 2
        assert not (lab.node_root(node) / "state" / "journal.json").exists()
        # The lock is free: a cron run right after does its work (4 = lock held).
        r = lab.kissha(node, "failover")
        assert r.returncode in (0, 1), r.stdout + r.stderr
    assert lab.all_point_at("fishfinger")


def test_sighup_keeps_a_broken_config_and_takes_a_good_one(lab: Lab) -> None:
    start_daemons(lab)
    good = {n: lab.config_path(n).read_text() for n in NODES}
    broken = good["fishfinger"].replace('rotation = "off"', 'rotation = "fortnightly"')
    assert broken != good["fishfinger"]
    lab.config_path("fishfinger").write_text(broken)
    lab.daemon("fishfinger").send_signal(signal.SIGHUP)
    assert eventually(lambda: "keeping the old config" in lab.daemon_log("fishfinger"))
    line = next(x for x in lab.daemon_log("fishfinger").splitlines() if "keeping" in x)
    assert "reload: " in line and "rotation: " in line, line
    assert lab.daemon("fishfinger").poll() is None
    # Rounds go on with the old config.
    assert rounds_pass(lab, 2), logs(lab)
    assert lab.all_point_at("fishfinger")

    # A good, changed config on both nodes: blowfish leads now, no health failure needed.
    for node in NODES:
        text = good[node].replace('default_master = "fishfinger"', 'default_master = "blowfish"')
        assert text != good[node]
        lab.config_path(node).write_text(text)
        lab.daemon(node).send_signal(signal.SIGHUP)
    took = eventually(lambda: lab.all_point_at("blowfish"))
    assert took is not None, logs(lab)
    print(f"SIGHUP with default_master = blowfish -> both nameservers answer it: {took:.1f} s")
    for node in NODES:
        assert "loaded; a round every 1 s" in lab.daemon_log(node)
        assert events(lab, node) == ["failover"], logs(lab)
    stop_daemons(lab)
