"""Persisted state between runs: health streaks, current roles, pin, bounded event history."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kissha import ownfile as of
from kissha.core.model import FAMILIES, Event, EventKind, NodeHealth, Pin, Problem, Roles
from kissha.files import atomic_write

log = logging.getLogger(__name__)
VERSION = 1
MAX_EVENTS = 200


@dataclass
class State:
    """What one node remembers; written atomically after every run that is not a dry run."""

    health: dict[str, NodeHealth] = field(default_factory=dict)
    roles: Roles | None = None
    pin: Pin | None = None
    events: list[Event] = field(default_factory=list)
    last_run: dict[str, Any] = field(default_factory=dict)
    # Counted for ever (events are trimmed): kissha_failovers_total (health failovers
    # only), kissha_failbacks_total, kissha_rotations_total, kissha_rollbacks_total.
    failovers: int = 0
    rollbacks: int = 0
    failbacks: int = 0
    rotations: int = 0
    record_changes: int = 0  # changes that kept the master ("records" events)
    # The node the preference put first at the last run that applied roles: a change of
    # it (a new week, a pin, an edited config) makes a master change a rotation.
    preferred: str | None = None
    # The id of the last event: ids only grow, so notifications know what they have sent.
    seq: int = 0
    # Debounced health per node and address family (same thresholds as the nodes').
    families: dict[str, dict[str, NodeHealth]] = field(default_factory=dict)
    # Open problems by key ("node-down:fishfinger", "cert-expiring:blowfish/https"...):
    # an event is added when one opens, none while it stays open, so a problem is
    # reported once and reminded about, not every run.
    problems: dict[str, Problem] = field(default_factory=dict)
    # Split brain seen by watch_nameservers, not yet long enough to report: {"since": t}.
    watch: dict[str, Any] = field(default_factory=dict)

    def add_event(self, time: float, kind: EventKind, message: str, **extra: Any) -> Event:
        self.seq += 1
        event = Event(self.seq, round(time, 3), kind, message, extra)
        self.events.append(event)
        del self.events[:-MAX_EVENTS]
        return event

    def open_problem(
        self, time: float, key: str, kind: EventKind, message: str, **extra: Any
    ) -> Event | None:
        """Open a problem and add its event; None (no event) if it is already open."""
        if key in self.problems:
            return None
        self.problems[key] = Problem(kind, round(time, 3), message, extra)
        return self.add_event(time, kind, message, **extra)

    def close_problem(self, key: str) -> bool:
        return self.problems.pop(key, None) is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "health": {n: _health_json(h) for n, h in self.health.items()},
            "roles": None
            if self.roles is None
            else {
                "master": self.roles.master,
                "standby": self.roles.standby,
                "order": list(self.roles.order),
            },
            "pin": None if self.pin is None else {"node": self.pin.node, "until": self.pin.until},
            "last_run": self.last_run,
            "counters": {
                "failovers": self.failovers,
                "failbacks": self.failbacks,
                "rotations": self.rotations,
                "records": self.record_changes,
                "rollbacks": self.rollbacks,
            },
            "preferred": self.preferred,
            "seq": self.seq,
            "families": {
                n: {f: _health_json(h) for f, h in fams.items()}
                for n, fams in self.families.items()
            },
            "problems": {k: p.to_json() for k, p in self.problems.items()},
            "watch": self.watch,
            "events": [e.to_json() for e in self.events],
        }

    @classmethod
    def from_json(cls, raw: Any) -> State:
        """The state from a file's JSON, shape-checked: raises ``ownfile.Bad`` naming the
        first member of the wrong type. Members added in later versions may be absent
        (counters before 0.2; seq, families, problems and watch before notifications)."""
        data = of.obj(raw, "state")
        if data.get("version") != VERSION:
            raise of.Bad(f"unknown state version {_short_repr(data.get('version'))}")
        counters = of.opt_obj(data, "counters", "")
        events = [
            _event(e, f"events[{i}]")
            for i, e in enumerate(of.seq(data.get("events", []), "events"))
        ][-MAX_EVENTS:]
        seq = max([of.count(data.get("seq", 0), "seq"), *(e.id for e in events)])
        watch = of.opt_obj(data, "watch", "")
        if "since" in watch:
            of.timestamp(watch["since"], "watch.since")
        return cls(
            {n: _health(h, f"health.{n}") for n, h in of.opt_obj(data, "health", "").items()},
            _roles(data.get("roles")),
            _pin(data.get("pin")),
            events,
            _last_run(of.opt_obj(data, "last_run", "")),
            failovers=of.count(counters.get("failovers", 0), "counters.failovers"),
            rollbacks=of.count(counters.get("rollbacks", 0), "counters.rollbacks"),
            failbacks=of.count(counters.get("failbacks", 0), "counters.failbacks"),
            rotations=of.count(counters.get("rotations", 0), "counters.rotations"),
            record_changes=of.count(counters.get("records", 0), "counters.records"),
            preferred=None
            if data.get("preferred") is None
            else of.text(data["preferred"], "preferred"),
            seq=seq,
            families=_families(of.opt_obj(data, "families", "")),
            problems={
                k: _problem(v, f"problems.{k}") for k, v in of.opt_obj(data, "problems", "").items()
            },
            watch=watch,
        )


def _roles(raw: Any) -> Roles | None:
    if raw is None:
        return None
    r = of.obj(raw, "roles")
    order = tuple(of.text(x, "roles.order") for x in of.seq(r.get("order", []), "roles.order"))
    return Roles(
        of.text(r.get("master"), "roles.master"), of.text(r.get("standby"), "roles.standby"), order
    )


def _pin(raw: Any) -> Pin | None:
    if raw is None:
        return None
    p = of.obj(raw, "pin")
    until = None if p.get("until") is None else of.number(p["until"], "pin.until")
    if until is not None:
        # Printable times only: a pin "for 10,000 years" is a pin for ever, and one
        # before the year 1 has expired as surely as one yesterday.
        until = None if until >= of.MAX_TIME else max(until, of.MIN_TIME)
    return Pin(of.text(p.get("node"), "pin.node"), until)


def _families(data: dict[str, Any]) -> dict[str, dict[str, NodeHealth]]:
    return {
        n: {
            _family(f, f"families.{n}"): _health(h, f"families.{n}.{f}")
            for f, h in of.obj(fams, f"families.{n}").items()
        }
        for n, fams in data.items()
    }


def _short_repr(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:39] + "…"


def _health_json(h: NodeHealth) -> dict[str, Any]:
    return {"up": h.up, "fail_streak": h.fail_streak, "ok_streak": h.ok_streak}


def _health(raw: Any, where: str) -> NodeHealth:
    h = of.obj(raw, where)
    return NodeHealth(
        of.boolean(h.get("up"), f"{where}.up"),
        of.count(h.get("fail_streak"), f"{where}.fail_streak"),
        of.count(h.get("ok_streak"), f"{where}.ok_streak"),
    )


def _family(f: str, where: str) -> str:
    if f not in FAMILIES:
        raise of.Bad(f"{where}: unknown address family {_short_repr(f)}")
    return f


# Members of events and problems that kissha reads back, and their types.
_TEXT_FIELDS = ("node", "from", "to", "cause", "reason", "master", "standby", "family", "probe")
_TEXT_LISTS = ("zones", "families")
# Earlier versions made every master change a "failover" event with a cause; now it is
# the kind, so the history never calls a failback or a rotation "failover".
_OLD_CAUSES = ("failback", "rotation")


def _fields(e: dict[str, Any], where: str) -> None:
    for key in _TEXT_FIELDS:
        if key in e:
            of.text(e[key], f"{where}.{key}")
    for key in _TEXT_LISTS:
        if key in e:
            for x in of.seq(e[key], f"{where}.{key}"):
                of.text(x, f"{where}.{key}")


def _event(raw: Any, where: str) -> Event:
    e = dict(of.obj(raw, where))
    # Events written before notifications have no id: 0, never above a channel's cursor.
    e["id"] = of.count(e.get("id", 0), f"{where}.id")
    of.timestamp(e.get("time"), f"{where}.time")
    kind = of.text(e.get("kind"), f"{where}.kind")
    of.text(e.get("message"), f"{where}.message")
    _fields(e, where)
    if kind == "failover" and e.get("cause") in _OLD_CAUSES:
        e["kind"] = e["cause"]
    return Event.from_json(e)


def _problem(raw: Any, where: str) -> Problem:
    p = of.obj(raw, where)
    of.text(p.get("kind"), f"{where}.kind")
    of.timestamp(p.get("since"), f"{where}.since")
    of.text(p.get("message"), f"{where}.message")
    _fields(p, where)
    return Problem.from_json(p)


def _last_run(r: dict[str, Any]) -> dict[str, Any]:
    if "time" in r:
        of.timestamp(r["time"], "last_run.time")
    for i, raw in enumerate(of.seq(r.get("probes", []), "last_run.probes")):
        where = f"last_run.probes[{i}]"
        p = of.obj(raw, where)
        for key in ("node", "probe", "detail"):
            of.text(p.get(key), f"{where}.{key}")
        _family(of.text(p.get("family"), f"{where}.family"), where)
        of.boolean(p.get("ok"), f"{where}.ok")
        of.boolean(p.get("required", True), f"{where}.required")
        if p.get("warning") is not None:
            of.text(p["warning"], f"{where}.warning")
        if p.get("latency_ms") is not None:
            latency = of.number(p["latency_ms"], f"{where}.latency_ms")
            if latency < 0:
                raise of.Bad(f"{where}.latency_ms: negative")
    return r


def state_path(state_dir: Path, name: str = "state.json") -> Path:
    return state_dir / name


def load(state_dir: Path, name: str = "state.json") -> tuple[State, str | None]:
    """Read the state; a missing file is a fresh start. A damaged one (unreadable,
    garbage, JSON of the wrong shape) is set aside as ``state.json.bad-<UTC time>`` and
    also starts fresh, with a one-line warning: failover must not stop because kissha's
    own memory is damaged."""
    return _load(state_dir, set_aside=True, name=name)


def load_readonly(state_dir: Path) -> tuple[State, str | None]:
    """Like load, but never moves a file (for dry runs and status)."""
    return _load(state_dir, set_aside=False)


def _load(state_dir: Path, set_aside: bool, name: str = "state.json") -> tuple[State, str | None]:
    path = state_path(state_dir, name)
    try:
        return State.from_json(of.parse(path.read_bytes())), None
    except FileNotFoundError:
        return State(), None
    except OSError as exc:
        why = f"cannot read ({exc.strerror or exc})"
    except of.Bad as exc:
        why = f"unreadable state ({exc})"
    if not set_aside:
        return State(), f"{path}: {why}; a real run sets it aside"
    warning = f"{path}: {why}; {of.set_aside(path)}; starting from a fresh state"
    log.warning(warning)
    return State(), warning


def save(state_dir: Path, state: State, name: str = "state.json") -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode() + b"\n"
    atomic_write(state_path(state_dir, name), data, mode=0o644)
