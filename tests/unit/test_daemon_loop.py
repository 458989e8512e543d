"""The daemon loop in-process with a stand-in runner: failures never stop it."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from kissha import config as configmod
from kissha.config import Config
from kissha.core.model import Decision, Node, NodeHealth, ProbeResult, Roles
from kissha.core.report import Outcome, RunReport
from kissha.core.zonefile import ZonePlan, plan_zone
from kissha.engine.daemon import Daemon, one_line
from kissha.engine.failover import Prober
from kissha.errors import LockHeld, ZoneError

CONFIG = Path(__file__).resolve().parent.parent / "config" / "good-minimal.toml"


def config_in(tmp_path: Path) -> Path:
    """good-minimal.toml with its state in tmp_path, never in /var/lib/kissha."""
    path = tmp_path / "kissha.toml"
    path.write_text(f'state_dir = "{tmp_path / "state"}"\n' + CONFIG.read_text())
    return path


def report(exit_changed: bool) -> RunReport:
    roles = Roles("fishfinger", "blowfish")
    decision = Decision(roles, {"fishfinger": NodeHealth()})
    if not exit_changed:
        return RunReport(0.0, False, (), decision, roles, 1, (), Outcome.UNCHANGED, QUIET)
    return RunReport(0.0, False, (), decision, roles, 1, (plan(),), Outcome.CHANGED, CHANGED)


QUIET = "every zone already points right"
CHANGED = "1 zone(s) changed"


def plan() -> ZonePlan:
    """A real change of one zone: www moves from blowfish to fishfinger."""
    text = (
        "$ORIGIN example.org.\n@ IN SOA ns. host. 1700000000 1h 15m 1w 1h\n"
        "www 300 IN A 198.51.100.12 ; Enable failover\n"
    )
    nodes = {
        "master": Node("fishfinger", "fishfinger.example.org", "198.51.100.11"),
        "standby": Node("blowfish", "blowfish.example.org", "198.51.100.12"),
    }
    p = plan_zone("example.org.", Path("example.org.zone"), text, nodes, now=1.8e9)
    assert p.changed
    return p


def test_rounds_survive_lock_errors_and_crashes(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    outcomes: list[object] = [
        LockHeld("another kissha run holds /x/lock (pid 1)"),
        ZoneError("a.zone: broken"),
        RuntimeError("boom"),
        report(True),
        report(False),
        report(False),
    ]
    calls: list[float] = []

    def runner(config: Config, now: float, prober: Prober) -> RunReport:
        assert prober(config.nodes, config.health, None) == []  # the round's results
        calls.append(now)
        outcome = outcomes.pop(0)
        if not outcomes:
            daemon.stopping = True
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, RunReport)
        return outcome

    daemon = Daemon(
        config_in(tmp_path),
        configmod.load(config_in(tmp_path)),
        interval=0.01,
        runner=runner,
        prober=lambda *_: [],
    )
    with caplog.at_level(logging.INFO, logger="kissha.engine.daemon"):
        assert daemon.serve() == 0
    assert len(calls) == 6
    text = caplog.text
    assert "trying again at the next tick" in text
    assert "round failed: a.zone: broken" in text
    assert "round failed: internal error: RuntimeError: boom" in text
    assert "changed: 1 zone(s) changed; master fishfinger, standby blowfish" in text
    # the first quiet round after a change is logged (the outcome changed), the next is not
    assert text.count("unchanged:") == 1


def test_reload_keeps_the_old_config_on_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "kissha.toml"
    path.write_text(CONFIG.read_text() + "\n[daemon]\ninterval = 5\n")
    daemon = Daemon(path, configmod.load(path))
    assert daemon.interval == 5
    path.write_text(CONFIG.read_text() + "\n[daemon]\ninterval = -1\n")
    with caplog.at_level(logging.INFO, logger="kissha.engine.daemon"):
        assert daemon.reload() is False
    assert "daemon.interval: must be > 0, not -1.0; keeping the old config" in caplog.text
    assert daemon.interval == 5
    path.write_text(CONFIG.read_text() + "\n[daemon]\ninterval = 2\n")
    assert daemon.reload() is True
    assert daemon.interval == 2


def test_one_line() -> None:
    assert one_line("a: 2 problems:\n  x\n  y\n") == "a: 2 problems:; x; y"


def test_a_busy_metrics_port_is_a_config_error(tmp_path: Path) -> None:
    import signal
    import socket

    from kissha.errors import ConfigError

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        path = tmp_path / "kissha.toml"
        path.write_text(CONFIG.read_text() + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
        before = signal.getsignal(signal.SIGTERM)
        with pytest.raises(ConfigError, match=r"metrics\.listen: cannot listen on 127\.0\.0\.1"):
            Daemon(path, configmod.load(path)).serve()
        assert signal.getsignal(signal.SIGTERM) == before


def test_probe_rounds_overlap_and_the_engine_takes_them_in_tick_order(tmp_path: Path) -> None:
    """A probe round that outlasts the interval (a black hole) does not hold back the
    next ticks' rounds; the engine still takes the results in tick order."""
    started: list[int] = []
    released = threading.Event()
    overlapped: list[bool] = []

    def prober(*_: object) -> list[ProbeResult]:
        n = len(started)
        started.append(n)
        if n == 0:  # hangs until the third tick's round has started beside it
            overlapped.append(released.wait(10))
        elif n == 2:
            released.set()
        return [ProbeResult("fishfinger", f"round{n}", "ipv4", "", True, "", True)]

    taken: list[str] = []

    def runner(config: Config, now: float, given: Prober) -> RunReport:
        taken.append(given(config.nodes, config.health, None)[0].probe)
        if len(taken) == 4:
            daemon.stopping = True
        return report(False)

    path = config_in(tmp_path)
    daemon = Daemon(path, configmod.load(path), interval=0.01, runner=runner, prober=prober)
    assert daemon.serve() == 0
    assert overlapped == [True]
    assert taken == ["round0", "round1", "round2", "round3"]
