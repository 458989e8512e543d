"""kissha monitor with real plugin processes and a real webhook receiver on loopback:
timeouts, retries, the daily re-notification, staleness, quiet hours, flapping and a
damaged state file. Only plugin checks (``defaults = false``): nothing leaves the host.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lab.sink import Sink

DAY1 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # a Tuesday


def at(when: datetime | timedelta) -> str:
    moment = when if isinstance(when, datetime) else DAY1 + when
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Setup:
    def __init__(self, root: Path, sink: Sink) -> None:
        self.root, self.sink = root, sink
        (root / "zones").mkdir()
        (root / "state").mkdir()
        self.plugins = root / "plugins"
        self.plugins.mkdir()
        self.script("ok", 'echo "OK - fine|answer=42s;50;60;0"; exit 0')
        # exit code from a file the test writes: a service going up and down
        self.script(
            "switch", f'n=$(cat {root}/switch 2>/dev/null || echo 0); echo "switch $n"; exit $n'
        )
        # a plugin that hangs with a child of its own, whose PIDs the test can look at
        self.script("hang", f"sleep 60 & echo $$ $! >> {root}/hang.pids; wait")
        # fails its first attempt only
        self.script(
            "flaky",
            f'if [ -e {root}/flaky.seen ]; then echo "OK - second try"; exit 0; fi\n'
            f'touch {root}/flaky.seen; echo "CRITICAL - first try"; exit 2',
        )
        self.switch(0)

    def script(self, name: str, body: str) -> None:
        path = self.plugins / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    def switch(self, code: int) -> None:
        (self.root / "switch").write_text(str(code))

    def configure(self, monitor: str, checks: str) -> None:
        assert self.sink.http is not None
        (self.root / "kissha.toml").write_text(
            f"""
state_dir = "{self.root / "state"}"
[nodes.fishfinger]
fqdn = "fishfinger.example.org"
ipv4 = "198.51.100.11"
[nodes.blowfish]
fqdn = "blowfish.example.org"
ipv4 = "198.51.100.12"
[dns]
zones_dir = "{self.root / "zones"}"
[notify]
node = "fishfinger"
timeout = 5
[[notify.webhook]]
name = "hook"
url = "http://127.0.0.1:{self.sink.http[1]}/k"
[monitor]
defaults = false
timezone = "UTC"
retries = 0
{monitor if "flap_changes" in monitor else monitor + chr(10) + "flap_changes = 0"}
{checks}
"""
        )

    def check(self, cid: str, plugin: str, extra: str = "") -> str:
        return f'[[monitor.checks]]\nid = "{cid}"\nargv = ["{self.plugins / plugin}"]\n{extra}\n'

    def run(
        self, when: datetime | timedelta, *args: str, code: int = 0
    ) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "kissha", "-c", str(self.root / "kissha.toml"), "monitor"]
        r = subprocess.run(
            [*argv, *args, "--now", at(when)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert r.returncode == code, r.stdout + r.stderr
        return r

    def json(self, when: datetime | timedelta) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.run(when, "--json").stdout)
        return data

    def titles(self) -> list[str]:
        return [json.loads(m.body)["title"] for m in self.sink.of("http")]


@pytest.fixture
def setup(short_tmp: Path) -> Iterator[Setup]:
    with Sink(http=("127.0.0.1", 0)) as sink:
        yield Setup(short_tmp, sink)


def by_id(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in data["checks"]}


def _alive(pid: int) -> bool:
    """A process that still runs (a zombie waiting to be reaped has stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_a_hanging_plugin_is_critical_after_its_timeout_and_the_run_stays_bounded(
    setup: Setup,
) -> None:
    setup.configure(
        "",
        setup.check("hang", "hang", "timeout = 2\nretries = 1\nretry_interval = 0.5")
        + setup.check("ok", "ok"),
    )
    started = time.monotonic()
    data = setup.json(timedelta(0))
    took = time.monotonic() - started
    checks = by_id(data)
    assert checks["hang"]["state"] == "CRITICAL"
    assert checks["hang"]["output"] == "timeout: hang ran over 2 s"
    assert checks["hang"]["attempts"] == 2
    assert checks["ok"]["state"] == "OK" and checks["ok"]["perfdata"] == ["answer=42s;50;60;0"]
    assert took < 2 * 2 + 0.5 + 3  # two attempts, the interval, start-up
    # Its process group was killed: neither attempt's shell nor its sleep is left behind
    # (looked up by PID: other processes on the machine may run a "sleep 60" of their own).
    pids = [int(pid) for pid in (setup.root / "hang.pids").read_text().split()]
    assert len(pids) == 4
    assert [pid for pid in pids if _alive(pid)] == []
    assert [t.split(" [")[0] for t in setup.titles()] == [
        "kissha monitor (fishfinger): CRITICAL hang"
    ]


def test_retries_absorb_one_failed_attempt(setup: Setup) -> None:
    setup.configure("", setup.check("flaky", "flaky", "retries = 1\nretry_interval = 0.2"))
    c = by_id(setup.json(timedelta(0)))["flaky"]
    assert (c["state"], c["attempts"], c["output"]) == ("OK", 2, "OK - second try")
    assert setup.titles() == []
    (setup.root / "flaky.seen").unlink()
    setup.configure("", setup.check("flaky", "flaky"))  # no retry: the failure counts
    assert by_id(setup.json(timedelta(minutes=5)))["flaky"]["state"] == "CRITICAL"


def test_a_report_the_channel_refuses_as_too_large_is_told_once_with_a_warning(
    setup: Setup,
) -> None:
    # HTTP 413: the same report would be refused at every run; it counts as told (given
    # up), the run says so, and the next run does not try it again.
    setup.sink.max_size = 100  # bytes: every report is larger
    setup.configure("", setup.check("svc", "switch"))
    setup.switch(2)
    data = setup.json(timedelta(0))
    assert data["warnings"] == [
        "monitor: notify: webhook hook: HTTP 413 Request Entity Too Large"
    ], data["warnings"]
    data = setup.json(timedelta(minutes=5))
    assert data["told"] == [] and data["warnings"] == []


def test_daily_renotification_and_stale_checks_with_now(setup: Setup) -> None:
    setup.configure('renotify = "07:00"\nstale_after = "15m"', setup.check("svc", "switch"))
    setup.switch(2)
    setup.run(timedelta(0))  # day 1, 10:00: told
    setup.run(timedelta(minutes=5))  # still broken: nothing new
    assert len(setup.titles()) == 1
    setup.run(DAY1.replace(hour=23))  # before the next 07:00: nothing
    assert len(setup.titles()) == 1
    setup.run(DAY1 + timedelta(days=1, hours=-2, minutes=30))  # day 2, 08:30: reminded
    titles = setup.titles()
    assert len(titles) == 2 and titles[1].startswith(
        "kissha monitor (fishfinger): still broken: 1 check"
    )
    body = json.loads(setup.sink.of("http")[1].body)
    assert body["report"] == "renotify" and body["broken"][0]["check"] == "svc"
    setup.run(DAY1 + timedelta(days=1, hours=-1))  # once a day only
    assert len(setup.titles()) == 2
    # Nobody ran the monitor since: an outside monitor sees its checks go stale.
    later = DAY1 + timedelta(days=1, hours=1)
    r = setup.run(later, "--nagios", code=1)
    assert r.stdout.startswith("KISSHA MONITOR WARNING - STALE svc (not run for too long)"), (
        r.stdout
    )


def test_a_check_cut_off_by_the_run_deadline_goes_stale_and_is_told(setup: Setup) -> None:
    setup.configure(
        'concurrency = 1\ndeadline = "1s"\nstale_after = "15m"',
        setup.check("hang", "hang", "timeout = 2") + setup.check("late", "ok"),
    )
    first = by_id(setup.json(timedelta(0)))
    assert first["late"]["state"] == "PENDING" and not first["late"]["ran"]
    setup.run(timedelta(minutes=20))
    titles = [t.split(" [")[0] for t in setup.titles()]
    assert titles == [
        "kissha monitor (fishfinger): CRITICAL hang",
        "kissha monitor (fishfinger): STALE late",
    ]
    assert (
        "Stale (not run for too long): late"
        in json.loads(setup.sink.of("http")[-1].body)["message"]
    )


def test_quiet_hours_hold_a_change_until_they_end(setup: Setup) -> None:
    setup.configure('quiet = ["22:00-07:00"]', setup.check("svc", "switch"))
    setup.run(DAY1.replace(hour=21))
    setup.switch(2)
    setup.run(DAY1.replace(hour=23))
    assert setup.titles() == []
    setup.run(DAY1 + timedelta(hours=20))  # 06:00 next day: still quiet
    assert setup.titles() == []
    setup.run(DAY1 + timedelta(hours=21, minutes=5))  # 07:05
    assert [t.split(" [")[0] for t in setup.titles()] == [
        "kissha monitor (fishfinger): CRITICAL svc"
    ]


def test_a_change_that_comes_and_goes_within_quiet_hours_is_never_told(setup: Setup) -> None:
    setup.configure('quiet = ["22:00-07:00"]', setup.check("svc", "switch"))
    setup.run(DAY1.replace(hour=21))
    setup.switch(2)
    setup.run(DAY1.replace(hour=23))
    setup.switch(0)
    setup.run(DAY1 + timedelta(hours=20))
    setup.run(DAY1 + timedelta(hours=22))
    assert setup.titles() == []


def test_flapping_is_told_once_then_held_until_it_settles(setup: Setup) -> None:
    setup.configure("flap_changes = 3\nflap_window = 6", setup.check("svc", "switch"))
    for i, code in enumerate([0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0, 0]):
        setup.switch(code)
        setup.run(timedelta(minutes=5 * i))
    titles = [t.split(" [")[0] for t in setup.titles()]
    assert titles == [
        "kissha monitor (fishfinger): CRITICAL svc",
        "kissha monitor (fishfinger): OK svc",
        "kissha monitor (fishfinger): FLAPPING svc",
        "kissha monitor (fishfinger): OK svc",
    ], titles


def test_a_damaged_state_file_is_set_aside_with_a_warning(setup: Setup) -> None:
    setup.configure("", setup.check("ok", "ok"))
    (setup.root / "state" / "monitor.json").write_text("{not json")
    r = setup.run(timedelta(0))
    (aside,) = (setup.root / "state").glob("monitor.json.bad-*")
    assert f"set aside as {aside.name}" in r.stdout
    assert aside.read_text() == "{not json"
    assert json.loads((setup.root / "state" / "monitor.json").read_text())["version"] == 1


def test_unknown_dependency_is_a_config_error(setup: Setup) -> None:
    setup.configure("", setup.check("ok", "ok", 'depends = ["nope"]'))
    r = setup.run(timedelta(0), code=2)
    assert "ok: depends on 'nope', which is no check" in r.stderr
    r = setup.run(timedelta(0), "--nagios", code=3)
    assert r.stdout.startswith("KISSHA MONITOR UNKNOWN - ")
