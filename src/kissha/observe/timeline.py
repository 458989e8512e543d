"""The status page's timeline (pure): per node, probe latency and failures over the last
days as inline SVG, with markers for failovers, failbacks, rotations, record changes,
rollbacks and nodes going down or up.

Each node gets one SVG panel stretched to the page's width (``preserveAspectRatio=
"none"``, strokes that do not scale), and the text around it (node names, the latency
scale, the UTC time axis) is HTML, so it stays readable from a phone to a desktop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from kissha.core.model import Event, Family, iso
from kissha.observe.history import Bucket, Stats, series_key

VIEW_W, VIEW_H = 1000, 100
TOP = 10  # headroom above the highest latency
FAIL_MIN = 12  # a failure column is at least this tall (viewBox units)
TICK_STEPS = (3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400)
MAX_TICKS = 4  # labelled ticks; the half-steps between them are hidden on narrow screens
EVENT_CLASSES = {
    "failover": "ev-failover",
    "failback": "ev-failback",
    "rotation": "ev-rotation",
    "records": "ev-records",
    "rollback": "ev-rollback",
    "node-down": "ev-down",
    "all-down": "ev-down",
    "node-up": "ev-up",
}

LEGEND = (
    ("l4", "ipv4 mean latency"),
    ("l6", "ipv6 mean latency"),
    ("fail", "failed probes"),
    ("down", "node down"),
    ("ev-failover", "failover"),
    ("ev-failback", "failback"),
    ("ev-rotation", "rotation"),
    ("ev-records", "records changed"),
    ("ev-rollback", "rollback"),
    ("ev-down", "node down (event)"),
    ("ev-up", "node up"),
)


@dataclass(frozen=True)
class Grid:
    """The timeline's columns: ``n`` of ``width`` seconds from ``start``, a multiple of
    the width, so that a compacted history bucket falls into exactly one column."""

    start: int
    width: int
    n: int

    @classmethod
    def over(cls, start: float, end: float, width: int) -> Grid:
        first = int(start // width * width)
        return cls(first, width, max(1, math.ceil((end - first) / width)))

    @property
    def end(self) -> int:
        return self.start + self.n * self.width

    def x(self, t: float) -> float:
        return round((t - self.start) / (self.end - self.start) * VIEW_W, 1)


@dataclass(frozen=True)
class Column:
    """One column of one series: the buckets that fall into it, added up."""

    index: int
    stats: Stats


def columns(buckets: Sequence[Bucket], key: str, grid: Grid) -> list[Column]:
    """The series ``key`` in the grid's columns (empty ones left out)."""
    out: dict[int, Stats] = {}
    for b in buckets:
        stats = b.series.get(key)
        if stats is None or not grid.start <= b.start < grid.end:
            continue
        i = (b.start - grid.start) // grid.width
        if i in out:
            out[i].add(stats)
        else:
            out[i] = stats.copy()
    return [Column(i, out[i]) for i in sorted(out)]


def nice_ceiling(value: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``value`` (and at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 5, 10):
        if m * power >= value:
            return float(m * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def ticks(start: float, end: float) -> list[tuple[float, bool]]:
    """(time, major) for the axis: majors at a round UTC step, at most MAX_TICKS of
    them, and a minor tick halfway between (hidden on narrow screens)."""
    span = end - start
    step = next((s for s in TICK_STEPS if span / s <= MAX_TICKS), TICK_STEPS[-1])
    half = step // 2
    first = math.ceil(start / half) * half
    out = []
    t = first
    while t < end:
        out.append((float(t), t % step == 0))
        t += half
    return out


def tick_label(t: float) -> str:
    """'11-23' at midnight UTC, '12:00' otherwise."""
    tm = time.gmtime(t)
    if tm.tm_hour == 0 and tm.tm_min == 0:
        return time.strftime("%m-%d", tm)
    return time.strftime("%H:%M", tm)


def _event_node(event: Event) -> str | None:
    node = event.fields.get("node")
    if isinstance(node, str):
        return node
    message = event.message  # events written before they named the node
    return message.split(" is ", 1)[0] if " is " in message else None


def down_spans(
    events: Sequence[Event], node: str, start: float, end: float
) -> list[tuple[float, float]]:
    """When ``node`` was down (debounced), from its node-down and node-up events."""
    spans = []
    since: float | None = None
    for e in events:
        if e.kind not in ("node-down", "node-up") or _event_node(e) != node:
            continue
        t = float(e.time)
        if e.kind == "node-down" and since is None:
            since = t
        elif e.kind == "node-up" and since is not None:
            spans.append((since, t))
            since = None
    if since is not None:
        spans.append((since, end))
    return [(max(a, start), min(b, end)) for a, b in spans if b > start and a < end]


def _line(cols: Sequence[Column], grid: Grid, scale: float) -> str:
    """A path through each column's mean latency; gaps where a column has none."""
    parts = []
    previous = -2
    for c in cols:
        mean = c.stats.mean
        if mean is None:
            previous = -2
            continue
        x = round((c.index + 0.5) / grid.n * VIEW_W, 1)
        y = round(VIEW_H - min(mean, scale) / scale * (VIEW_H - TOP), 1)
        parts.append(f"{'L' if c.index == previous + 1 else 'M'}{x:g} {y:g}")
        previous = c.index
    return "".join(parts)


def _event_mark(e: Event, x: float) -> str:
    kind = e.kind
    cls = EVENT_CLASSES.get(kind, "ev-other")
    tip = escape(f"{iso(e.time)} {kind}: {e.message}")
    return (
        f'<g class="ev {cls}"><title>{tip}</title><path d="M{x:g} 0V{VIEW_H}"/>'
        f'<path class="hit" d="M{x:g} 0V{VIEW_H}"/></g>'
    )


def panel(
    node: str,
    series: Mapping[Family, Sequence[Column]],
    events: Sequence[Event],
    grid: Grid,
    scale: float,
) -> str:
    """One node's SVG: down spans, grid, failure columns, a latency line per family, events."""
    out = [
        f'<svg class="panel" viewBox="0 0 {VIEW_W} {VIEW_H}" preserveAspectRatio="none" '
        f'role="img" aria-label="{escape(node)}: probe latency and failures">'
    ]
    for a, b in down_spans(events, node, grid.start, grid.end):
        x, w = grid.x(a), max(1.0, grid.x(b) - grid.x(a))
        tip = escape(f"{node} down {iso(a)} to {iso(b)}")
        out.append(
            f'<rect class="down" x="{x:g}" y="0" width="{w:g}" height="{VIEW_H}">'
            f"<title>{tip}</title></rect>"
        )
    for t, _ in ticks(grid.start, grid.end):
        x = grid.x(t)
        out.append(f'<line class="grid" x1="{x:g}" y1="0" x2="{x:g}" y2="{VIEW_H}"/>')
    width = VIEW_W / grid.n
    for family, cols in series.items():
        for c in cols:
            s = c.stats
            if not s.failures:
                continue
            h = round(FAIL_MIN + (VIEW_H - FAIL_MIN) * min(1.0, s.failures / max(1, s.probes)), 1)
            tip = escape(
                f"{node}/{family}: {s.failures} of {s.probes} probes failed from "
                f"{iso(grid.start + c.index * grid.width)} for {grid.width // 60} min"
            )
            out.append(
                f'<rect class="fail" x="{c.index * width:.1f}" y="{VIEW_H - h:g}" '
                f'width="{max(width, 2):.1f}" height="{h:g}"><title>{tip}</title></rect>'
            )
    for family, cols in series.items():
        d = _line(cols, grid, scale)
        if d:
            cls = "l4" if family == "ipv4" else "l6"
            out.append(f'<path class="lat {cls}" d="{d}"><title>{family}</title></path>')
    for e in events:
        t = float(e.time)
        if grid.start <= t <= grid.end:
            out.append(_event_mark(e, grid.x(t)))
    out.append("</svg>")
    return "".join(out)


def figure(
    nodes: Sequence[tuple[str, Sequence[Family]]],
    buckets: Sequence[Bucket],
    events: Sequence[Event],
    grid: Grid,
) -> str:
    """The whole timeline: a panel per node under a caption, then the UTC time axis."""
    series = {
        node: {f: columns(buckets, series_key(node, f), grid) for f in fams} for node, fams in nodes
    }
    means = [
        m
        for per_node in series.values()
        for cols in per_node.values()
        for c in cols
        if (m := c.stats.mean) is not None
    ]
    scale = nice_ceiling(max(means, default=1.0))
    out = ['<figure class="timeline">']
    for node, per_family in series.items():
        out.append(
            f'<div class="row"><span class="node">{escape(node)}</span>'
            f'<span class="muted">{_summary(per_family)}</span></div>'
        )
        out.append(panel(node, per_family, events, grid, scale))
    out.append('<div class="axis">')
    for t, major in ticks(grid.start, grid.end):
        left = round((t - grid.start) / (grid.end - grid.start) * 100, 2)
        if not 3 <= left <= 97:
            continue  # a label at the very edge would be cut in half
        cls = "" if major else ' class="minor"'
        out.append(f'<span{cls} style="left:{left:g}%">{tick_label(t)}</span>')
    out.append("</div>")
    out.append(
        '<figcaption class="muted">'
        f"{escape(iso(grid.start))} to {escape(iso(grid.end))} (UTC), {grid.width // 60}-minute "
        f"columns; latency from 0 (bottom) to {scale:g} ms (top). "
        + " ".join(f'<span class="key"><i class="{c}"></i>{k}</span>' for c, k in LEGEND)
        + "</figcaption></figure>"
    )
    return "".join(out)


def _summary(per_family: Mapping[Family, Sequence[Column]]) -> str:
    parts = []
    for f, cols in per_family.items():
        total = Stats()
        for c in cols:
            total.add(c.stats)
        if not total.probes:
            parts.append(f"{f}: no data")
            continue
        mean = total.mean
        latency = "" if mean is None else f", mean {mean:.0f} ms"
        parts.append(f"{f}: {total.failures} failed of {total.probes}{latency}")
    return escape("; ".join(parts))
