"""The status page as one self-contained HTML file (pure): inline CSS and SVG, no
scripts, no external assets, light and dark, readable from 360 px wide up.

``render(PageData) -> str``; everything from the config or the network is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from kissha.core.model import Event, Node, ProbeResult, iso
from kissha.observe import timeline
from kissha.observe.history import Bucket
from kissha.observe.verdict import Report

LAST_EVENTS = 12
LEVEL_CLASS = {"OK": "ok", "WARNING": "warn", "CRITICAL": "crit", "UNKNOWN": "warn"}

CSS = """\
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--muted:#59636e;--line:#d1d9e0;
--card:#f6f8fa;--ok:#1a7f37;--warn:#9a6700;--crit:#cf222e;--v4:#0969da;--v6:#8250df;
--evf:#bc4c00;--evu:#1a7f37;--down:rgba(207,34,46,.12)}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--line:#30363d;--card:#161b22;--ok:#3fb950;--warn:#d29922;--crit:#f85149;--v4:#4493f8;
--v6:#ab7df8;--evf:#f0883e;--evu:#3fb950;--down:rgba(248,81,73,.16)}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:60rem;padding:.75rem;background:var(--bg);color:var(--fg);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:1.3rem;margin:.2rem 0}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
.muted{color:var(--muted)}.small{font-size:.85em}
.head{border-left:.4rem solid var(--line);background:var(--card);padding:.6rem .8rem;
border-radius:.3rem}
.head.ok{border-color:var(--ok)}.head.warn{border-color:var(--warn)}
.head.crit{border-color:var(--crit)}
.level{font-weight:700}.ok .level,td.ok,.okt{color:var(--ok)}
.warn .level,.warnt{color:var(--warn)}.crit .level,td.bad,.badt{color:var(--crit)}
.roles{font-size:1.1rem;margin:.2rem 0}
ul{margin:.3rem 0;padding-left:1.2rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{text-align:left;padding:.3rem .45rem;border-bottom:1px solid var(--line);
vertical-align:top}
th{font-weight:600;color:var(--muted)}
code{font:.9em ui-monospace,SFMono-Regular,Menlo,monospace}
.timeline{margin:0}.row{display:flex;flex-wrap:wrap;gap:.2rem .8rem;margin-top:.6rem}
.node{font-weight:600}
.panel{display:block;width:100%;height:5.5rem;background:var(--card);
border:1px solid var(--line)}
.panel .grid{stroke:var(--line);stroke-width:1;vector-effect:non-scaling-stroke}
.panel .lat{fill:none;stroke-width:1.6;vector-effect:non-scaling-stroke}
.l4{stroke:var(--v4);color:var(--v4)}.l6{stroke:var(--v6);color:var(--v6);
stroke-dasharray:5 3}
.panel .fail{fill:var(--crit);opacity:.75}.panel .down{fill:var(--down)}
.ev path{stroke-width:2;vector-effect:non-scaling-stroke}
.ev path.hit{stroke:transparent;stroke-width:12px;stroke-dasharray:none}
.ev-failover{stroke:var(--evf);color:var(--evf)}
.ev-failback{stroke:var(--evu);color:var(--evu);stroke-dasharray:6 2}
.ev-rotation{stroke:var(--muted);color:var(--muted);stroke-dasharray:3 2}
.ev-records{stroke:var(--muted);color:var(--muted);stroke-dasharray:1 3}
.ev-rollback{stroke:var(--crit);color:var(--crit);stroke-dasharray:4 2}
.ev-down{stroke:var(--crit);color:var(--crit)}.ev-up{stroke:var(--evu);color:var(--evu)}
.ev-other{stroke:var(--muted)}
.axis{position:relative;height:1.3em;font-size:.8em;margin-top:.1rem}
.axis span{position:absolute;transform:translateX(-50%);white-space:nowrap}
figcaption{font-size:.82em;margin-top:.3rem}
.key{white-space:nowrap;margin-right:.5em}
.key i{display:inline-block;width:1.1em;height:.22em;margin:0 .25em .2em 0;
background:currentColor;vertical-align:middle}
.key i.fail{color:var(--crit)}.key i.down{background:var(--down);height:.8em}
@media (max-width:32rem){body{font-size:14px;padding:.5rem}.axis .minor{display:none}
th,td{padding:.25rem .3rem}}
"""


@dataclass(frozen=True)
class PageData:
    """What the page shows; built by kissha.observe.page from the run, the state and the history."""

    title: str
    now: float
    refresh: int  # seconds, for <meta http-equiv="refresh">
    status: Report  # kissha status's observation and verdict (views empty when not asked)
    nodes: tuple[Node, ...]
    health: Mapping[str, bool]  # debounced: node -> up
    history: Sequence[Bucket]
    events: Sequence[Event]  # oldest first
    start: float  # the timeline's start (now - days)
    column_width: int = 900  # seconds per timeline column (history.column_width)
    version: str = ""
    warnings: tuple[str, ...] = ()
    extra_html: str = ""  # sections other outputs add (certificates), already escaped


def render(data: PageData) -> str:
    """The whole page as text."""
    obs, verdict = data.status.observation, data.status.verdict
    title = escape(data.title)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f'<meta http-equiv="refresh" content="{int(data.refresh)}">',
        f"<title>{escape(verdict.name)} - {title}</title>",
        f"<style>{CSS}</style></head><body>",
        _headline(data),
        "<h2>Health of each node</h2>",
        _health(data),
        "<h2>What each nameserver answers</h2>",
        _nameservers(data)
        if obs.asked
        else '<p class="muted">Not asked (page.nameservers = false).</p>',
        f"<h2>The last {_days(data.now - data.start)}</h2>",
        timeline.figure(
            [(n.name, n.families) for n in data.nodes],
            data.history,
            data.events,
            timeline.Grid.over(data.start, data.now, data.column_width),
        ),
        "<h2>Last events</h2>",
        _events(data.events),
        data.extra_html,
        *(
            ["<h2>Checks (kissha monitor)</h2>", _checks(obs.checks)]
            if obs.checks is not None
            else []
        ),
        '<footer class="muted small"><p>',
        f"Generated {escape(iso(data.now))} by kissha {escape(data.version)} on each run "
        f"(refreshes every {int(data.refresh)} s). Machine-readable: "
        '<a href="status.json">status.json</a>.</p></footer>',
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _days(seconds: float) -> str:
    days = round(seconds / 86400)
    if days >= 1:
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{round(seconds / 3600)} hours"


def _headline(data: PageData) -> str:
    obs, v = data.status.observation, data.status.verdict
    roles = obs.roles
    if roles is None:
        who = '<p class="roles">No roles recorded yet.</p>'
    else:
        who = (
            f'<p class="roles">master <strong>{escape(roles.master)}</strong> · '
            f"standby <strong>{escape(roles.standby)}</strong></p>"
        )
    items = [f"<li>{escape(p)}</li>" for p in v.problems if p != v.summary]
    items += [f'<li class="muted">{escape(n)}</li>' for n in v.notes]
    items += [f'<li class="muted">{escape(w)}</li>' for w in data.warnings]
    more = f"<ul>{''.join(items)}</ul>" if items else ""
    return (
        f'<header class="head {LEVEL_CLASS.get(v.name, "warn")}">'
        f"<h1>{escape(data.title)}</h1>{who}"
        f'<p><span class="level">{escape(v.name)}</span>: {escape(v.summary)}</p>{more}'
        f'<p class="muted small">as of {escape(iso(data.now))}</p></header>'
    )


def _probe_cell(p: ProbeResult) -> str:
    latency = "" if p.latency_ms is None else f" {p.latency_ms:.0f} ms"
    flag = "" if p.required else " (informational)"
    if p.ok:
        warn = f' <span class="warnt">{escape(p.warning)}</span>' if p.warning else ""
        return f'<span class="okt">{escape(p.probe)} ok</span>{latency}{warn}'
    cls = "badt" if p.required else "warnt"
    return f'<span class="{cls}">{escape(p.probe)} failed</span>{flag}: {escape(p.detail)}'


def _health(data: PageData) -> str:
    obs = data.status.observation
    roles = obs.roles
    rows = []
    for node in data.nodes:
        role = ""
        if roles is not None:  # both when the standby names point at the master too
            both = (("master", roles.master), ("standby", roles.standby))
            role = ", ".join(r for r, name in both if name == node.name)
        up = data.health.get(node.name)
        state = "" if up is None else ("up" if up else "DOWN")
        for family in node.families:
            probes = [p for p in obs.probes if p.node == node.name and p.family == family]
            cells = "<br>".join(_probe_cell(p) for p in probes) or '<span class="muted">-</span>'
            cls = "ok" if up else "bad"
            rows.append(
                f"<tr><td>{escape(node.name)}<br><span class='muted small'>{role}</span></td>"
                f"<td>{family}<br><code class='small'>{escape(node.address(family) or '')}"
                f"</code></td><td class='{cls}'>{state}</td><td>{cells}</td></tr>"
            )
    return (
        '<div class="scroll"><table><thead><tr><th>node</th><th>family</th><th>state</th>'
        f"<th>probes (last run)</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _nameservers(data: PageData) -> str:
    rows = []
    for x in data.status.observation.views:
        label = f"{escape(x.node)}/{x.family}<br><code class='small'>{escape(x.address)}</code>"
        if x.error is not None:
            rows.append(
                f"<tr><td>{label}</td><td class='bad' colspan='3'>unreachable: "
                f"{escape(x.error)}</td></tr>"
            )
            continue
        serials = sorted(set(x.serials.values()))
        problems = "".join(f"<br><span class='warnt small'>{escape(p)}</span>" for p in x.problems)
        rows.append(
            f"<tr><td>{label}</td><td>{escape(' + '.join(x.master) or '-')}</td>"
            f"<td>{escape(' + '.join(x.standby) or '-')}</td>"
            f"<td><code class='small'>{escape(', '.join(serials) or '-')}</code>{problems}</td>"
            "</tr>"
        )
    return (
        '<div class="scroll"><table><thead><tr><th>nameserver</th><th>master names →</th>'
        f"<th>standby names →</th><th>serial</th></tr></thead><tbody>{''.join(rows)}"
        "</tbody></table></div>"
    )


def _checks(checks: Sequence[Any]) -> str:
    """kissha monitor's checks: those not OK in a table, the OK ones counted."""
    ok = sum(1 for c in checks if c.state == "OK")
    rows = [
        f"<tr><td><code class='small'>{escape(c.id)}</code></td>"
        f"<td class='{'bad' if c.state == 'CRITICAL' else 'warnt'}'>{escape(c.state)}</td>"
        f"<td class='small'>{escape('-' if c.since is None else iso(c.since))}</td>"
        f"<td class='small'>{escape(c.output)}</td></tr>"
        for c in checks
        if c.state != "OK"
    ]
    head = f"<p>{ok} of {len(checks)} checks OK.</p>"
    if not rows:
        return head
    return (
        f'{head}<div class="scroll"><table><thead><tr><th>check</th><th>state</th>'
        f"<th>since</th><th>output</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _events(events: Sequence[Event]) -> str:
    last = list(events)[-LAST_EVENTS:][::-1]
    if not last:
        return '<p class="muted">None in this period.</p>'
    items = [
        f"<li><code class='small'>{escape(iso(e.time))}</code> "
        f"<strong class='{timeline.EVENT_CLASSES.get(e.kind, '')}'>"
        f"{escape(e.kind)}</strong> {escape(e.message)}</li>"
        for e in last
    ]
    return f"<ul>{''.join(items)}</ul>"
