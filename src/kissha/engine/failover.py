"""One failover run: probe, decide, plan, then apply and verify or roll back."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kissha.config import Config, zone_refs
from kissha.core import events
from kissha.core.model import Decision, Node, ProbeResult, Roles
from kissha.core.policy import decide
from kissha.core.zonefile import ZonePlan, plan_zone
from kissha.dns.backend import journal_path
from kissha.engine import state as statefile
from kissha.errors import ApplyFailed, ConfigError, KisshaError
from kissha.files import RunLock

if TYPE_CHECKING:
    from kissha.config import HealthConfig
    from kissha.dns.backend import ApplyReport, DnsServer
    from kissha.probes.tofu import ProbeContext

# A probe round: kissha.probes.run_round, or a stand-in in tests and drills.
Prober = Callable[[Sequence[Node], "HealthConfig", "ProbeContext | None"], list[ProbeResult]]

log = logging.getLogger(__name__)

# Exit codes: documented in the README; cron mails the output of every non-zero run.
EXIT_UNCHANGED = 0
EXIT_CHANGED = 1
EXIT_ROLLED_BACK = 3


@dataclass
class RunReport:
    """Everything a run found and did, for humans (cron mail) and machines (--json)."""

    now: float
    dry_run: bool
    probes: list[ProbeResult]
    decision: Decision
    previous: Roles | None
    zones_total: int = 0
    plans: list[ZonePlan] = field(default_factory=list)
    outcome: str = "unchanged"  # unchanged | changed | rolled-back | kept
    message: str = ""
    recovered: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # zone files that fail validation
    applied: ApplyReport | None = None
    timings: dict[str, float] = field(default_factory=dict)
    checked: bool = False  # the unchanged zones were validated (so problems is complete)
    seq_before: int = 0  # the state's last event id before this run
    # watch_nameservers: label ("blowfish/ipv4") -> the masters its answers name, and
    # whether every nameserver answered; None when not watched.
    nameservers: dict[str, tuple[str, ...]] | None = None
    nameservers_complete: bool = False

    @property
    def exit_code(self) -> int:
        if self.outcome == "rolled-back":
            return EXIT_ROLLED_BACK
        return EXIT_CHANGED if self.plans else EXIT_UNCHANGED


def plan_all(config: Config, roles: Roles, now: float) -> list[ZonePlan]:
    """Plan every managed zone for ``roles``."""
    refs = zone_refs(config.dns)
    if not refs:
        raise ConfigError(
            [f"dns.zones: no zone file matches in {config.dns.zones_dir}"], config.source
        )
    targets = {"master": config.node(roles.master), "standby": config.node(roles.standby)}
    return [plan_zone(r.name, r.path, r.read(), targets, config.dns.serial, now) for r in refs]


def run(
    config: Config,
    now: float,
    *,
    dry_run: bool = False,
    prober: Prober | None = None,
    server: DnsServer | None = None,
) -> RunReport:
    """Run one round. ``prober`` and ``server`` are injectable for tests and drills."""
    lock: contextlib.AbstractContextManager[object] = (
        contextlib.nullcontext() if dry_run else RunLock(config.state_dir / "lock")
    )
    with lock:
        return _run(config, now, dry_run, prober, server)


def _run(
    config: Config,
    now: float,
    dry_run: bool,
    prober: Prober | None,
    server: DnsServer | None,
) -> RunReport:
    t0 = time.monotonic()
    st, warning = (statefile.load_readonly if dry_run else statefile.load)(config.state_dir)
    seq_before = st.seq
    warnings = [warning] if warning else []
    recovered: list[str] = []
    if server is None and not dry_run:
        from kissha.dns.backend import server_for

        server = server_for(config)
    if server is not None and not dry_run:
        recovered = server.recover()
    elif dry_run and journal_path(config.state_dir).exists():
        warnings.append("an interrupted run left a journal: a real run undoes it first")
    if st.pin is not None and not st.pin.active(now):
        if not dry_run:
            st.add_event(now, "unpinned", f"pin to {st.pin.node} expired")
        st.pin = None
    from kissha.probes import run_round
    from kissha.probes.tofu import ProbeContext

    if prober is None:
        prober = run_round
    # Gemini certificates first seen (TOFU): a dry run reads them but never writes them.
    context = ProbeContext.load(config.state_dir, readonly=dry_run)
    warnings.extend(context.warnings)
    watch = None
    if not dry_run and config.notify is not None and config.notify.watch_nameservers:
        from kissha.notify.watch import Watch

        watch = Watch.start(config)  # asks every nameserver while the probes run
    t1 = time.monotonic()
    results = prober(config.nodes, config.health, context)
    t2 = time.monotonic()
    if not dry_run:
        context.save()
    decision = decide(config, results, st.health, st.roles, now, st.pin)
    report = RunReport(
        now, dry_run, results, decision, st.roles, recovered=recovered, warnings=warnings
    )
    report.seq_before = seq_before
    report.timings["probe"] = t2 - t1
    if watch is not None:
        report.nameservers, report.nameservers_complete = watch.result()
    try:
        if decision.roles is None:
            report.outcome = "kept"
            report.message = "every node is down: the records stay as they are"
        else:
            plans = plan_all(config, decision.roles, now)
            report.zones_total = len(plans)
            report.plans = [p for p in plans if p.changed]
            report.timings["plan"] = time.monotonic() - t2
            if server is not None and not dry_run:
                report.problems = server.precheck([p for p in plans if not p.changed])
                report.checked = True
            if report.plans and not dry_run:
                assert server is not None
                t3 = time.monotonic()
                try:
                    report.applied = server.apply(report.plans)
                    report.outcome = "changed"
                    report.message = f"{len(report.plans)} zone(s) changed, reloaded and verified"
                except ApplyFailed as exc:
                    report.outcome = "rolled-back"
                    report.message = str(exc)
                report.timings["apply"] = time.monotonic() - t3
            elif report.plans:
                report.outcome = "changed"
                report.message = f"dry run: {len(report.plans)} zone(s) would change"
            else:
                report.message = "every zone already points at the right nodes"
    except Exception as exc:
        # A zone that cannot be planned, no zone file at all, an unexpected error: the
        # run fails as before, and the error is an event (once until a run gets through).
        if not dry_run:
            _failed(config, st, report, exc)
        raise
    report.timings["total"] = time.monotonic() - t0
    if not dry_run:
        _remember(config, st, report)
        statefile.save(config.state_dir, st)
        report.warnings.extend(_publish(config, report, st))
    return report


def _publish(config: Config, report: RunReport, st: statefile.State) -> list[str]:
    """After the state is saved: tell the outside world. Each output is optional and
    imported only when configured; a failure is a warning, never a failed run, and one
    output failing never keeps the next from running."""
    warnings: list[str] = []
    steps: list[tuple[str, Callable[[], list[str]]]] = []
    if config.metrics.textfile is not None:
        textfile = config.metrics.textfile

        def metrics_step() -> list[str]:
            from kissha.observe import metrics

            certs = config.state_dir if config.certs is not None else None
            warning = metrics.write_textfile(textfile, report, st, certs)
            return [warning] if warning else []

        steps.append(("metrics", metrics_step))
    if config.page.dir is not None:

        def page_step() -> list[str]:
            from kissha.observe import page

            return page.publish(config, report, st)

        steps.append(("page", page_step))
    if config.notify is not None:

        def notify_step() -> list[str]:
            from kissha import notify

            return notify.publish(config, st, report.now, report.seq_before, report)

        steps.append(("notify", notify_step))
    for name, step in steps:
        try:
            warnings.extend(step())
        except Exception as exc:  # the zones are served and the state saved already
            warning = f"{name}: internal error: {type(exc).__name__}: {exc}"
            log.warning(warning, exc_info=log.isEnabledFor(logging.DEBUG))
            warnings.append(warning)
    return warnings


def _failed(config: Config, st: statefile.State, report: RunReport, exc: Exception) -> None:
    """Record a failed run in the state (health, node events, the error) and notify it;
    the caller re-raises. Nothing here may hide the original error."""
    if isinstance(exc, KisshaError):
        message = str(exc)
    else:
        message = f"internal error: {type(exc).__name__}: {exc}"
    now = report.now
    try:
        events.fold_run(config, st, report, failed=True)
        events.fold_error(st, message, now)
        statefile.save(config.state_dir, st)
    except Exception as inner:  # e.g. the state directory is not writable
        log.warning("cannot record the error in the state: %s", inner)
        return
    if config.notify is not None:
        from kissha import notify

        notify.publish(config, st, now, report.seq_before, report)


def _remember(config: Config, st: statefile.State, report: RunReport) -> None:
    """Fold this run into the state: streaks, roles actually served, events, problems."""
    events.fold_run(config, st, report)
    if report.nameservers is not None and config.notify is not None:
        events.fold_split_brain(
            st,
            report.nameservers,
            report.nameservers_complete,
            report.now,
            config.notify.split_brain_after,
        )
    else:  # not watched (any more): a split brain can be neither seen nor resolved
        st.problems.pop("split-brain", None)
        st.watch.clear()
    st.last_run = _last_run(report)


def _last_run(report: RunReport) -> dict[str, Any]:
    return {
        "time": round(report.now, 3),
        "outcome": report.outcome,
        "exit": report.exit_code,
        "duration": round(report.timings.get("total", 0.0), 4),
        "probes": [
            {
                "node": r.node,
                "probe": r.probe,
                "family": r.family,
                "ok": r.ok,
                "required": r.required,
                "detail": r.detail,
                "warning": r.warning,
                "latency_ms": r.latency_ms,
            }
            for r in report.probes
        ],
    }
