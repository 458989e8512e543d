"""kissha daemon: failover runs on a fixed cadence in one process, until SIGTERM.

Each tick starts a probe round in a thread; the engine (decide, plan, apply, verify)
takes the rounds' results in tick order, one run each, under the same lock and state
as cron. Probe rounds overlap when a black-holed node makes them outlast the interval:
rounds started 1 s apart finish 1 s apart, so a pulled cable is counted down in
seconds, not in rounds of (retries + 1) x timeout that each wait for the one before.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from kissha import config as configmod
from kissha.errors import ConfigError, KisshaError, LockHeld
from kissha.exits import Exit

if TYPE_CHECKING:
    from http.server import HTTPServer

    from kissha.config import Config
    from kissha.core.model import ProbeResult
    from kissha.core.report import RunReport
    from kissha.engine.failover import Prober
    from kissha.probes.tofu import ProbeContext

log = logging.getLogger(__name__)

# One engine run on a round's probe results: kissha.engine.failover.run with the
# results as its prober, or a stand-in in tests.
Runner = Callable[["Config", float, "Prober"], "RunReport"]
MAX_ROUNDS_IN_FLIGHT = 16
# With [certs]: kissha certs in a thread of its own at most this often (a run with nothing
# due costs ~0.15 s of CPU and no network), so slow orders never delay a failover round.
CERTS_EVERY = 3600.0
CERTS_JOIN = 30.0  # at SIGTERM, wait this long for a certs run to finish its orders


def _run(config: Config, now: float, prober: Prober) -> RunReport:
    from kissha.engine.failover import run

    return run(config, now, prober=prober)


class _ProbeRound:
    """One tick's probes, in a thread of their own; ``done`` is set when they are in."""

    def __init__(
        self, config: Config, prober: Prober, context: ProbeContext, wake: Callable[[], None]
    ) -> None:
        self.config = config
        self.results: list[ProbeResult] | None = None
        self.error: Exception | None = None
        self.done = threading.Event()
        self._prober, self._context, self._wake = prober, context, wake
        threading.Thread(target=self._work, daemon=True).start()

    def _work(self) -> None:
        try:
            # One TOFU context for every round (it locks): fingerprints first seen by
            # overlapping rounds are learned and written once, never over each other.
            self.results = self._prober(self.config.nodes, self.config.health, self._context)
            self._context.save()
        except Exception as exc:  # reported by the engine's thread, in order
            self.error = exc
        finally:
            self.done.set()
            self._wake()

    def given(self, *_: object) -> list[ProbeResult]:
        """The prober the engine run receives: this round's results."""
        assert self.results is not None
        return self.results


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
        prober: Prober | None = None,
    ) -> None:
        self.config_path = config_path
        self.config = config
        self.interval_override = interval
        self.verbose = verbose
        self.runner = runner or _run
        self.prober = prober
        self.stopping = False
        self.reloading = False
        self.metrics_text = ""  # the last rendered metrics, for the HTTP endpoint
        self._last_line: tuple[str, tuple[str, ...]] | None = None
        self._http: HTTPServer | None = None
        self._lock_held = False
        self._wake_lock = threading.Lock()
        self._wake_fd: int | None = None  # the self-pipe, while serve() runs
        self.certs_runner: Callable[[Config, float], Any] | None = None
        self._certs_next = 0.0
        self._certs_thread: threading.Thread | None = None
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
            self._wake_fd = wfd
            self._loop(rfd)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            signal.set_wakeup_fd(old_wakeup)
            with self._wake_lock:  # probe rounds still out must not write to a reused fd
                self._wake_fd = None
                os.close(rfd)
                os.close(wfd)
            self._stop_http()
            if self._certs_thread is not None:
                self._certs_thread.join(CERTS_JOIN)
            if self.monitor.thread is not None:  # its plugins end with it, not orphaned
                self.monitor.thread.join(self.config.monitor.deadline)
        log.info("daemon stopped")
        return 0

    def _rounds_in_flight(self) -> int:
        """Enough overlapping probe rounds to start one every tick while black holes
        make each last its longest."""
        from kissha.probes import round_limit

        longest = round_limit(self.config.health) + 1.0
        return min(MAX_ROUNDS_IN_FLIGHT, math.ceil(longest / self.interval) + 1)

    def _wake(self) -> None:
        """Wake the loop's select() (from a probe round's thread)."""
        with self._wake_lock, contextlib.suppress(OSError):
            if self._wake_fd is not None:
                os.write(self._wake_fd, b"r")

    def _loop(self, wake_fd: int) -> None:
        from kissha.probes.tofu import ProbeContext

        if self.prober is None:
            from kissha.probes import run_round

            self.prober = run_round
        context = ProbeContext.load(self.config.state_dir)
        start, k = time.monotonic(), 0
        next_round = start
        probing: deque[_ProbeRound] = deque()
        while not self.stopping:
            if self.reloading:
                self.reloading = False
                if self.reload():
                    start, k = time.monotonic(), 0
                    next_round = start + self.interval
                    probing.clear()  # rounds of the old config: their threads run out
                    context = ProbeContext.load(self.config.state_dir)
            now = time.monotonic()
            if now >= next_round:
                if len(probing) < self._rounds_in_flight():
                    probing.append(_ProbeRound(self.config, self.prober, context, self._wake))
                else:
                    log.debug("%d probe rounds still out; this tick is skipped", len(probing))
                # A fixed cadence: rounds start at start + k * interval, never drifting;
                # ticks missed by a slow engine run are skipped, not run back to back.
                k = max(k + 1, math.ceil((now - start) / self.interval))
                next_round = start + k * self.interval
            if probing and probing[0].done.is_set():
                self.round(probing.popleft())
                continue
            with contextlib.suppress(InterruptedError):
                select.select([wake_fd], [], [], max(0.0, next_round - time.monotonic()))
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_fd, 512):
                    pass

    def round(self, probes: _ProbeRound) -> None:
        """One engine run on a probe round's results; every failure is logged and the
        daemon goes on."""
        # Side duties, each in a thread of its own when due, whatever this round does.
        self._maybe_certs()
        self.monitor.tick(self.config)  # [monitor] every
        try:
            if probes.error is not None:
                raise probes.error
            report = self.runner(self.config, time.time(), probes.given)
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
        if self._http is not None:
            try:
                self._update_metrics(report)
            except Exception as exc:  # stale metrics, not a dead daemon
                log.error("metrics: %s: %s", type(exc).__name__, exc)

    def _maybe_certs(self) -> None:
        """Start a kissha certs run in its own thread when [certs] is set, the last one
        is over, and CERTS_EVERY has passed; it takes its own lock, as a cron run does."""
        busy = self._certs_thread is not None and self._certs_thread.is_alive()
        if self.config.certs is None or busy or time.monotonic() < self._certs_next:
            return
        self._certs_next = time.monotonic() + CERTS_EVERY
        self._certs_thread = threading.Thread(
            target=self._certs, args=(self.config,), name="certs", daemon=True
        )
        self._certs_thread.start()

    def _certs(self, config: Config) -> None:
        if self.certs_runner is None:
            from kissha.certs.run import run

            self.certs_runner = run
        try:
            report = self.certs_runner(config, time.time())
        except LockHeld as exc:
            log.info("certs: %s; trying again later", exc)
            return
        except Exception as exc:
            log.error("certs failed: %s: %s", type(exc).__name__, one_line(str(exc)))
            return
        for r in report.names:
            if r.written or r.error:
                log.log(
                    logging.WARNING if r.action == "failed" else logging.INFO,
                    "certs: %s %s: %s%s",
                    r.action,
                    r.name,
                    r.reason,
                    f": {r.error}" if r.action == "failed" else "",
                )
        for problem in report.hook_errors:
            log.warning("certs: hook failed: %s", problem)

    def _report(self, report: RunReport) -> None:
        """One compact line when a round changed something or failed, or the health or
        outcome differs from the last round; nothing on quiet rounds (unless verbose)."""
        d = report.decision
        down = tuple(sorted(n for n, h in d.health.items() if not h.up))
        key = (report.outcome, down)
        changed = report.exit_code != 0 or key != self._last_line or bool(report.recovered)
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
        for line in report.recovered:
            text += f"; recovered: {one_line(line)}"
        for warning in report.warnings + report.problems:
            text += f"; warning: {one_line(warning)}"
        warn = (Exit.ROLLED_BACK, Exit.ZONES_FAILED, Exit.PARTIAL)
        log.log(logging.WARNING if report.exit_code in warn else logging.INFO, "%s", text)

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
        certs = self.config.state_dir if self.config.certs is not None else None
        self.metrics_text = metrics.render(report, st, certs)

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
