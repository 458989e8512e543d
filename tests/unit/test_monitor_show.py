"""The monitor shown: metrics, the Nagios line, status's and the page's sections."""

from __future__ import annotations

from kissha.core.model import Roles
from kissha.monitor import logic, metrics, render
from kissha.monitor.model import CheckSpec
from kissha.monitor.report import MonitorReport
from kissha.monitor.run import Shown
from kissha.observe import pagehtml, statustext, verdict

T0 = 1_795_000_000.0


def report() -> MonitorReport:
    specs = [
        CheckSpec("ping/b/ipv4", "ping", node="b"),
        CheckSpec("http/x/ipv4", "http", depends=("ping/b/ipv4",)),
        CheckSpec("disk", "disk", scope="local"),
    ]
    book = logic.Book(
        checks={
            "ping/b/ipv4": {
                "state": 2,
                "text": "PING CRITICAL - 100% packet loss",
                "since": T0,
                "last_seen": T0,
                "duration": 3.0,
                "perf": ["rta=0ms;100;500;0", "pl=100%;20;60;0"],
            },
            "http/x/ipv4": {"dependent_on": "ping/b/ipv4", "last_seen": T0, "state": 0},
            "disk": {"state": 0, "text": "DISK OK", "last_seen": T0, "since": T0, "duration": 0.01},
        },
        last_run={"time": T0},
    )
    return MonitorReport(T0, "a", specs, book, logic.states_now(book, specs, T0, 900), ran=False)


def test_metrics_per_check_state_duration_perfdata() -> None:
    text = metrics.render(report())
    assert 'kissha_check_state{check="ping/b/ipv4",kind="ping"} 2' in text
    assert 'kissha_check_state{check="http/x/ipv4"' not in text
    assert 'kissha_check_waiting{check="http/x/ipv4"} 1' in text
    assert 'kissha_check_duration_seconds{check="ping/b/ipv4"} 3.0' in text
    assert 'kissha_check_perfdata{check="ping/b/ipv4",label="pl",uom="%"} 100.0' in text
    assert f"kissha_monitor_last_run_timestamp_seconds {T0!r}" in text


def test_nagios_line() -> None:
    r = report()
    assert render.nagios_line(r) == (
        "KISSHA MONITOR CRITICAL - CRITICAL ping/b/ipv4 (PING CRITICAL - 100% packet loss) | "
        "critical=1;;;0 warning=0;;;0 unknown=0;;;0 stale=0;;;0 flapping=0;;;0 ok=1;;;0 "
        "dependent=1;;;0"
    )
    assert render.nagios_level(r) == 2
    assert "waiting on a dependency" in render.text(r)


def test_status_text_json_and_page_show_the_checks() -> None:
    checks = (
        Shown("ping/b/ipv4", "CRITICAL", T0, "PING CRITICAL - 100% packet loss"),
        Shown("disk", "OK", T0, "DISK OK"),
    )
    obs = verdict.Observation(T0, (), (), ("a", "b"), T0, 600, Roles("a", "b"), checks=checks)
    rep = verdict.Report(obs, verdict.judge(obs))
    text = statustext.text(rep)
    assert "checks (kissha monitor): 1 of 2 OK\n  CRITICAL  ping/b/ipv4 since 2026-" in text
    assert statustext.as_json(rep)["checks"][0] == {
        "id": "ping/b/ipv4",
        "state": "CRITICAL",
        "since": "2026-11-18T11:06:40Z",
        "output": "PING CRITICAL - 100% packet loss",
    }
    html = pagehtml._checks(checks)
    assert "1 of 2 checks OK." in html and "ping/b/ipv4" in html and "DISK OK" not in html
