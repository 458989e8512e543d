"""The monitor inside ``kissha daemon``: a run every ``[monitor] every`` seconds in a
thread of its own, so failover rounds keep their cadence while checks take their time."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kissha.config import Config

log = logging.getLogger(__name__)


class Ticker:
    def __init__(self) -> None:
        self.next = 0.0
        self.thread: threading.Thread | None = None
        self.metrics = ""  # the last run's metrics, served with the daemon's

    def tick(self, config: Config) -> None:
        """Start a monitor run when one is due and none is running."""
        every = config.monitor.every
        if not config.monitor.configured or every <= 0:
            return
        now = time.monotonic()
        if now < self.next or (self.thread is not None and self.thread.is_alive()):
            return
        self.next = now + every
        self.thread = threading.Thread(
            target=self._run, args=(config,), name="monitor", daemon=True
        )
        self.thread.start()

    def _run(self, config: Config) -> None:
        from kissha.errors import KisshaError
        from kissha.monitor import metrics, run

        try:
            report = run.run(config, time.time())
        except KisshaError as exc:
            log.warning("monitor: %s", exc)
            return
        except Exception as exc:  # the daemon goes on
            log.error("monitor: internal error: %s: %s", type(exc).__name__, exc)
            return
        self.metrics = metrics.render(report)
        for t in report.told:
            log.info(
                "monitor: told %s: %s%s",
                t.channel,
                t.subject,
                "" if t.error is None else f" (failed: {t.error})",
            )
        for w in report.warnings:
            log.warning("monitor: %s", w)
