"""kissha daemon with [certs]: a certs run in its own thread, at most once an hour."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from kissha import config as configmod
from kissha.certs.report import NameResult, Report
from kissha.config import Config
from kissha.core.model import Decision, Roles
from kissha.core.report import RunReport
from kissha.engine.daemon import Daemon
from kissha.engine.failover import Prober

CONFIG = Path(__file__).resolve().parent.parent / "config" / "good-sites.toml"


def test_certs_run_once_an_hour_beside_the_rounds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "kissha.toml"
    state = f'state_dir = "{tmp_path / "state"}"\n'  # never /var/lib/kissha
    path.write_text(state + CONFIG.read_text() + '\n[certs]\nnode = "blowfish"\n')
    rounds: list[float] = []
    certs: list[str] = []
    done = threading.Event()

    def runner(config: Config, now: float, prober: Prober) -> RunReport:
        rounds.append(now)
        if len(rounds) == 5:
            daemon.stopping = True
        roles = Roles("fishfinger", "blowfish")
        return RunReport(now, False, (), Decision(roles, {}), roles)

    def certs_runner(config: Config, now: float) -> Any:
        certs.append(threading.current_thread().name)
        report = Report("blowfish", "every-node", "x", False)
        report.names = [
            NameResult("example.org", "site", "failed", "no certificate", error="CA: down")
        ]
        done.set()
        return report

    daemon = Daemon(path, configmod.load(path), interval=0.01, runner=runner, prober=lambda *_: [])
    daemon.certs_runner = certs_runner
    with caplog.at_level(logging.INFO, logger="kissha.engine.daemon"):
        assert daemon.serve() == 0
    assert done.wait(5)
    assert len(rounds) == 5
    assert certs == ["certs"]  # once, in its own thread
    assert "certs: failed example.org: no certificate: CA: down" in caplog.text
