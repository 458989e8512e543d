"""Persisted state between runs: health streaks, current roles, pin, bounded event history."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kissha.files import atomic_write
from kissha.model import NodeHealth, Pin, Roles

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

    def add_event(self, time: float, kind: str, message: str, **extra: Any) -> None:
        self.events.append({"time": round(time, 3), "kind": kind, "message": message, **extra})
        del self.events[:-MAX_EVENTS]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "health": {
                n: {"up": h.up, "fail_streak": h.fail_streak, "ok_streak": h.ok_streak}
                for n, h in self.health.items()
            },
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
            "events": self.events,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        health = {
            str(n): NodeHealth(bool(h["up"]), int(h["fail_streak"]), int(h["ok_streak"]))
            for n, h in data.get("health", {}).items()
        }
        r = data.get("roles")
        roles = None if not r else Roles(r["master"], r["standby"], tuple(r.get("order", ())))
        p = data.get("pin")
        pin = (
            None
            if not p
            else Pin(str(p["node"]), None if p.get("until") is None else float(p["until"]))
        )
        counters = data.get("counters") or {}  # absent in state files written before 0.2
        return cls(
            health,
            roles,
            pin,
            list(data.get("events", [])),
            dict(data.get("last_run", {})),
            failovers=int(counters.get("failovers", 0)),
            rollbacks=int(counters.get("rollbacks", 0)),
        )


def state_path(state_dir: Path) -> Path:
    return state_dir / "state.json"


def load(state_dir: Path) -> tuple[State, str | None]:
    """Read the state; a missing file is a fresh start. A corrupt one is set aside as
    ``state.json.corrupt`` and also starts fresh, with a warning: failover must not stop
    because kissha's own memory is damaged."""
    return _load(state_dir, set_aside=True)


def load_readonly(state_dir: Path) -> tuple[State, str | None]:
    """Like load, but never moves a file (for dry runs and status)."""
    return _load(state_dir, set_aside=False)


def _load(state_dir: Path, set_aside: bool) -> tuple[State, str | None]:
    path = state_path(state_dir)
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


def save(state_dir: Path, state: State) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode() + b"\n"
    atomic_write(state_path(state_dir), data, mode=0o644)
