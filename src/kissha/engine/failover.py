"""One failover run: probe, decide, plan, then apply and verify or roll back."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kissha.config import Config, ZoneRef
from kissha.core import events
from kissha.core.model import Decision, EventKind, Node, ProbeResult, Roles
from kissha.core.policy import decide
from kissha.core.report import ApplyReport, Outcome, RunReport, ZoneFailure
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
    from kissha.notify.watch import Watch
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
            entry = cache.recorded(r.path, r.name, st) if st is not None else None
            if entry is not None and st is not None:
                plan = plan_unchanged(r.name, r.path, entry.summary, st.st_size, targets)
                # A zone that changes is read below anyway: only an unchanged one pays
                # for confirming a racy entry (the files a switch wrote are racy).
                if plan is not None and cache.confirmed(r.path, r.name, st, entry):
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
    """Run one round. ``prober`` and ``server`` are injectable for tests and drills.

    A dry run is the same run through other effects, chosen here once: it reads what a
    real run reads and writes nothing (_Dry)."""
    effects: _Live | _Dry = _Dry(config) if dry_run else _Live(config, server)
    with effects.lock():
        return _run(config, now, effects, prober)


@dataclass
class _Draft:
    """The report while the run finds it out; ``freeze`` makes the RunReport, once."""

    now: float
    dry_run: bool
    probes: list[ProbeResult]
    decision: Decision
    previous: Roles | None
    seq_before: int
    recovered: list[str]
    warnings: list[str]
    timings: dict[str, float]
    zones_total: int = 0
    plans: list[ZonePlan] = field(default_factory=list)  # the zones to change
    problems: list[str] = field(default_factory=list)
    failed: list[ZoneFailure] = field(default_factory=list)
    applied: ApplyReport | None = None
    checked: bool = False
    nameservers: dict[str, tuple[str, ...]] | None = None
    nameservers_complete: bool = False

    def freeze(self, outcome: Outcome, message: str, error_code: int | None = None) -> RunReport:
        return RunReport(
            now=self.now,
            dry_run=self.dry_run,
            probes=tuple(self.probes),
            decision=self.decision,
            previous=self.previous,
            zones_total=self.zones_total,
            plans=tuple(self.plans),
            outcome=outcome,
            message=message,
            recovered=tuple(self.recovered),
            warnings=tuple(self.warnings),
            problems=tuple(self.problems),
            applied=self.applied,
            timings=dict(self.timings),
            checked=self.checked,
            seq_before=self.seq_before,
            nameservers=self.nameservers,
            nameservers_complete=self.nameservers_complete,
            failed=tuple(self.failed),
            error_code=error_code,
        )


def _run(config: Config, now: float, effects: _Live | _Dry, prober: Prober | None) -> RunReport:
    t0 = time.monotonic()
    # The zones to manage are known before any probe leaves the machine.
    from kissha.engine.zones import managed_zones

    refs, problems = managed_zones(config.dns)
    if not refs:
        raise ConfigError(problems, config.source)
    st, warning = effects.load_state()
    seq_before = st.seq
    warnings = [warning] if warning else []
    recovered, stopped = effects.recover(warnings)  # stopped: probe and tell, change nothing
    if st.pin is not None and not st.pin.active(now):
        effects.event(st, now, "unpinned", f"pin to {st.pin.node} expired")
        st.pin = None
    if prober is None:
        from kissha.probes import run_round

        prober = run_round
    context = effects.probe_context()
    warnings.extend(context.warnings)
    watch = effects.watch()  # asks every nameserver while the probes run
    t1 = time.monotonic()
    results = prober(config.nodes, config.health, context)
    t2 = time.monotonic()
    decision = decide(config, results, st.health, st.roles, now, st.pin)
    timings = {"probe": t2 - t1}
    draft = _Draft(
        now, effects.dry, results, decision, st.roles, seq_before, recovered, warnings, timings
    )
    try:
        effects.keep(context)
        if watch is not None:
            draft.nameservers, draft.nameservers_complete = watch.result()
        if stopped is not None:
            raise stopped
        _plan_and_apply(config, refs, draft, effects, now, t2)
    except Exception as exc:
        # No zone file at all, an environment error, an unexpected error: the run stops
        # here, its report (probes, health, decision) goes with the error, and the error
        # is an event (once until a run gets through).
        code, message = _stopped_by(config, exc)
        draft.timings["total"] = time.monotonic() - t0
        report = draft.freeze(Outcome.FAILED, message, code)
        effects.failed(st, report, exc)
        raise RunFailed(message, report, code) from exc
    draft.timings["total"] = time.monotonic() - t0
    return effects.finish(st, draft.freeze(*_verdict(draft)))


def _stopped_by(config: Config, exc: Exception) -> tuple[int, str]:
    """The exit code and the one line of an error that stopped the run."""
    if isinstance(exc, KisshaError):
        return exc.exit_code, str(exc)
    if isinstance(exc, OSError):  # e.g. a rollback's own write failing: the journal
        # lets the next run finish it; the path and the cause, in one line
        return Exit.ENVIRONMENT, os_error(
            exc.filename or config.dns.zones_dir, exc, "complete the run"
        )
    return Exit.INTERNAL, _internal(exc)


def _internal(exc: BaseException) -> str:
    return f"internal error: {type(exc).__name__}: {exc}"


def _plan_and_apply(
    config: Config,
    refs: Sequence[ZoneRef],
    draft: _Draft,
    effects: _Live | _Dry,
    now: float,
    t2: float,
) -> None:
    """Plan every zone for the decided roles, then let the effects serve the changes.

    Without the cyclic garbage collector meanwhile: a switch of thousands of zones keeps
    millions of small objects (plans, records, layouts) that it never links in cycles,
    and each collection walks them all; at 5,000 zones that doubled the time to read
    the layouts. It runs again afterwards (a daemon's rounds are collected as before)."""
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        _plan_and_apply_zones(config, refs, draft, effects, now, t2)
    finally:
        if enabled:
            gc.enable()


def _plan_and_apply_zones(
    config: Config,
    refs: Sequence[ZoneRef],
    draft: _Draft,
    effects: _Live | _Dry,
    now: float,
    t2: float,
) -> None:
    roles = draft.decision.roles
    if roles is None:  # every node is down: nothing to plan
        return
    cache = effects.scan_cache()
    if cache.warning:
        draft.warnings.append(cache.warning)
    plans, draft.failed = plan_all(config, refs, roles, now, cache)
    draft.zones_total = len(plans) + len(draft.failed)
    draft.plans = [p for p in plans if p.changed]
    draft.timings["plan"] = time.monotonic() - t2
    effects.apply(draft, [p for p in plans if not p.changed], cache)


def _verdict(draft: _Draft) -> tuple[Outcome, str]:
    """How the run ended: the outcome and its one-line message."""
    plans, applied, failed = draft.plans, draft.applied, draft.failed
    if draft.decision.roles is None:
        return Outcome.KEPT, "every node is down: the records stay as they are"
    if plans and draft.dry_run:
        outcome, message = Outcome.CHANGED, f"dry run: {len(plans)} zone(s) would change"
    elif plans and applied is not None and applied.zones:
        bad = {f.zone for f in failed}
        done = sum(1 for p in plans if p.zone not in bad)
        outcome, message = Outcome.CHANGED, f"{done} zone(s) changed, reloaded and verified"
        if applied.rollback:
            message += f"; put back: {applied.rollback}"
    elif plans and applied is not None and applied.rollback:
        head = applied.error or _why("the server does not serve the new zones", failed)
        return Outcome.ROLLED_BACK, f"{head}; rolled back: {applied.rollback}"
    elif plans:
        outcome, message = Outcome.NOT_CHANGED, ""
    else:
        outcome, message = Outcome.UNCHANGED, "every zone already points at the right nodes"
    if not failed:
        return outcome, message
    tail = f"{len({f.zone for f in failed})} zone(s) could not be changed: {names(failed)}"
    if outcome == Outcome.UNCHANGED:
        return outcome, f"every other zone already points at the right nodes; {tail}"
    if outcome == Outcome.NOT_CHANGED:
        return outcome, tail
    return outcome, f"{message}; {tail}"


def _why(head: str, failed: Sequence[ZoneFailure]) -> str:
    verify = [f for f in failed if f.stage == "verify"]
    return f"{head}: {names(verify)}" if verify else head


class _Effects:
    """What a run does outside itself: the lock, the state, the DNS server, tofu.json,
    scans.json and the outputs. _Live does it; _Dry reads the same and writes nothing.
    (The run takes ``_Live | _Dry``: mypy checks that both have every step.)"""

    dry: bool

    def __init__(self, config: Config) -> None:
        self.config = config

    def probe_context(self) -> ProbeContext:
        """Gemini certificates first seen (TOFU): a dry run reads them, never writes."""
        from kissha.probes.tofu import ProbeContext

        return ProbeContext.load(self.config.state_dir, readonly=self.dry)

    def scan_cache(self) -> ScanCache:
        return ScanCache.load(self.config.state_dir, readonly=self.dry)


class _Live(_Effects):
    dry = False

    def __init__(self, config: Config, server: DnsServer | None) -> None:
        super().__init__(config)
        self._server = server

    def lock(self) -> contextlib.AbstractContextManager[object]:
        return RunLock(self.config.state_dir / "lock")

    def load_state(self) -> tuple[statefile.State, str | None]:
        return statefile.load(self.config.state_dir)

    def recover(self, warnings: list[str]) -> tuple[list[str], KisshaError | None]:
        """Finish or undo what an interrupted run left: (what was done, the error that
        keeps this run from changing anything: it still probes and tells)."""
        if self._server is None:
            from kissha.dns import server_for

            self._server = server_for(self.config)
        try:
            return self._server.recover(), None
        except KisshaError as exc:
            return [], exc

    def event(self, st: statefile.State, now: float, kind: EventKind, text: str) -> None:
        st.add_event(now, kind, text)

    def watch(self) -> Watch | None:
        notify = self.config.notify
        if notify is None or not notify.watch_nameservers:
            return None
        from kissha.notify.watch import Watch

        return Watch.start(self.config)

    def keep(self, context: ProbeContext) -> None:
        context.save()

    def apply(self, draft: _Draft, unchanged: list[ZonePlan], cache: ScanCache) -> None:
        """Check the unchanged zones and make the server serve the files it should, then
        apply the changes and record in the cache what the files hold now."""
        server = self._server
        assert server is not None  # made by recover()
        draft.problems = server.precheck(unchanged)
        draft.checked = True
        done, warnings = server.converge(unchanged, [f.zone for f in draft.failed])
        draft.recovered.extend(done)
        draft.warnings.extend(warnings)
        if draft.plans:
            t3 = time.monotonic()
            applied = server.apply(draft.plans, [f.zone for f in draft.failed])
            draft.applied = applied
            draft.timings["apply"] = time.monotonic() - t3
            draft.failed.extend(applied.failed)
            installed = set(applied.zones)
            remember_installed(cache, [p for p in draft.plans if p.zone in installed])
            # Put back or not installed: the next run reads them again.
            for p in draft.plans:
                if p.zone not in installed:
                    cache.drop(p.path)
        warning = cache.save()
        if warning:
            draft.warnings.append(warning)

    def failed(self, st: statefile.State, report: RunReport, exc: Exception) -> None:
        _failed(self.config, st, report, exc)

    def finish(self, st: statefile.State, report: RunReport) -> RunReport:
        """After a run that got through: the state saved, the outputs told."""
        config = self.config
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
                failed = replace(
                    report, outcome=Outcome.FAILED, message=text, error_code=Exit.ENVIRONMENT
                )
                raise RunFailed(text, failed, EnvError.exit_code) from exc
            report = replace(report, warnings=(*report.warnings, text))
        return replace(report, warnings=(*report.warnings, *_publish(config, report, st)))


class _Dry(_Effects):
    """A dry run: no lock, no server asked to do anything, no file written, nobody told."""

    dry = True

    def lock(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def load_state(self) -> tuple[statefile.State, str | None]:
        return statefile.load_readonly(self.config.state_dir)

    def recover(self, warnings: list[str]) -> tuple[list[str], KisshaError | None]:
        if journal_path(self.config.state_dir).exists():
            warnings.append("an interrupted run left a journal: a real run undoes it first")
        return [], None

    def event(self, st: statefile.State, now: float, kind: EventKind, text: str) -> None:
        pass

    def watch(self) -> Watch | None:
        return None

    def keep(self, context: ProbeContext) -> None:
        pass

    def apply(self, draft: _Draft, unchanged: list[ZonePlan], cache: ScanCache) -> None:
        pass

    def failed(self, st: statefile.State, report: RunReport, exc: Exception) -> None:
        pass

    def finish(self, st: statefile.State, report: RunReport) -> RunReport:
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
        "outcome": report.outcome.value,
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
