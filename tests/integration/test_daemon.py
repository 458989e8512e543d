"""kissha daemon against a real nsd and real HTTPS node servers on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.site import LoopbackSite
from tests.unit.test_metrics import parse, values

pytestmark = pytest.mark.integration

A_FISH, A_BLOW = "127.0.0.11", "127.0.0.12"
WAIT = 20.0  # generous bounds: no timing assertions, only "eventually"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def configure(site: LoopbackSite, extra: str = "") -> Path:
    """No weekly rotation (the daemon runs at the real time); metrics to a textfile."""
    prom = site.root / "textfile" / "kissha.prom"
    prom.parent.mkdir(exist_ok=True)
    text = site.config_path.read_text().replace('rotation = "weekly"', 'rotation = "off"')
    text += f'\n[metrics]\ntextfile = "{prom}"\n{extra}'
    site.config_path.write_text(text)
    return prom


@contextlib.contextmanager
def daemon(site: LoopbackSite, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    log = site.root / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kissha", "-c", str(site.config_path), "daemon", *args],
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def eventually(check: Callable[[], bool], seconds: float = WAIT) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM: the round in progress finishes, then exit 0."""
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=WAIT) == 0, log.read_text()


def metrics_of(path: Path) -> dict[str, dict[str, float]]:
    families = parse(path.read_text())
    return {name: values(families, name) for name in families}


def test_daemon_fails_over_serves_metrics_and_stops_on_sigterm(site: LoopbackSite) -> None:
    port = free_port()
    prom = configure(site, f'listen = "127.0.0.1:{port}"\n')
    with daemon(site, "--interval", "0.2") as (proc, log):
        assert eventually(prom.exists), log.read_text()
        m = metrics_of(prom)
        assert m["kissha_master"]["node=fishfinger"] == 1
        assert m["kissha_probe_success"]["node=blowfish,family=ipv6,probe=https"] == 1
        assert site.answers("www.example.org", "A") == {A_FISH}

        site.stop_web("fishfinger")
        failed_over = eventually(lambda: site.answers("www.example.org", "A") == {A_BLOW})
        assert failed_over, log.read_text()
        assert eventually(lambda: metrics_of(prom)["kissha_failovers_total"] == {"": 1})
        m = metrics_of(prom)
        assert m["kissha_master"] == {"node=fishfinger": 0, "node=blowfish": 1}
        assert m["kissha_node_up"]["node=fishfinger"] == 0

        def served() -> bool:
            url = f"http://127.0.0.1:{port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as r:
                return "kissha_failovers_total 1" in r.read().decode()

        assert eventually(served)
        # A client that connects and says nothing stalls neither scrapes nor SIGTERM.
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            assert served()
            stop(proc, log)
    text = log.read_text()
    assert "changed: 6 zone(s) changed, reloaded and verified; master blowfish" in text
    assert "daemon stopped" in text
    assert "Traceback" not in text


def test_sighup_with_a_broken_config_keeps_the_old_one(site: LoopbackSite) -> None:
    prom = configure(site)
    with daemon(site, "--interval", "0.2") as (proc, log):
        assert eventually(prom.exists), log.read_text()
        good = site.config_path.read_text()
        site.config_path.write_text(good + "\n[health]\nretries = -1\n")
        os.kill(proc.pid, signal.SIGHUP)
        assert eventually(lambda: "keeping the old config" in log.read_text()), log.read_text()
        assert proc.poll() is None
        # Still running rounds with the old config.
        before = metrics_of(prom)["kissha_last_run_timestamp_seconds"][""]
        assert eventually(
            lambda: metrics_of(prom)["kissha_last_run_timestamp_seconds"][""] > before
        )
        # A good config is taken.
        site.config_path.write_text(good)
        os.kill(proc.pid, signal.SIGHUP)
        assert eventually(lambda: "loaded; a round every 0.2 s" in log.read_text())
        stop(proc, log)
    assert "reload: " in log.read_text()


def test_cron_runs_alongside_the_daemon(site: LoopbackSite) -> None:
    prom = configure(site)
    with daemon(site, "--interval", "0.2") as (proc, log):
        assert eventually(prom.exists), log.read_text()
        site.stop_web("fishfinger")
        codes = set()
        for _ in range(8):
            r = site.kissha("failover")
            assert r.returncode in (0, 1, 4), r.stdout + r.stderr
            codes.add(r.returncode)
            state = json.loads((site.root / "state" / "state.json").read_text())
            assert state["version"] == 1
            parse(prom.read_text())
        assert eventually(lambda: site.answers("www.example.org", "A") == {A_BLOW})
        stop(proc, log)
    # Both wrote the one state: the failover happened exactly once.
    state = json.loads((site.root / "state" / "state.json").read_text())
    assert state["counters"]["failovers"] == 1
    assert [e["kind"] for e in state["events"]].count("failover") == 1
    leftovers = [p.name for p in (site.root / "zones").iterdir() if "kissha" in p.name]
    assert leftovers == []
    assert not (site.root / "state" / "journal.json").exists()
