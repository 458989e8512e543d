"""Pure: which notifications each channel gets, and when; the outbox's bookkeeping.

Events come from the state, each with an id that only grows. A channel's ``cursor`` is
the last id it has taken in; newer events become notices in its ``pending`` queue,
which survives in ``notify.json`` until delivered (or given up after ``retry``). The
rate limit, the backoff after a failure and the reminders are decided here from
``now``; nothing reads a clock or a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kissha import ownfile as of
from kissha.notify import render
from kissha.notify.kinds import (
    CLUSTER,
    MASTER_CHANGES,
    PROBLEM_KIND,
    SEVERITIES,
    SEVERITY,
    kind_of,
)

if TYPE_CHECKING:
    from kissha.core.model import Event, Problem

HOUR = 3600.0
BACKOFF_FIRST = 30.0
BACKOFF_MAX = HOUR
NODE_LEVEL = ("node-down", "node-up", "family-down", "family-up")


class Rejected(str):
    """A delivery's error (deliver_all's result) for a notice the server refused itself
    (too large: HTTP 413, SMTP 552): sending it again cannot succeed, so it is given up
    at once, and the notices after it are still delivered."""

    __slots__ = ()


class Delivered(str):
    """deliver_all's result for a notice delivered with a concern worth a warning (a mail
    some recipients refused): delivered (never sent again), and the words warned."""

    __slots__ = ()


@dataclass
class Box:
    """One channel's part of the outbox."""

    cursor: int = 0
    pending: list[dict[str, Any]] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)  # delivery times within the last hour
    reminded: dict[str, float] = field(default_factory=dict)  # problem key -> last told
    failures: int = 0  # failed tries in a row
    next_try: float = 0.0
    dropped: int = 0  # notices given up after retrying for `retry`

    def to_json(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor,
            "pending": self.pending,
            "sent": self.sent,
            "reminded": self.reminded,
            "failures": self.failures,
            "next_try": self.next_try,
            "dropped": self.dropped,
        }

    @classmethod
    def from_json(cls, raw: Any, where: str = "box") -> Box:
        """A box from notify.json, shape-checked: raises ``ownfile.Bad`` naming the first
        member of the wrong type (the outbox is then set aside)."""
        data = of.obj(raw, where)
        reminded = of.opt_obj(data, "reminded", where)
        return cls(
            cursor=of.count(data.get("cursor", 0), f"{where}.cursor"),
            pending=[
                _notice(n, f"{where}.pending[{i}]")
                for i, n in enumerate(of.seq(data.get("pending", []), f"{where}.pending"))
            ],
            sent=[of.timestamp(t, f"{where}.sent") for t in of.seq(data.get("sent", []), where)],
            reminded={k: of.timestamp(v, f"{where}.reminded.{k}") for k, v in reminded.items()},
            failures=of.count(data.get("failures", 0), f"{where}.failures"),
            next_try=of.timestamp(data.get("next_try", 0.0), f"{where}.next_try"),
            dropped=of.count(data.get("dropped", 0), f"{where}.dropped"),
        )


def _notice(raw: Any, where: str) -> dict[str, Any]:
    """A waiting notice as ``notice``, ``reminder`` and ``select`` make them (a copy,
    with ``events`` and ``fields`` always there)."""
    n = dict(of.obj(raw, where))
    for key in ("id", "kind", "node", "title", "text"):
        of.text(n.get(key), f"{where}.{key}")
    if n.get("severity") not in SEVERITIES:
        raise of.Bad(f"{where}.severity: not one of {', '.join(SEVERITIES)}")
    of.timestamp(n.get("time"), f"{where}.time")
    n["events"] = of.seq(n.get("events", []), f"{where}.events")
    for i, e in enumerate(n["events"]):
        e = of.obj(e, f"{where}.events[{i}]")
        if "time" in e:
            of.timestamp(e["time"], f"{where}.events[{i}].time")
    n["fields"] = of.opt_obj(n, "fields", where)
    if "folds" in n:
        for x in of.seq(n["folds"], f"{where}.folds"):
            of.text(x, f"{where}.folds")
    return n


def sends(kind: str, me: str | None, master: str | None, cluster_events: str) -> bool:
    """Whether this node tells about ``kind``: events about the whole site are told by
    the master only (every node sees them), unless cluster_events = "every-node" or
    this node does not know its own name."""
    if cluster_events == "every-node" or kind not in CLUSTER or me is None:
        return True
    return me == master


def notice(kind: str, events: Sequence[Event], ctx: render.Context) -> dict[str, Any]:
    main = events[-1] if kind in MASTER_CHANGES else events[0]
    fields = {
        k: main.fields[k]
        for k in ("node", "family", "from", "to", "master", "standby", "cause", "reason")
        if k in main.fields
    }
    return {
        "id": "e" + "+".join(str(e.id) for e in events),
        "kind": kind,
        "severity": _severity(kind, events),
        "time": float(main.time),
        "node": ctx.node,
        "title": render.title(kind, events, ctx),
        "text": render.body(kind, events, ctx),
        "events": [
            {"id": e.id, "kind": e.kind, "time": e.time, "message": e.message} for e in events
        ],
        "fields": fields,
    }


def _severity(kind: str, events: Iterable[Event]) -> str:
    levels = [SEVERITY.get(kind, "warning")]
    levels += [SEVERITY.get(kind_of(e) or "", "info") for e in events]
    return max(levels, key=SEVERITIES.index)


def notices(
    events: Sequence[Event],
    allowed: frozenset[str],
    may_send: Mapping[str, bool] | None,
    ctx: render.Context,
) -> list[dict[str, Any]]:
    """The notices one channel gets for new events, in order.

    Events of one run (same time) are folded: a failover, failback or rotation takes in
    the node-down/up and family events of the two nodes it is about, so one failover is
    one message. ``may_send`` maps kind -> whether this node sends it (None: all)."""

    def ok(kind: str | None) -> bool:
        return kind is not None and kind in allowed and (may_send is None or may_send[kind])

    out: list[dict[str, Any]] = []
    for group in _runs(events):
        taken: set[int] = set()
        for i, e in enumerate(group):
            kind = kind_of(e)
            if kind not in MASTER_CHANGES or not ok(kind):
                continue
            nodes = {e.fields.get("from"), e.fields.get("to")}
            absorbed = [
                j
                for j, x in enumerate(group)
                if j not in taken
                and j != i
                and x.kind in NODE_LEVEL
                and x.fields.get("node") in nodes
            ]
            taken.update(absorbed)
            taken.add(i)
            out.append(notice(kind, [group[j] for j in absorbed] + [e], ctx))
        for i, e in enumerate(group):
            kind = kind_of(e)
            if i not in taken and ok(kind):
                assert kind is not None
                out.append(notice(kind, [e], ctx))
    out.sort(key=lambda n: int(str(n["id"])[1:].split("+")[0]))
    return out


def _runs(events: Sequence[Event]) -> list[list[Event]]:
    groups: list[list[Event]] = []
    for e in events:
        if groups and groups[-1][0].time == e.time:
            groups[-1].append(e)
        else:
            groups.append([e])
    return groups


def problem_kind(problem: Problem) -> str:
    return PROBLEM_KIND.get(problem.kind, problem.kind)


def reminder(
    box: Box,
    problems: Mapping[str, Problem],
    allowed: frozenset[str],
    may_send: Mapping[str, bool] | None,
    interval: float,
    ctx: render.Context,
) -> dict[str, Any] | None:
    """Keep ``box.reminded`` in step with the open problems this channel hears about;
    when one was last told ``interval`` ago or more, one reminder lists them all."""
    mine = {
        key: p
        for key, p in problems.items()
        if problem_kind(p) in allowed and (may_send is None or may_send.get(problem_kind(p), True))
    }
    for key in [k for k in box.reminded if k not in mine]:
        del box.reminded[key]
    for key in mine:
        box.reminded.setdefault(key, ctx.now)  # told by its own event, or first seen now
        # A drill with --now in the future must not silence real reminders until then.
        box.reminded[key] = min(box.reminded[key], ctx.now)
    if interval <= 0 or not mine:
        return None
    if all(ctx.now - box.reminded[k] < interval for k in mine):
        return None
    for key in mine:
        box.reminded[key] = ctx.now
    ordered = sorted(mine.values(), key=lambda p: float(p.since))
    head, text = render.reminder(ordered, ctx)
    return {
        "id": f"r{ctx.now:.3f}",
        "kind": "reminder",
        "severity": max(
            (SEVERITY.get(problem_kind(p), "warning") for p in ordered), key=SEVERITIES.index
        ),
        "time": ctx.now,
        "node": ctx.node,
        "title": head,
        "text": text,
        "events": [],
        "fields": {"problems": [p.message for p in ordered]},
    }


def select(box: Box, now: float, rate_limit: int) -> list[dict[str, Any]]:
    """What to send now: nothing while backing off after a failure; within the hour's
    budget each pending notice on its own, and when they do not fit, the rest folded
    into one digest (so nothing is lost, only grouped)."""
    # Times later than now come from a drill with --now in the future: they must not
    # use up a real hour's budget or hold back real deliveries until then.
    box.sent = [t for t in box.sent if 0 <= now - t < HOUR]
    if box.next_try > now + BACKOFF_MAX:  # no real backoff is longer
        box.next_try = 0.0
    if not box.pending or now < box.next_try:
        return []
    budget = rate_limit - len(box.sent)
    if budget <= 0:
        return []
    if len(box.pending) <= budget:
        return list(box.pending)
    single = box.pending[: budget - 1]
    rest = box.pending[budget - 1 :]
    head, text = render.digest(rest)
    folded = {
        "id": "d" + ",".join(str(n["id"]) for n in rest),
        "kind": "digest",
        "severity": max((str(n["severity"]) for n in rest), key=SEVERITIES.index),
        "time": now,
        "node": rest[-1]["node"],
        "title": head,
        "text": text,
        "events": [e for n in rest for e in n.get("events", [])],
        "fields": {"notices": [n["id"] for n in rest]},
        "folds": [n["id"] for n in rest],
    }
    return [*single, folded]


def settle(
    box: Box,
    tried: Sequence[Mapping[str, Any]],
    errors: Sequence[str | None],
    now: float,
    retry: float,
) -> list[str]:
    """Record what was delivered (``errors[i]`` None) and what failed; returns warnings.

    Deliveries to a channel stop at the first failure, so the channel backs off as a
    whole (30 s, doubling, at most an hour); notices waiting longer than ``retry`` since
    their event are given up with a warning, never silently. A notice the server
    rejected itself (``Rejected``) is given up at once, with a warning: one notice too
    large for a server must not hold back the others for ``retry``."""
    done: set[str] = set()
    failure: str | None = None
    warnings: list[str] = []
    for n, error in zip(tried, errors, strict=True):
        if error is None or isinstance(error, Delivered):
            done.update(n.get("folds", [n["id"]]))
            box.sent.append(now)
            if error is not None:
                warnings.append(error)
        elif isinstance(error, Rejected):
            folds = n.get("folds", [n["id"]])
            done.update(folds)
            box.dropped += len(folds)
            what = f"{len(folds)} notifications (a digest)" if len(folds) > 1 else "a notification"
            warnings.append(f"gave up {what} the server rejected: {n['title']}: {error}")
        elif failure is None:
            failure = error
    box.pending = [n for n in box.pending if n["id"] not in done]
    if failure is None:
        if tried:
            box.failures, box.next_try = 0, 0.0
        return warnings
    box.failures += 1
    box.next_try = now + min(BACKOFF_FIRST * 2 ** (box.failures - 1), BACKOFF_MAX)
    warnings.append(failure)
    # retry = 0 ("off"): give up at the first failure.
    expired = [n for n in box.pending if retry == 0 or now - float(n["time"]) > retry]
    if expired:
        box.pending = [n for n in box.pending if n not in expired]
        box.dropped += len(expired)
        warnings.append(
            f"gave up {len(expired)} notification(s) after retrying for {retry:g} s: "
            + "; ".join(str(n["title"]) for n in expired[:3])
        )
    return warnings
