"""Pure: a monitor report for people (text), programs (JSON), Nagios (one line), and
the list of checks (``--list``)."""

from __future__ import annotations

from typing import Any

from kissha.core.model import iso
from kissha.monitor import logic
from kissha.monitor.model import CheckSpec
from kissha.monitor.report import SCHEMA, MonitorReport

LEVELS = ("OK", "WARNING", "CRITICAL", "UNKNOWN")


def _order(report: MonitorReport) -> list[CheckSpec]:
    return sorted(report.specs, key=lambda s: (logic.SHOWN.index(report.states[s.id]), s.id))


def summary(report: MonitorReport) -> str:
    c = logic.counts(report.states)
    parts = [
        f"{c[k]} {k if k != 'OK' else 'OK'}".replace("STALE", "stale")
        .replace("FLAPPING", "flapping")
        .replace(logic.DEPENDENT, "waiting on a dependency")
        .replace(logic.PENDING, "not run yet")
        for k in logic.SHOWN
        if c.get(k)
    ]
    return f"{len(report.specs)} checks: " + ", ".join(parts)


def text(report: MonitorReport) -> str:
    verb = "would tell" if report.dry_run else "told"
    head = f"kissha monitor on {report.node} at {iso(report.now)}"
    if report.ran:
        ran = sum(1 for r in report.results.values() if r.outcome is not None)
        head += f": ran {ran} check(s) in {report.duration:.1f} s"
    out = [head, ""]
    width = max((len(s.id) for s in report.specs), default=10)
    for spec in _order(report):
        rec = report.book.checks.get(spec.id, {})
        st = report.states[spec.id]
        since = rec.get("since")
        age = (
            f"{logic._age(report.now - float(since)):>4}"
            if since is not None and st not in (logic.PENDING,)
            else "   -"
        )
        what = str(rec.get("text", ""))
        if st == logic.DEPENDENT:
            what = f"waits on {rec.get('dependent_on')}"
        elif st == "STALE":
            what = "not run for too long" + (f"; last: {what}" if what else "")
        elif st == logic.PENDING:
            what = "not run yet"
        attempts = rec.get("attempts", 1)
        retry = (
            f" ({attempts} attempts)"
            if spec.id in report.results and report.results[spec.id].attempts > 1
            else ""
        )
        out.append(f"  {st:<9} {spec.id:<{width}}  {age}  {what}{retry}".rstrip())
    out += ["", summary(report)]
    for t in report.told:
        status = "" if t.error is None else f" (not delivered: {t.error})"
        out.append(f"{verb} {t.channel}: {t.subject}{status}")
    if report.ran and not report.told:
        out.append("nothing to tell")
    out += [f"warning: {w}" for w in report.warnings]
    return "\n".join(out) + "\n"


def as_json(report: MonitorReport) -> dict[str, Any]:
    checks = []
    for spec in report.specs:
        rec = report.book.checks.get(spec.id, {})
        r = report.results.get(spec.id)
        checks.append(
            {
                "id": spec.id,
                "kind": spec.kind,
                "state": report.states[spec.id],
                "output": rec.get("text"),
                "perfdata": rec.get("perf", []),
                "since": iso(float(rec["since"])) if "since" in rec else None,
                "last_run": iso(float(rec["last_run"])) if "last_run" in rec else None,
                "attempts": rec.get("attempts"),
                "duration": rec.get("duration"),
                "ran": r is not None and r.outcome is not None,
                "dependent_on": rec.get("dependent_on"),
                "depends": list(spec.depends),
                "node": spec.node,
                "family": spec.family,
                "scope": spec.scope,
            }
        )
    return {
        "schema": SCHEMA,
        "time": iso(report.now),
        "node": report.node,
        "status": LEVELS[report.level],
        "ran": report.ran,
        "dry_run": report.dry_run,
        "duration": round(report.duration, 3),
        "counts": {k: v for k, v in logic.counts(report.states).items() if v},
        "checks": checks,
        "told": [
            {"channel": t.channel, "kind": t.kind, "subject": t.subject, "error": t.error}
            for t in report.told
        ],
        "warnings": report.warnings,
    }


def nagios_line(report: MonitorReport) -> str:
    """``KISSHA MONITOR CRITICAL - 2 CRITICAL: a (why), b; 1 stale | critical=2;;;0 ...``"""
    c = logic.counts(report.states)
    level = report.level
    bad = [
        s
        for s in _order(report)
        if report.states[s.id] not in ("OK", logic.DEPENDENT, logic.PENDING)
    ]
    if bad:
        first = bad[:3]
        words = []
        for s in first:
            rec = report.book.checks.get(s.id, {})
            st = report.states[s.id]
            why = "not run for too long" if st == "STALE" else str(rec.get("text", ""))[:80]
            words.append(f"{st} {s.id} ({why})")
        text = "; ".join(words) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
    else:
        text = f"all {c['OK']} checks OK" + (
            f", {c[logic.DEPENDENT]} waiting on a dependency" if c[logic.DEPENDENT] else ""
        )
    if report.warnings and not bad:
        text += f"; {report.warnings[0]}"
        level = max(level, 1)
    text = text.replace("|", "/").replace("\n", " ")
    perf = " ".join(
        f"{k.lower()}={c.get(k, 0)};;;0"
        for k in ("CRITICAL", "WARNING", "UNKNOWN", "STALE", "FLAPPING", "OK")
    )
    return f"KISSHA MONITOR {LEVELS[level]} - {text} | {perf} dependent={c[logic.DEPENDENT]};;;0"


def nagios_level(report: MonitorReport) -> int:
    return max(report.level, 1 if report.warnings and report.level == 0 else 0)


def listing(specs: list[CheckSpec], node: str | None) -> str:
    """``--list``: every check with what it runs, its dependencies and its timing."""
    out = [f"{len(specs)} checks on {node or 'this host (no node name: set [monitor] node)'}:", ""]
    width = max((len(s.id) for s in specs), default=10)
    for s in specs:
        timing = []
        if s.interval:
            timing.append(f"every {logic._age(s.interval)}")
        if s.spread:
            timing.append(f"spread {logic._age(s.spread)}")
        timing.append(f"retries {s.retries}")
        if s.quiet:
            timing.append(
                "quiet "
                + ",".join(
                    f"{a // 60:02d}:{a % 60:02d}-{b // 60:02d}:{b % 60:02d}" for a, b in s.quiet
                )
            )
        what = " ".join(s.argv) if s.kind == "plugin" else s.about
        out.append(f"  {s.id:<{width}}  {s.kind:<10} {what}")
        line = f"  {'':<{width}}  {'':<10} {s.scope}; " + ", ".join(timing)
        if s.depends:
            line += "; depends on " + ", ".join(s.depends)
        out.append(line)
    return "\n".join(out) + "\n"
