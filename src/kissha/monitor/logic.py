"""Pure: the monitor's state machine, dependencies, who tells what, and when.

Nothing here reads a clock, a file or the network: ``now`` and the records come in,
updated records and plans come out (golden-data tests in tests/unit/test_monitor_*.py).

The records (``Book.checks``) keep per check its last state, since when, its output and
perfdata, the recent states (flapping) and when it last ran. Per channel, ``told`` keeps
what the operator is believed to know of each check, and from which node: a change is a
difference between a check's state now and what was told, so a message that could not
be delivered is not lost (the next run still sees the difference) and a message told
late by an isolated node cannot claim a change that has since gone away.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kissha.monitor.model import FLAPPING, STALE, STATES, TOLD_ORDER, CheckSpec, Result

DEPENDENT = "DEPENDENT"  # a dependency is not OK: not run, not told
PENDING = "PENDING"  # never run yet
# The order in which states are shown (worst first): --nagios, status, the page.
SHOWN = (
    "CRITICAL",
    "WARNING",
    "UNKNOWN",
    "STALE",
    "FLAPPING",
    DEPENDENT,
    PENDING,
    "OK",
)
DUE_TOLERANCE = 30.0  # cron's minute is not exact: a check a few seconds early is due


@dataclass
class Book:
    """The monitor's memory between runs (monitor.json)."""

    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_run: dict[str, Any] = field(default_factory=dict)


# -- dependencies -----------------------------------------------------------------------


def dependency_problems(specs: Sequence[CheckSpec]) -> list[str]:
    """Unknown dependencies and cycles, in words (one per problem)."""
    ids = {s.id for s in specs}
    problems = [
        f"{s.id}: depends on {d!r}, which is no check (see kissha monitor --list)"
        for s in specs
        for d in s.depends
        if d not in ids
    ]
    by_id = {s.id: s for s in specs}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(cid: str, path: list[str]) -> None:
        if state.get(cid) == 2:
            return
        if state.get(cid) == 1:
            cycle = [*path[path.index(cid) :], cid]
            problems.append("dependency cycle: " + " -> ".join(cycle))
            return
        state[cid] = 1
        for d in by_id[cid].depends:
            if d in by_id:
                visit(d, [*path, cid])
        state[cid] = 2

    for s in specs:
        visit(s.id, [])
    return problems


def topological(specs: Sequence[CheckSpec]) -> list[CheckSpec]:
    """Dependencies before dependents, otherwise in the given order (no cycles)."""
    by_id = {s.id: s for s in specs}
    out: list[CheckSpec] = []
    seen: set[str] = set()

    def add(s: CheckSpec) -> None:
        if s.id in seen:
            return
        seen.add(s.id)
        for d in s.depends:
            if d in by_id:
                add(by_id[d])
        out.append(s)

    for s in specs:
        add(s)
    return out


def blocking(spec: CheckSpec, state_of: Mapping[str, str | None]) -> str | None:
    """The first dependency that is not OK (its state now), or None."""
    for d in spec.depends:
        if state_of.get(d) != "OK":
            return d
    return None


# -- when a check runs -------------------------------------------------------------------


def offset(spec: CheckSpec, node: str) -> float:
    """A check's fixed place in its spread: pseudo-random from its id and the node, so
    checks with one interval do not all fall in the same run, and every run (and test)
    agrees on it without keeping it."""
    if spec.spread <= 0:
        return 0.0
    return (zlib.crc32(f"{node}\0{spec.id}".encode()) / 2**32) * spec.spread


def due(spec: CheckSpec, rec: Mapping[str, Any] | None, now: float, node: str) -> bool:
    """Whether the check runs now: never run (after its spread offset from when it was
    first seen), or its interval since the last time it was due has passed."""
    if rec is None:
        return spec.spread <= 0
    last = rec.get("last_due")
    if last is None:
        return now >= float(rec.get("first_seen", now)) + offset(spec, node) - DUE_TOLERANCE
    if spec.interval <= 0:
        return True
    tolerance = min(DUE_TOLERANCE, spec.interval / 10)
    return now >= float(last) + spec.interval - tolerance


# -- folding a run's results into the records --------------------------------------------


def fold(
    book: Book,
    specs: Sequence[CheckSpec],
    results: Mapping[str, Result],
    now: float,
    flap_window: int,
    flap_changes: int,
) -> None:
    """Update the records from this run's results; forget checks no longer configured."""
    ids = {s.id for s in specs}
    for cid in [c for c in book.checks if c not in ids]:
        del book.checks[cid]
    for spec in specs:
        rec = book.checks.setdefault(spec.id, {"first_seen": now})
        r = results.get(spec.id)
        if r is None or r.why == "not due":
            continue
        rec["last_due"] = now
        if r.dependent_on is not None:
            rec["dependent_on"] = r.dependent_on
            rec["last_seen"] = now
            continue
        if r.outcome is None:  # cut off by the run's deadline: goes stale in time
            continue
        rec.pop("dependent_on", None)
        o = r.outcome
        old = rec.get("state")
        if old != o.state:
            rec["since"] = now
        rec["state"] = o.state
        rec["text"] = o.text
        rec["perf"] = [p.text() for p in o.perf]
        rec["last_run"] = rec["last_seen"] = now
        rec["duration"] = round(r.duration, 3)
        rec["attempts"] = r.attempts
        if flap_changes > 0:
            history = [*rec.get("history", []), o.state][-flap_window:]
            rec["history"] = history
            changes = sum(1 for a, b in itertools.pairwise(history) if a != b)
            if rec.get("flapping"):
                rec["flapping"] = changes > flap_changes // 2
            else:
                rec["flapping"] = changes >= flap_changes
        else:
            rec.pop("history", None)
            rec.pop("flapping", None)


def effective(
    rec: Mapping[str, Any] | None, spec: CheckSpec, now: float, stale_after: float
) -> str:
    """What a check is now, as the operator would be told: a state name, STALE,
    FLAPPING, DEPENDENT (not told) or PENDING (never ran, not told)."""
    if rec is None:
        return PENDING
    seen = rec.get("last_seen", rec.get("first_seen"))
    if seen is not None and now - float(seen) > spec.interval + spec.spread + stale_after:
        return STALE
    if rec.get("dependent_on"):
        return DEPENDENT
    if "state" not in rec:
        return PENDING
    if rec.get("flapping"):
        return FLAPPING
    return STATES[int(rec["state"])]


def states_now(
    book: Book, specs: Sequence[CheckSpec], now: float, stale_after: float
) -> dict[str, str]:
    return {s.id: effective(book.checks.get(s.id), s, now, stale_after) for s in specs}


# -- who tells ---------------------------------------------------------------------------


def reachable(specs: Sequence[CheckSpec], state: Mapping[str, str], me: str) -> set[str]:
    """The nodes this node can see: itself, and every node with a ping check OK over
    some family (or with no ping check at all: nothing says it is gone)."""
    pings: dict[str, list[str]] = {}
    for s in specs:
        if s.kind == "ping" and s.node is not None:
            pings.setdefault(s.node, []).append(state.get(s.id, PENDING))
    seen = {me}
    for node, states in pings.items():
        if any(st in ("OK", "WARNING", PENDING) for st in states):
            seen.add(node)
    return seen


def teller(order: Sequence[str], me: str, seen: set[str]) -> str:
    """The node that tells cluster findings: the first in the node order that this node
    sees. Every node that sees the first one agrees on it; a node that cannot see it
    tells itself (and so, when a node is down, the other still tells)."""
    for node in order:
        if node == me or node in seen:
            return node
    return me


def responsible(
    spec: CheckSpec, told: Mapping[str, Any] | None, me: str, tell: str, seen: set[str]
) -> str:
    """Who tells the next change of this check. Local checks: the node running them. A
    problem already told is ended by whoever told it, while it is seen (so the teller
    switching in between cannot tell the end twice or never); else the teller."""
    if spec.scope == "local":
        return me
    if told is not None and told.get("state", "OK") != "OK":
        by = told.get("by")
        if by == me or (by is not None and by in seen):
            return str(by)
    return tell


# -- what to tell --------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One check in a message."""

    id: str
    state: str
    was: str
    text: str
    since: float | None


@dataclass(frozen=True)
class Message:
    """One message: ``kind`` is "change", "renotify" or "weekly"."""

    kind: str
    subject: str
    body: str
    changed: tuple[Line, ...]
    broken: tuple[Line, ...]
    stale: tuple[Line, ...]
    counts: Mapping[str, int]
    severity: str


@dataclass(frozen=True)
class Plan:
    """For one channel: the message to send (or None), the told entries to record once
    it is delivered, and those to record at once (changes other nodes tell)."""

    message: Message | None
    on_delivery: Mapping[str, Mapping[str, Any]]
    assumed: Mapping[str, Mapping[str, Any]]


def counts(state: Mapping[str, str]) -> dict[str, int]:
    out = {k: 0 for k in (*TOLD_ORDER, DEPENDENT, PENDING)}
    for st in state.values():
        out[st] = out.get(st, 0) + 1
    return out


def plan(
    book: Book,
    specs: Sequence[CheckSpec],
    box: Mapping[str, Any],
    *,
    me: str,
    order: Sequence[str],
    now: float,
    stale_after: float,
    quiet: Iterable[str] = (),
    renotify: bool = False,
    weekly: bool = False,
) -> Plan:
    """What this node tells one channel after a run (see the module docstring).

    ``quiet``: checks in their quiet hours (their changes wait); ``renotify``: the
    daily re-notification is due (what stays broken is told even without a change);
    ``weekly``: the weekly report is due (sent even when all is well)."""
    told: Mapping[str, Mapping[str, Any]] = box.get("told", {})
    state = states_now(book, specs, now, stale_after)
    seen = reachable(specs, state, me)
    tell = teller(order, me, seen)
    held = set(quiet)
    changed: list[Line] = []
    broken: list[Line] = []
    on_delivery: dict[str, dict[str, Any]] = {}
    assumed: dict[str, dict[str, Any]] = {}
    mine: set[str] = set()
    for spec in specs:
        eff = state[spec.id]
        if eff in (DEPENDENT, PENDING):
            continue
        entry = told.get(spec.id)
        was = str(entry.get("state", "OK")) if entry else "OK"
        who = responsible(spec, entry, me, tell, seen)
        if who != me:
            if entry is None or was != eff or entry.get("by") != who:
                assumed[spec.id] = {"state": eff, "by": who, "since": now}
            continue
        mine.add(spec.id)
        rec = book.checks.get(spec.id, {})
        line = Line(spec.id, eff, was, _text(rec, eff), _since(rec))
        if eff != was:
            if spec.id in held:
                continue
            changed.append(line)
            on_delivery[spec.id] = {"state": eff, "by": me, "since": now}
        elif eff != "OK":
            broken.append(line)
    stale = [ln for ln in (*changed, *broken) if ln.state == STALE]
    total = counts(state)
    if changed:
        kind = "change"
    elif renotify and broken:
        kind = "renotify"
    elif weekly:
        kind = "weekly"
    else:
        return Plan(None, {}, assumed)
    dependent = _dependents(book, specs, state, mine)
    subject, body = compose(
        kind, me, now, changed, broken, stale, dependent, total, weekly and kind == "weekly"
    )
    severity = _severity([*changed, *broken])
    message = Message(
        kind, subject, body, tuple(changed), tuple(broken), tuple(stale), total, severity
    )
    return Plan(message, on_delivery, assumed)


def _text(rec: Mapping[str, Any], eff: str) -> str:
    if eff == STALE:
        return "not run for too long" + (f" (last: {rec.get('text')})" if rec.get("text") else "")
    if eff == FLAPPING:
        return "changes state too often; told again when it settles" + (
            f" (now: {STATES[int(rec['state'])]}: {rec.get('text', '')})" if "state" in rec else ""
        )
    return str(rec.get("text", ""))


def _since(rec: Mapping[str, Any]) -> float | None:
    since = rec.get("since")
    return float(since) if since is not None else None


def _severity(lines: Sequence[Line]) -> str:
    states = {ln.state for ln in lines}
    if "CRITICAL" in states:
        return "critical"
    if states & {"WARNING", "UNKNOWN", STALE, FLAPPING}:
        return "warning"
    return "info"


def _dependents(
    book: Book, specs: Sequence[CheckSpec], state: Mapping[str, str], mine: set[str]
) -> dict[str, list[str]]:
    """dependency -> the checks waiting on it, for dependencies this node tells about."""
    out: dict[str, list[str]] = {}
    for s in specs:
        dep = book.checks.get(s.id, {}).get("dependent_on")
        if state[s.id] == DEPENDENT and dep is not None:
            root = _root(str(dep), book)
            if root in mine:
                out.setdefault(root, []).append(s.id)
    return out


def _root(dep: str, book: Book) -> str:
    seen = set()
    while dep not in seen:
        seen.add(dep)
        nxt = book.checks.get(dep, {}).get("dependent_on")
        if not nxt:
            break
        dep = str(nxt)
    return dep


def _age(seconds: float) -> str:
    s = int(max(0.0, seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= 2 * size:
            return f"{s // size}{unit}"
    return f"{s}s"


def count_text(c: Mapping[str, int]) -> str:
    return (
        f"[C:{c.get('CRITICAL', 0)} W:{c.get('WARNING', 0)} U:{c.get('UNKNOWN', 0)} "
        f"stale:{c.get(STALE, 0)} OK:{c.get('OK', 0)}]"
    )


def compose(
    kind: str,
    me: str,
    now: float,
    changed: Sequence[Line],
    broken: Sequence[Line],
    stale: Sequence[Line],
    dependent: Mapping[str, Sequence[str]],
    total: Mapping[str, int],
    weekly: bool = False,
) -> tuple[str, str]:
    """The subject (counts in brackets, as Gogios) and the plain-text body."""
    from kissha.core.model import iso

    def order(lines: Sequence[Line]) -> list[Line]:
        return sorted(lines, key=lambda ln: (TOLD_ORDER.index(ln.state), ln.id))

    changed, broken = order(changed), order(broken)
    if kind == "change":
        first = changed[0]
        head = f"{first.state} {first.id}" + (
            f" (+{len(changed) - 1} more)" if len(changed) > 1 else ""
        )
    elif kind == "renotify":
        head = f"still broken: {len(broken)} check{'s' if len(broken) != 1 else ''}"
    else:
        head = "weekly report"
    subject = f"kissha monitor ({me}): {head} {count_text(total)}"
    width = max((len(ln.id) for ln in (*changed, *broken)), default=10)
    out = [f"kissha monitor on {me} at {iso(now)}", ""]
    if changed:
        out.append("Changed:")
        for ln in changed:
            out.append(f"  {ln.state:<8}  {ln.id:<{width}}  (was {ln.was})  {ln.text}".rstrip())
        out.append("")
    if broken:
        out.append("Still broken:" if kind != "weekly" else "Not OK:")
        for ln in broken:
            since = f"  for {_age(now - ln.since)}" if ln.since is not None else ""
            out.append(f"  {ln.state:<8}  {ln.id:<{width}}{since}  {ln.text}".rstrip())
        out.append("")
    if stale:
        out.append("Stale (not run for too long): " + ", ".join(ln.id for ln in stale))
        out.append("")
    if dependent:
        out.append("Not alerted, their dependency is not OK:")
        for dep, ids in sorted(dependent.items()):
            shown = ", ".join(ids[:6]) + (f", … ({len(ids)} in all)" if len(ids) > 6 else "")
            out.append(f"  {dep}: {shown}")
        out.append("")
    if weekly and not changed and not broken:
        out += ["Every check this node tells about is OK.", ""]
    n = sum(v for k, v in total.items() if k not in (DEPENDENT, PENDING))
    out.append(
        f"Counts: {total.get('CRITICAL', 0)} CRITICAL, {total.get('WARNING', 0)} WARNING, "
        f"{total.get('UNKNOWN', 0)} UNKNOWN, {total.get(STALE, 0)} stale, "
        f"{total.get(FLAPPING, 0)} flapping, {total.get('OK', 0)} OK "
        f"({n} checks; {total.get(DEPENDENT, 0)} waiting on a dependency)"
    )
    out.append("")
    out.append(f"-- kissha monitor on {me}; 'kissha monitor' there shows every check")
    return subject, "\n".join(out) + "\n"


# -- quiet hours, re-notification, weekly report -------------------------------------------


def in_quiet(ranges: Sequence[tuple[int, int]], minute: int) -> bool:
    """Whether a minute of the day (0-1439) is inside one of the ranges; a range may
    wrap past midnight (22:00-07:00)."""
    for start, end in ranges:
        if start <= end:
            if start <= minute < end:
                return True
        elif minute >= start or minute < end:
            return True
    return False


def last_moment(now: float, minute: int, weekday: int | None, tz: Any) -> float:
    """The latest time <= now that is at ``minute`` of the day (on ``weekday``, 0 =
    Monday, if given) in time zone ``tz``; for the daily and weekly messages."""
    from datetime import datetime, timedelta

    local = datetime.fromtimestamp(now, tz)
    moment = local.replace(hour=minute // 60, minute=minute % 60, second=0, microsecond=0)
    if weekday is not None:
        moment -= timedelta(days=(moment.weekday() - weekday) % 7)
    if moment > local:
        moment -= timedelta(days=7 if weekday is not None else 1)
    # Across a DST change the naive arithmetic is an hour off at worst: fine for a report.
    return moment.timestamp()


def minute_of_day(now: float, tz: Any) -> int:
    from datetime import datetime

    local = datetime.fromtimestamp(now, tz)
    return local.hour * 60 + local.minute
