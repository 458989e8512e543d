"""One failover run: probe, decide, plan, then apply and verify or roll back."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kissha.config import Config, ZoneRef
from kissha.core import events
from kissha.core.model import Node, ProbeResult, Roles
from kissha.core.policy import decide
from kissha.core.report import RunReport, ZoneFailure
from kissha.core.zonefile import ZonePlan, fits, plan_spliced, plan_unchanged, plan_zone
from kissha.dns.backend import journal_path
from kissha.engine import scancache
from kissha.engine import state as statefile
from kissha.engine.scancache import ScanCache
from kissha.errors import ConfigError, EnvError, KisshaError, RunFailed, ZoneError, os_error
from kissha.exits import Exit
from kissha.files import RunLock

if TYPE_CHECKING:
    from kissha.config import HealthConfig
    from kissha.dns.backend import DnsServer
    from kissha.probes.tofu import ProbeContext

# A probe round: kissha.probes.run_round, or a stand-in in tests and drills.
Prober = Callable[[Sequence[Node], "HealthConfig", "ProbeContext | None"], list[ProbeResult]]

log = logging.getLogger(__name__)

# Exit codes: kissha.exits (one table for the CLI, the daemon and the docs); cron mails
# the output of every non-zero run.
MAX_NAMES = 10  # zones named in one message; the output lists every one
ENCODING = ("utf-8", "surrogateescape")  # bytes that are not UTF-8 survive a round trip


def plan_all(
    config: Config,
    refs: Sequence[ZoneRef],
    roles: Roles,
    now: float,
    cache: ScanCache | None = None,
) -> tuple[list[ZonePlan], list[ZoneFailure]]:
    """Plan the managed zones ``refs`` (engine.zones.managed_zones, resolved once a run)
    for ``roles``; a zone that cannot be planned is a failure of its own (named with
    file:line), never a reason to leave the others.

    With ``cache``: a zone whose file's stat still vouches for its last scan and that
    already points at ``roles`` is planned from the cache, without reading the file;
    every file read is recorded in the cache."""
    targets = {"master": config.node(roles.master), "standby": config.node(roles.standby)}
    plans: list[ZonePlan] = []
    failed: list[ZoneFailure] = []
    for r in refs:
        st = None
        if cache is not None:
            try:
                st = os.stat(r.path)
            except OSError:
                st = None  # read() below names the problem
            entry = cache.fresh(r.path, r.name, st) if st is not None else None
            if entry is not None:
                plan = plan_unchanged(r.name, r.path, entry.summary, st.st_size, targets)  # type: ignore[union-attr]
                if plan is not None:
                    plans.append(plan)
                    continue
        try:
            data = _read(r.path)
            text = data.decode(*ENCODING)
            sha = scancache.digest(data) if cache is not None else ""
            # A switch: where the last scan (or switch) left the addresses, if this is
            # the very text it saw; else a full scan.
            layout = cache.layout(r.path, r.name, sha) if cache is not None else None
            if layout is not None and fits(text, layout):
                plan = plan_spliced(r.name, r.path, text, layout, targets, config.dns.serial, now)
            else:
                plan = plan_zone(r.name, r.path, text, targets, config.dns.serial, now)
        except ZoneError as exc:
            failed.append(ZoneFailure(r.name, r.path, "plan", str(exc)))
            if cache is not None:
                cache.drop(r.path)
            continue
        plans.append(plan)
        if cache is not None and st is not None and plan.summary is not None:
            # What the file holds now (the old text: a change records its new text
            # once installed, see remember_installed).
            old = plan.summary if not plan.changed else None
            if old is not None:
                cache.put(r.path, r.name, st, sha, old, plan.layout)
            else:
                cache.drop(r.path)
    if cache is not None:
        cache.keep_only({str(r.path) for r in refs})
    return plans, failed


def remember_installed(cache: ScanCache, plans: Sequence[ZonePlan]) -> None:
    """Record the files a run installed: their new text is known, so the next run need
    not read them (they are racy at first: it compares their digest once)."""
    for p in plans:
        if p.summary is None or p.new_text is None:
            continue
        try:
            st = os.stat(p.path)
        except OSError:
            cache.drop(p.path)
            continue
        sha = scancache.digest(p.new_text.encode(*ENCODING))
        cache.put(p.path, p.zone, st, sha, p.summary, p.layout)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ZoneError(f"{path}: cannot read: {exc.strerror or exc}") from None


def names(failures: Sequence[ZoneFailure]) -> str:
    """'a., b. (+3 more)': the zones, once each, for one-line messages."""
    zones = list(dict.fromkeys(f.zone for f in failures))
    more = f" (+{len(zones) - MAX_NAMES} more)" if len(zones) > MAX_NAMES else ""
    return ", ".join(zones[:MAX_NAMES]) + more


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
    # The zones to manage are known before any probe leaves the machine.
    from kissha.engine.zones import managed_zones

    refs, problems = managed_zones(config.dns)
    if not refs:
        raise ConfigError(problems, config.source)
    st, warning = (statefile.load_readonly if dry_run else statefile.load)(config.state_dir)
    seq_before = st.seq
    warnings = [warning] if warning else []
    recovered: list[str] = []
    stopped: KisshaError | None = None  # recovery failed: probe and tell, change nothing
    if server is None and not dry_run:
        from kissha.dns import server_for

        server = server_for(config)
    if server is not None and not dry_run:
        try:
            recovered = server.recover()
        except KisshaError as exc:
            stopped = exc
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
    decision = decide(config, results, st.health, st.roles, now, st.pin)
    report = RunReport(
        now, dry_run, results, decision, st.roles, recovered=recovered, warnings=warnings
    )
    report.seq_before = seq_before
    report.timings["probe"] = t2 - t1
    try:
        if not dry_run:
            context.save()
        if watch is not None:
            report.nameservers, report.nameservers_complete = watch.result()
        if stopped is not None:
            raise stopped
        _plan_and_apply(config, refs, report, server, now, t2)
    except Exception as exc:
        # No zone file at all, an environment error, an unexpected error: the run stops
        # here, its report (probes, health, decision) goes with the error, and the error
        # is an event (once until a run gets through).
        if isinstance(exc, KisshaError):
            code, message = exc.exit_code, str(exc)
        elif isinstance(exc, OSError):  # e.g. a rollback's own write failing: the
            # journal lets the next run finish it; the path and the cause, in one line
            code = Exit.ENVIRONMENT
            message = os_error(exc.filename or config.dns.zones_dir, exc, "complete the run")
        else:
            code, message = Exit.INTERNAL, _internal(exc)
        report.outcome, report.message, report.error_code = "failed", message, code
        report.timings["total"] = time.monotonic() - t0
        if not dry_run:
            _failed(config, st, report, exc)
        raise RunFailed(message, report, code) from exc
    report.timings["total"] = time.monotonic() - t0
    if not dry_run:
        _remember(config, st, report)
        try:
            statefile.save(config.state_dir, st)
        except (OSError, KisshaError) as exc:
            # The zones are served as reported; without the state the next run counts its
            # streaks afresh. Nothing changed: an environment error; else a warning.
            text = (
                os_error(config.state_dir, exc, "save the state")
                if isinstance(exc, OSError)
                else str(exc)
            )
            if report.exit_code == Exit.OK:
                report.outcome, report.message, report.error_code = "failed", text, Exit.ENVIRONMENT
                raise RunFailed(text, report, EnvError.exit_code) from exc
            report.warnings.append(text)
        report.warnings.extend(_publish(config, report, st))
    return report


def _internal(exc: BaseException) -> str:
    return f"internal error: {type(exc).__name__}: {exc}"


def _plan_and_apply(
    config: Config,
    refs: Sequence[ZoneRef],
    report: RunReport,
    server: DnsServer | None,
    now: float,
    t2: float,
) -> None:
    """Plan every zone, make the server serve the files it should, apply the changes.

    Without the cyclic garbage collector meanwhile: a switch of thousands of zones keeps
    millions of small objects (plans, records, layouts) that it never links in cycles,
    and each collection walks them all; at 5,000 zones that doubled the time to read
    the layouts. It runs again afterwards (a daemon's rounds are collected as before)."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        _plan_and_apply_zones(config, refs, report, server, now, t2)
    finally:
        if enabled:
            gc.enable()


def _plan_and_apply_zones(
    config: Config,
    refs: Sequence[ZoneRef],
    report: RunReport,
    server: DnsServer | None,
    now: float,
    t2: float,
) -> None:
    decision, dry_run = report.decision, report.dry_run
    if decision.roles is None:
        report.outcome = "kept"
        report.message = "every node is down: the records stay as they are"
        return
    cache = ScanCache.load(config.state_dir, readonly=dry_run)
    if cache.warning:
        report.warnings.append(cache.warning)
    plans, report.failed = plan_all(config, refs, decision.roles, now, cache)
    report.zones_total = len(plans) + len(report.failed)
    report.plans = [p for p in plans if p.changed]
    report.timings["plan"] = time.monotonic() - t2
    if server is not None and not dry_run:
        unchanged = [p for p in plans if not p.changed]
        report.problems = server.precheck(unchanged)
        report.checked = True
        done, warnings = server.converge(unchanged, [f.zone for f in report.failed])
        report.recovered.extend(done)
        report.warnings.extend(warnings)
    failed_before = list(report.failed)
    if report.plans and not dry_run:
        assert server is not None
        t3 = time.monotonic()
        report.applied = server.apply(report.plans, [f.zone for f in report.failed])
        report.timings["apply"] = time.monotonic() - t3
        report.failed = failed_before + report.applied.failed
        installed = set(report.applied.zones)
        remember_installed(cache, [p for p in report.plans if p.zone in installed])
        # Put back or not installed: the next run reads them again.
        for p in report.plans:
            if p.zone not in installed:
                cache.drop(p.path)
    if not dry_run:
        warning = cache.save()
        if warning:
            report.warnings.append(warning)
    if report.plans and dry_run:
        report.outcome = "changed"
        report.message = f"dry run: {len(report.plans)} zone(s) would change"
    elif report.plans and report.applied is not None and report.applied.zones:
        report.outcome = "changed"
        report.message = f"{len(report.done)} zone(s) changed, reloaded and verified"
        if report.applied.rollback:
            report.message += f"; put back: {report.applied.rollback}"
    elif report.plans and report.applied is not None and report.applied.rollback:
        report.outcome = "rolled-back"
        head = report.applied.error or _why("the server does not serve the new zones", report)
        report.message = f"{head}; rolled back: {report.applied.rollback}"
        return
    elif report.plans:
        report.outcome = "not-changed"
    else:
        report.message = "every zone already points at the right nodes"
    if report.failed:
        tail = (
            f"{len({f.zone for f in report.failed})} zone(s) could not be changed: "
            f"{names(report.failed)}"
        )
        if report.outcome == "unchanged":
            report.message = f"every other zone already points at the right nodes; {tail}"
        elif report.outcome == "not-changed":
            report.message = tail
        else:
            report.message += f"; {tail}"


def _why(head: str, report: RunReport) -> str:
    verify = [f for f in report.failed if f.stage == "verify"]
    return f"{head}: {names(verify)}" if verify else head


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

        try:
            notify.publish(config, st, now, report.seq_before, report)
        except Exception as inner:  # the run's own error is what must be told
            log.warning("notify: internal error: %s: %s", type(inner).__name__, inner)


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
