"""kissha daemon: failover runs on a fixed cadence in one process, until SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from kissha import config as configmod
from kissha.errors import ConfigError, KisshaError, LockHeld

if TYPE_CHECKING:
    from http.server import HTTPServer

    from kissha.config import Config
    from kissha.engine.failover import RunReport

log = logging.getLogger(__name__)

# One round: kissha.engine.failover.run, or a stand-in in tests.
Runner = Callable[["Config", float], "RunReport"]


class Daemon:
    """Runs rounds at start + k * interval; signals only set flags and wake the sleep."""

    def __init__(
        self,
        config_path: Path,
        config: Config,
        *,
        interval: float | None = None,
        verbose: bool = False,
        runner: Runner | None = None,
    ) -> None:
        self.config_path = config_path
        self.config = config
        self.interval_override = interval
        self.verbose = verbose
        self.runner = runner
        self.stopping = False
        self.reloading = False
        self.metrics_text = ""  # the last rendered metrics, for the HTTP endpoint
        self._last_line: tuple[str, tuple[str, ...]] | None = None
        self._http: HTTPServer | None = None
        self._lock_held = False
        from kissha.monitor.daemon import Ticker  # small: what runs is imported when due

        self.monitor = Ticker()

    @property
    def interval(self) -> float:
        return self.interval_override or self.config.daemon.interval

    # -- signals -------------------------------------------------------------------------

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self.reloading = True

    # -- the loop ------------------------------------------------------------------------

    def serve(self) -> int:
        """Run until SIGTERM or SIGINT; the round in progress always finishes. Exit 0."""
        rfd, wfd = os.pipe()
        for fd in (rfd, wfd):
            os.set_blocking(fd, False)
        # A signal writes a byte to wfd, so select() below wakes at once, not at the tick.
        old_wakeup = signal.set_wakeup_fd(wfd)
        handlers = {
            signal.SIGTERM: self._on_stop,
            signal.SIGINT: self._on_stop,
            signal.SIGHUP: self._on_hup,
        }
        old = {s: signal.signal(s, h) for s, h in handlers.items()}
        try:
            self._start_http()
            log.info(
                "daemon started: %s, a round every %g s, pid %d",
                self.config.source or self.config_path,
                self.interval,
                os.getpid(),
            )
            self._loop(rfd)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            signal.set_wakeup_fd(old_wakeup)
            os.close(rfd)
            os.close(wfd)
            self._stop_http()
        log.info("daemon stopped")
        return 0

    def _loop(self, wake_fd: int) -> None:
        start, k = time.monotonic(), 0
        next_round = start
        while not self.stopping:
            if self.reloading:
                self.reloading = False
                if self.reload():
                    start, k = time.monotonic(), 0
                    next_round = start + self.interval
            now = time.monotonic()
            if now >= next_round:
                self.round()
                # A fixed cadence: rounds start at start + k * interval, never drifting;
                # ticks missed by a slow round are skipped, not run back to back.
                now = time.monotonic()
                k = max(k + 1, math.ceil((now - start) / self.interval))
                next_round = start + k * self.interval
                continue
            with contextlib.suppress(InterruptedError):
                select.select([wake_fd], [], [], next_round - now)
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_fd, 512):
                    pass

    def round(self) -> None:
        """One failover run; every failure is logged and the daemon goes on."""
        if self.runner is None:
            from kissha.engine.failover import run

            self.runner = run
        try:
            report = self.runner(self.config, time.time())
            self._lock_held = False
        except LockHeld as exc:
            # Once per stretch: a long cron run must not fill the journal at every tick.
            level = logging.DEBUG if self._lock_held else logging.WARNING
            log.log(level, "%s; trying again at the next tick", exc)
            self._lock_held = True
            return
        except KisshaError as exc:
            self._lock_held = False
            log.error("round failed: %s", one_line(str(exc)))
            return
        except Exception as exc:
            self._lock_held = False
            log.error("round failed: internal error: %s: %s", type(exc).__name__, exc)
            log.debug("traceback of the failed round", exc_info=True)
            return
        self._report(report)
        self.monitor.tick(self.config)  # [monitor] every: in its own thread
        if self._http is not None:
            try:
                self._update_metrics(report)
            except Exception as exc:  # stale metrics, not a dead daemon
                log.error("metrics: %s: %s", type(exc).__name__, exc)

    def _report(self, report: RunReport) -> None:
        """One compact line when a round changed something or failed, or the health or
        outcome differs from the last round; nothing on quiet rounds (unless verbose)."""
        d = report.decision
        down = tuple(sorted(n for n, h in d.health.items() if not h.up))
        key = (report.outcome, down)
        changed = report.exit_code != 0 or key != self._last_line
        self._last_line = key
        if not (changed or self.verbose):
            return
        roles = "records kept" if d.roles is None else f"master {d.roles.master}"
        if d.roles is not None and report.previous and report.previous.master != d.roles.master:
            roles += f" (was {report.previous.master})"
        if d.roles is not None:
            roles += f", standby {d.roles.standby}"
        text = (
            f"{report.outcome}: {report.message}; {roles}; "
            f"down: {', '.join(down) or 'none'} (exit {report.exit_code})"
        )
        for warning in report.warnings + report.problems:
            text += f"; warning: {one_line(warning)}"
        log.log(logging.WARNING if report.exit_code == 3 else logging.INFO, "%s", text)

    def reload(self) -> bool:
        """Read the config again; a bad one is reported and the old one kept."""
        try:
            new = configmod.load(self.config_path)
        except ConfigError as exc:
            log.error("reload: %s; keeping the old config", one_line(str(exc)))
            return False
        if new.metrics.listen != self.config.metrics.listen:
            log.warning("reload: metrics.listen changes only when the daemon restarts")
        self.config = new
        log.info("reload: %s loaded; a round every %g s", new.source, self.interval)
        return True

    # -- metrics over HTTP ---------------------------------------------------------------

    def _update_metrics(self, report: RunReport) -> None:
        from kissha.engine import state as statefile
        from kissha.observe import metrics

        if report.dry_run:
            return
        st, _ = statefile.load_readonly(self.config.state_dir)
        self.metrics_text = metrics.render(report, st)

    def _start_http(self) -> None:
        listen = self.config.metrics.listen
        if listen is None:
            return
        import socket
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from kissha.observe.metrics import CONTENT_TYPE

        daemon = self
        family = socket.AF_INET6 if ":" in listen[0] else socket.AF_INET

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # a client that connects and sends nothing is dropped

            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404, "only /metrics is here")
                    return
                body = (daemon.metrics_text + daemon.monitor.metrics).encode()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("http: " + format, *args)

        class Server(ThreadingHTTPServer):
            # One thread a scrape: a slow client stalls neither others nor shutdown().
            address_family = family
            daemon_threads = True

        try:
            self._http = Server(listen, Handler)
        except OSError as exc:
            where = f"{listen[0]}:{listen[1]}"
            raise ConfigError(
                [f"metrics.listen: cannot listen on {where}: {exc.strerror or exc}"],
                self.config.source,
            ) from None
        thread = threading.Thread(target=self._http.serve_forever, name="metrics", daemon=True)
        thread.start()
        log.info("metrics on http://%s:%d/metrics", *listen)

    def _stop_http(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


def one_line(text: str) -> str:
    """A multi-line message (a config error with many problems) as one log line."""
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())
