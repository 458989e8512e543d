"""One ``kissha monitor`` run (I/O): lock, read the records, run the due checks, fold
their results, tell the [notify] channels what changed, save. Also the read-only view
(``--nagios``, status, page, metrics) of the last run."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kissha.monitor import checks, logic, store
from kissha.monitor.model import CheckSpec
from kissha.monitor.report import MonitorReport, Told

if TYPE_CHECKING:
    from kissha.config import Config

LOCK = "monitor.lock"


def whoami(config: Config) -> str | None:
    """[monitor] node, else [notify] node, else a node named like this host."""
    if config.monitor.node:
        return config.monitor.node
    if config.notify is not None and config.notify.node:
        return config.notify.node
    host = socket.gethostname().lower()
    for node in config.nodes:
        if node.name.lower() == host.split(".")[0] or node.fqdn == host.rstrip("."):
            return node.name
    return None


def timezone(config: Config) -> Any:
    if not config.monitor.timezone:
        return None  # the machine's local time
    from zoneinfo import ZoneInfo

    return ZoneInfo(config.monitor.timezone)


def _roles(config: Config) -> Any:
    from kissha.engine import state as statefile

    st, _ = statefile.load_readonly(config.state_dir)
    return st.roles


def specs_for(config: Config) -> tuple[list[CheckSpec], str | None]:
    me = whoami(config)
    return checks.for_node(config, _roles(config), me), me


def run(config: Config, now: float, *, dry_run: bool = False) -> MonitorReport:
    from kissha.files import RunLock
    from kissha.monitor import execute, runner

    started = time.monotonic()
    mc = config.monitor
    with RunLock(config.state_dir / LOCK):
        book, warning = store.load(config.state_dir, readonly=dry_run)
        roles = _roles(config)
        me = whoami(config)
        specs = checks.for_node(config, roles, me)
        name = me or socket.gethostname()
        due = {s.id for s in specs if logic.due(s, book.checks.get(s.id), now, name)}
        prior = logic.states_now(book, specs, now, mc.stale_after)
        ctx = execute.Context(config, now, roles, mc.plugins_dir)
        results = runner.run_checks(
            specs,
            due,
            prior,
            lambda s: execute.attempt(s, ctx),
            concurrency=mc.concurrency,
            deadline=mc.deadline,
        )
        logic.fold(book, specs, results, now, mc.flap_window, mc.flap_changes)
        report = MonitorReport(
            now,
            name,
            specs,
            book,
            logic.states_now(book, specs, now, mc.stale_after),
            results,
            warnings=[warning] if warning else [],
            dry_run=dry_run,
        )
        book.last_run = {
            "time": now,
            "node": name,
            "checks": len(specs),
            "ran": sum(1 for r in results.values() if r.outcome is not None),
            "duration": round(time.monotonic() - started, 3),
        }
        tell(config, report, me)
        report.duration = time.monotonic() - started
        book.last_run["duration"] = round(report.duration, 3)
        if not dry_run:
            store.save(config.state_dir, book)
            if config.metrics.textfile is not None:
                report.warnings.extend(_textfile(config, report))
    return report


def _textfile(config: Config, report: MonitorReport) -> list[str]:
    """kissha-monitor.prom beside [metrics] textfile, for node_exporter's collector."""
    from kissha.files import atomic_write
    from kissha.monitor import metrics

    assert config.metrics.textfile is not None
    path = config.metrics.textfile.with_name(metrics.TEXTFILE)
    try:
        atomic_write(path, metrics.render(report).encode(), mode=0o644)
    except OSError as exc:
        return [f"metrics: cannot write {path}: {exc.strerror or exc}"]
    return []


def view(config: Config, now: float) -> MonitorReport:
    """The stored records as they stand at ``now`` (stale checks show), running nothing."""
    book, warning = store.load(config.state_dir, readonly=True)
    specs, me = specs_for(config)
    states = logic.states_now(book, specs, now, config.monitor.stale_after)
    report = MonitorReport(now, me or socket.gethostname(), specs, book, states, ran=False)
    if warning:
        report.warnings.append(warning)
    last = book.last_run.get("time")
    if last is None:
        report.warnings.append(
            "no monitor run recorded (run kissha monitor from cron or the daemon)"
        )
    return report


# -- telling ---------------------------------------------------------------------------------


def tell(config: Config, report: MonitorReport, me: str | None) -> None:
    """Plan each channel's message, deliver them all at once (bounded by [notify]
    timeout), and record per channel what was told. Without [notify]: nothing."""
    nc = config.notify
    mc = config.monitor
    if nc is None:
        return
    channels = [c for c in nc.channels if mc.channels is None or c.name in mc.channels]
    now, book = report.now, report.book
    tz = timezone(config)
    minute = logic.minute_of_day(now, tz)
    quiet = [s.id for s in report.specs if logic.in_quiet(s.quiet, minute)]
    order = config.node_names
    jobs = []
    for channel in channels:
        box = book.channels.setdefault(channel.name, {"told": {}})
        box.setdefault("told", {})
        # A new channel starts now: no backlog of re-notifications or reports.
        box.setdefault("renotified", now)
        box.setdefault("weekly", now)
        renotify = (
            mc.renotify is not None
            and float(box["renotified"]) < logic.last_moment(now, mc.renotify, None, tz) <= now
        )
        weekly = (
            mc.weekly is not None
            and float(box["weekly"]) < logic.last_moment(now, mc.weekly[1], mc.weekly[0], tz) <= now
        )
        plan = logic.plan(
            book,
            report.specs,
            box,
            me=me or report.node,
            order=order,
            now=now,
            stale_after=mc.stale_after,
            quiet=quiet,
            renotify=renotify,
            weekly=weekly,
        )
        box["told"].update(plan.assumed)
        if plan.message is None:
            if weekly and not report.dry_run:
                box["weekly"] = now  # nothing this node reports: the week is done
            continue
        box["sent"] = [t for t in box.get("sent", []) if 0 <= now - float(t) < 3600]
        if len(box["sent"]) >= nc.rate_limit:
            report.told.append(
                Told(
                    channel.name,
                    plan.message.subject,
                    plan.message.kind,
                    "rate limit: told at a later run",
                )
            )
            continue
        jobs.append((channel, box, plan, renotify, weekly))
    if not jobs:
        return
    if report.dry_run:
        for channel, _, plan, _, _ in jobs:
            assert plan.message is not None
            report.told.append(Told(channel.name, plan.message.subject, plan.message.kind))
        return
    from kissha.notify.deliver import deliver_all
    from kissha.notify.plan import Delivered, Rejected

    notices = [_notice(plan.message, report) for _, _, plan, _, _ in jobs if plan.message]
    results = deliver_all(
        [(channel, [n]) for (channel, _, _, _, _), n in zip(jobs, notices, strict=True)],
        nc.timeout,
        socket.gethostname(),
    )
    for (channel, box, plan, renotify, weekly), errors in zip(jobs, results, strict=True):
        assert plan.message is not None
        error = errors[0] if errors else "not tried"
        if error is not None:
            report.warnings.append(f"monitor: notify: {error}")
        if isinstance(error, Delivered):
            error = None  # delivered; its concern (recipients refused) is the warning
        report.told.append(Told(channel.name, plan.message.subject, plan.message.kind, error))
        if error is not None and not isinstance(error, Rejected):
            continue  # not delivered: told at the next run
        # Delivered, or refused as too large (it would be refused again): told.
        box["told"].update(plan.on_delivery)
        box["sent"].append(now)
        if renotify:
            box["renotified"] = now
        if weekly:
            box["weekly"] = now


def _notice(message: logic.Message, report: MonitorReport) -> dict[str, Any]:
    def lines(ls: tuple[logic.Line, ...]) -> list[dict[str, Any]]:
        return [{"check": ln.id, "state": ln.state, "was": ln.was, "output": ln.text} for ln in ls]

    return {
        "id": f"m{int(report.now)}",
        "kind": "monitor",
        "severity": message.severity,
        "time": report.now,
        "node": report.node,
        "title": message.subject,
        "text": message.body,
        "events": [],
        "fields": {
            "report": message.kind,
            "changed": lines(message.changed),
            "broken": lines(message.broken),
            "stale": [ln.id for ln in message.stale],
            "counts": {k: v for k, v in message.counts.items() if v},
        },
    }


# -- for kissha status and the page ------------------------------------------------------


@dataclass(frozen=True)
class Shown:
    """One check as status and the page show it: state, since when, last output."""

    id: str
    state: str
    since: float | None
    output: str


def shown(config: Config, now: float) -> tuple[Shown, ...] | None:
    """The checks of the last monitor run, worst first; None when the monitor has never
    run here (no monitor.json) or its checks cannot be listed (a config problem)."""
    from kissha.errors import KisshaError

    if not (config.state_dir / store.NAME).exists():
        return None
    try:
        report = view(config, now)
    except KisshaError:
        return None
    out = []
    for spec in report.specs:
        rec = report.book.checks.get(spec.id, {})
        st = report.states[spec.id]
        text = (
            f"waits on {rec.get('dependent_on')}"
            if st == logic.DEPENDENT
            else str(rec.get("text", ""))
        )
        since = rec.get("since")
        out.append(Shown(spec.id, st, None if since is None else float(since), text))
    return tuple(sorted(out, key=lambda s: (logic.SHOWN.index(s.state), s.id)))
