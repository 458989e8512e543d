"""Persisted state between runs: health streaks, current roles, pin, bounded event history."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kissha.core.model import NodeHealth, Pin, Roles
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
    events: list[dict[str, Any]] = field(default_factory=list)
    last_run: dict[str, Any] = field(default_factory=dict)
    # Counted for ever (events are trimmed): kissha_failovers_total, kissha_rollbacks_total.
    failovers: int = 0
    rollbacks: int = 0
    # The id of the last event: ids only grow, so notifications know what they have sent.
    seq: int = 0
    # Debounced health per node and address family (same thresholds as the nodes').
    families: dict[str, dict[str, NodeHealth]] = field(default_factory=dict)
    # Open problems by key ("node-down:fishfinger", "cert-expiring:blowfish/https"...):
    # {"kind", "since", "message", ...}; an event is added when one opens, none while it
    # stays open, so a problem is reported once and reminded about, not every run.
    problems: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Split brain seen by watch_nameservers, not yet long enough to report: {"since": t}.
    watch: dict[str, Any] = field(default_factory=dict)

    def add_event(self, time: float, kind: str, message: str, **extra: Any) -> dict[str, Any]:
        self.seq += 1
        event = {"id": self.seq, "time": round(time, 3), "kind": kind, "message": message, **extra}
        self.events.append(event)
        del self.events[:-MAX_EVENTS]
        return event

    def open_problem(
        self, time: float, key: str, kind: str, message: str, **extra: Any
    ) -> dict[str, Any] | None:
        """Open a problem and add its event; None (no event) if it is already open."""
        if key in self.problems:
            return None
        self.problems[key] = {"kind": kind, "since": round(time, 3), "message": message, **extra}
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
            "counters": {"failovers": self.failovers, "rollbacks": self.rollbacks},
            "seq": self.seq,
            "families": {
                n: {f: _health_json(h) for f, h in fams.items()}
                for n, fams in self.families.items()
            },
            "problems": self.problems,
            "watch": self.watch,
            "events": self.events,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        health = {str(n): _health(h) for n, h in data.get("health", {}).items()}
        r = data.get("roles")
        roles = None if not r else Roles(r["master"], r["standby"], tuple(r.get("order", ())))
        p = data.get("pin")
        pin = (
            None
            if not p
            else Pin(str(p["node"]), None if p.get("until") is None else float(p["until"]))
        )
        counters = data.get("counters") or {}  # absent in state files written before 0.2
        events = list(data.get("events", []))
        # seq, families, problems and watch are absent in files written before notifications.
        seq = int(data.get("seq", 0))
        seq = max([seq, *(int(e.get("id", 0)) for e in events)])
        families = {
            str(n): {str(f): _health(h) for f, h in fams.items()}
            for n, fams in (data.get("families") or {}).items()
        }
        return cls(
            health,
            roles,
            pin,
            events,
            dict(data.get("last_run", {})),
            failovers=int(counters.get("failovers", 0)),
            rollbacks=int(counters.get("rollbacks", 0)),
            seq=seq,
            families=families,
            problems={str(k): dict(v) for k, v in (data.get("problems") or {}).items()},
            watch=dict(data.get("watch") or {}),
        )


def _health_json(h: NodeHealth) -> dict[str, Any]:
    return {"up": h.up, "fail_streak": h.fail_streak, "ok_streak": h.ok_streak}


def _health(h: dict[str, Any]) -> NodeHealth:
    return NodeHealth(bool(h["up"]), int(h["fail_streak"]), int(h["ok_streak"]))


def state_path(state_dir: Path, name: str = "state.json") -> Path:
    return state_dir / name


def load(state_dir: Path, name: str = "state.json") -> tuple[State, str | None]:
    """Read the state; a missing file is a fresh start. A corrupt one is set aside as
    ``state.json.corrupt`` and also starts fresh, with a warning: failover must not stop
    because kissha's own memory is damaged."""
    return _load(state_dir, set_aside=True, name=name)


def load_readonly(state_dir: Path) -> tuple[State, str | None]:
    """Like load, but never moves a file (for dry runs and status)."""
    return _load(state_dir, set_aside=False)


def _load(state_dir: Path, set_aside: bool, name: str = "state.json") -> tuple[State, str | None]:
    path = state_path(state_dir, name)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return State(), None
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"unknown state version {data.get('version')!r}")
        return State.from_json(data), None
    except (ValueError, KeyError, TypeError) as exc:
        if not set_aside:
            return State(), f"{path}: unreadable state ({exc}); a real run sets it aside"
        os.replace(path, path.with_name(path.name + ".corrupt"))
        warning = f"{path}: unreadable state ({exc}); set aside as {path.name}.corrupt"
        log.warning(warning)
        return State(), warning


def save(state_dir: Path, state: State, name: str = "state.json") -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode() + b"\n"
    atomic_write(state_path(state_dir, name), data, mode=0o644)
