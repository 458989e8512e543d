"""kissha status rendered: text for people, JSON for machines, one Nagios line."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kissha.core.model import iso
from kissha.observe.verdict import Observation, Report, Verdict, ago

SCHEMA = "kissha.status/1"


def nagios_line(v: Verdict) -> str:
    """One line: ``KISSHA LEVEL - summary; more | perfdata`` (no '|' in the text)."""
    more = [p for p in v.problems if p != v.summary]
    text = "; ".join([v.summary, *more[:3]]) + (
        f"; and {len(more) - 3} more" if len(more) > 3 else ""
    )
    text = text.replace("|", "/").replace("\n", " ")
    return f"KISSHA {v.name} - {text} | {' '.join(v.perfdata)}"


def text(report: Report) -> str:
    obs, v = report.observation, report.verdict
    out = [f"kissha status at {iso(obs.now)}", "", "nameservers:"]
    width = max((len(x.label) for x in obs.views), default=8)
    for x in obs.views:
        if x.error is not None:
            out.append(f"  {x.label:<{width}}  {x.address}: UNREACHABLE ({x.error})")
            continue
        master = "+".join(x.master) or "-"
        standby = "+".join(x.standby) or "-"
        out.append(
            f"  {x.label:<{width}}  master names -> {master}, standby names -> {standby}"
            f"; {_serials(x.serials)}"
        )
        out.extend(f"  {'':<{width}}  ! {p}" for p in x.problems)
    out += ["", "probes from here:"]
    nwidth = max((len(p.node) for p in obs.probes), default=4)
    pwidth = max((len(p.probe) for p in obs.probes), default=5)
    for p in obs.probes:
        flag = "" if p.required else " [informational]"
        status = "ok" if p.ok else "FAILED"
        warn = f"; warning: {p.warning}" if p.warning else ""
        out.append(
            f"  {p.node:<{nwidth}}  {p.probe:<{pwidth}} {p.family}  {status:<6} "
            f"{p.detail}{warn}{flag}"
        )
    out += ["", "state:"]
    if obs.roles is not None:
        out.append(f"  roles: master {obs.roles.master}, standby {obs.roles.standby}")
    if obs.health:
        out.append(
            "  health: " + ", ".join(f"{n} {'up' if u else 'DOWN'}" for n, u in obs.health.items())
        )
    if obs.last_run is None:
        out.append("  last run: none recorded")
    else:
        out.append(f"  last run: {iso(obs.last_run)} ({ago(obs.now - obs.last_run)} ago)")
    for e in obs.events:
        out.append(f"  {iso(e.time)}  {e.kind}: {e.message}")
    if obs.checks is not None:
        out += ["", _checks_text(obs)]
    out.append("")
    for n in v.notes:
        out.append(f"note: {n}")
    out.extend(f"problem: {problem}" for problem in v.problems)
    out.append(f"{v.name}: {v.summary}")
    return "\n".join(out) + "\n"


def _checks_text(obs: Observation) -> str:
    """kissha monitor's checks: the ones not OK in full, the OK ones counted."""
    assert obs.checks is not None
    ok = [c for c in obs.checks if c.state == "OK"]
    lines = [f"checks (kissha monitor): {len(ok)} of {len(obs.checks)} OK"]
    for c in obs.checks:
        if c.state != "OK":
            since = "" if c.since is None else f" since {iso(c.since)}"
            lines.append(f"  {c.state:<9} {c.id}{since}: {c.output}")
    return "\n".join(lines)


def _serials(serials: Mapping[str, str]) -> str:
    """'serial 1700000000 (6 zones)': one figure per distinct serial; JSON has each zone."""
    if not serials:
        return "no serial"
    count: dict[str, list[str]] = {}
    for zone, serial in sorted(serials.items()):
        count.setdefault(serial, []).append(zone.rstrip("."))
    if len(count) == 1:
        ((serial, zones),) = count.items()
        return f"serial {serial}" + (f" ({len(zones)} zones)" if len(zones) > 1 else "")
    return "serials " + ", ".join(f"{s} ({' '.join(z)})" for s, z in count.items())


def as_json(report: Report) -> dict[str, Any]:
    obs, v = report.observation, report.verdict
    return {
        "schema": SCHEMA,
        "time": iso(obs.now),
        "status": v.name,
        "summary": v.summary,
        "problems": list(v.problems),
        "notes": list(v.notes),
        "nameservers": [
            {
                "node": x.node,
                "family": x.family,
                "address": x.address,
                "reachable": x.error is None,
                "error": x.error,
                "master": list(x.master),
                "standby": list(x.standby),
                "serials": dict(x.serials),
                "problems": list(x.problems),
            }
            for x in obs.views
        ],
        "probes": [
            {
                "node": p.node,
                "probe": p.probe,
                "family": p.family,
                "ok": p.ok,
                "required": p.required,
                "detail": p.detail,
                "warning": p.warning,
            }
            for p in obs.probes
        ],
        "state": {
            "roles": None
            if obs.roles is None
            else {"master": obs.roles.master, "standby": obs.roles.standby},
            "health": dict(obs.health),
            "last_run": None if obs.last_run is None else iso(obs.last_run),
            "last_run_age": None if obs.last_run is None else round(obs.now - obs.last_run, 1),
            # members in state.json's (sorted) order, whichever run added the event
            "events": [dict(sorted(e.to_json().items())) for e in obs.events],
        },
        "checks": None
        if obs.checks is None
        else [
            {
                "id": c.id,
                "state": c.state,
                "since": None if c.since is None else iso(c.since),
                "output": c.output,
            }
            for c in obs.checks
        ],
    }
