"""Turn run reports into text for people (cron mail) and JSON for machines; no printing."""

from __future__ import annotations

from typing import Any

from kissha.core.model import iso
from kissha.core.report import Outcome, RunReport
from kissha.core.zonefile import diff

JSON_SCHEMA = "kissha.failover/1"
MAX_DIFF_LINES = 200
MAX_FAILED_LINES = 50


def text(report: RunReport) -> str:
    out: list[str] = []
    title = "kissha failover (dry run)" if report.dry_run else "kissha failover"
    out.append(f"{title} at {iso(report.now)}")
    for line in report.recovered:
        out.append(f"recovered: {line}")
    for line in report.warnings + report.problems:
        out.append(f"warning: {line}")
    out.append("")
    out.append("probes:")
    width = max((len(r.node) for r in report.probes), default=4)
    pwidth = max((len(r.probe) for r in report.probes), default=5)
    for r in report.probes:
        status = "ok" if r.ok else "FAILED"
        latency = f"{r.latency_ms:7.1f} ms" if r.latency_ms is not None else " " * 10
        tries = f" ({r.attempts} attempts)" if r.attempts > 1 else ""
        flag = "" if r.required else " [informational]"
        warning = f"; warning: {r.warning}" if r.warning else ""
        out.append(
            f"  {r.node:<{width}}  {r.probe:<{pwidth}} {r.family}  {status:<6} {latency}  "
            f"{r.address}: {r.detail}{warning}{tries}{flag}"
        )
    d = report.decision
    out.append("")
    health = ", ".join(f"{n} {'up' if h.up else 'DOWN'}" for n, h in d.health.items())
    out.append(f"health: {health}")
    if d.roles is None:
        out.append("decision: keep the current records")
    else:
        was = ""
        if report.previous and report.previous.master != d.roles.master:
            was = f" (was: master {report.previous.master})"
        out.append(f"decision: master {d.roles.master}, standby {d.roles.standby}{was}")
    for reason in d.reasons:
        out.append(f"  - {reason}")
    if report.plans:
        records = sum(len(p.changes) for p in report.plans)
        out.append("")
        out.append(
            f"plan: {len(report.plans)} of {report.zones_total} zone(s) change, {records} record(s)"
        )
        out.extend(_diffs(report))
    elif d.roles is not None and report.outcome != Outcome.FAILED:
        out.append(f"plan: nothing to change in {report.zones_total} zone(s)")
    if report.failed:
        out.append("")
        out.append(f"not changed ({len(report.failed)}), left as they were:")
        for f in report.failed[:MAX_FAILED_LINES]:
            out.append(f"  {f.zone} [{f.stage}]: {f.error}")
        if len(report.failed) > MAX_FAILED_LINES:
            more = len(report.failed) - MAX_FAILED_LINES
            out.append(f"  ... and {more} more (kissha failover --json lists every one)")
    out.append("")
    out.append(f"result: {report.outcome}: {report.message} (exit {report.exit_code})")
    return "\n".join(out) + "\n"


def _diffs(report: RunReport) -> list[str]:
    """Full diffs up to MAX_DIFF_LINES changed lines, then what the rest changes, counted:
    a cron mail with 50,000 hunks helps nobody."""
    from collections import Counter
    from operator import itemgetter

    out: list[str] = []
    shown = 0
    rest: Counter[tuple[str, str, str, str]] = Counter()
    rest_zones = 0
    what = itemgetter(2, 4, 5, 3)  # a RecordChange's rrtype, old, new, role
    for p in report.plans:
        if shown + len(p.changes) <= MAX_DIFF_LINES:
            out.append(diff(p).rstrip("\n"))
            shown += len(p.changes)
            continue
        rest_zones += 1
        rest.update(map(what, p.changes))  # counted in C: 50,000 of them at 1,000 zones
    if rest_zones:
        out.append(f"... and {rest_zones} more zone(s), each with a new serial and:")
        counted = {f"{t} {old} -> {new} ({role})": n for (t, old, new, role), n in rest.items()}
        out.extend(f"    {n} x {key}" for key, n in sorted(counted.items()))
        out.append("    (kissha failover --json lists every record)")
    return out


def as_json(report: RunReport) -> dict[str, Any]:
    d = report.decision
    return {
        "schema": JSON_SCHEMA,
        "time": iso(report.now),
        "dry_run": report.dry_run,
        "outcome": report.outcome.value,
        "exit_code": report.exit_code,
        "message": report.message,
        "probes": [
            {
                "node": r.node,
                "probe": r.probe,
                "family": r.family,
                "address": r.address,
                "ok": r.ok,
                "required": r.required,
                "detail": r.detail,
                "latency_ms": r.latency_ms,
                "attempts": r.attempts,
                "cert_not_after": iso(r.cert_not_after) if r.cert_not_after else None,
                "warning": r.warning,
            }
            for r in report.probes
        ],
        "health": {
            n: {"up": h.up, "fail_streak": h.fail_streak, "ok_streak": h.ok_streak}
            for n, h in d.health.items()
        },
        "decision": None
        if d.roles is None
        else {"master": d.roles.master, "standby": d.roles.standby, "order": list(d.roles.order)},
        "previous": None
        if report.previous is None
        else {"master": report.previous.master, "standby": report.previous.standby},
        "reasons": list(d.reasons),
        "zones_total": report.zones_total,
        "changes": [
            {
                "zone": p.zone,
                "file": str(p.path),
                "old_serial": p.old_serial,
                "new_serial": p.new_serial,
                "records": [
                    {
                        "line": c.line + 1,
                        "owner": c.owner,
                        "type": c.rrtype,
                        "role": c.role,
                        "old": c.old,
                        "new": c.new,
                    }
                    for c in p.changes
                ],
            }
            for p in report.plans
        ],
        "failed_zones": [
            {"zone": f.zone, "file": str(f.path), "stage": f.stage, "error": f.error}
            for f in report.failed
        ],
        "recovered": list(report.recovered),
        "warnings": list(report.warnings),
        "problems": list(report.problems),
        "timings": {k: round(v, 4) for k, v in report.timings.items()},
        "apply": None
        if report.applied is None
        else {
            "checked": report.applied.checked,
            "trusted": report.applied.trusted,
            "verified": report.applied.verified,
            "timings": {k: round(v, 4) for k, v in report.applied.timings.items()},
        },
    }
