"""state_dir/monitor.json: the monitor's records between runs, written atomically.

Read through kissha.ownfile: every record is shape-checked when loaded, so the monitor's
logic can trust what it reads; a damaged file (unreadable, garbage, JSON of the wrong
shape) is set aside as ``monitor.json.bad-<UTC time>`` with a one-line warning and the
monitor starts afresh (never a crash: a check's memory is a convenience)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kissha import ownfile as of
from kissha.monitor.logic import Book
from kissha.monitor.model import STATES

log = logging.getLogger(__name__)
VERSION = 1
NAME = "monitor.json"
# What a check record holds, and how each member is checked (see logic.fold).
_TIMES = ("first_seen", "last_due", "last_seen", "last_run", "since")


def load(state_dir: Path, readonly: bool = False) -> tuple[Book, str | None]:
    path = state_dir / NAME
    try:
        return parse(path.read_bytes()), None
    except FileNotFoundError:
        return Book(), None
    except OSError as exc:
        return Book(), f"{path}: cannot read ({exc.strerror or exc}); starting afresh"
    except of.Bad as exc:
        why = f"unreadable ({exc})"
    if readonly:
        return Book(), f"{path}: {why}; a real run sets it aside"
    warning = f"{path}: {why}; {of.set_aside(path)}; starting afresh"
    log.warning(warning)
    return Book(), warning


def parse(raw: bytes) -> Book:
    """monitor.json's bytes as a Book whose every member is of the shape the monitor
    reads, or ``ownfile.Bad`` naming the first that is not."""
    data = of.obj(of.parse(raw), "monitor")
    if data.get("version") != VERSION:
        raise of.Bad(f"unknown version {str(data.get('version'))[:40]!r}")
    checks = {
        of.text(cid, "checks"): _check(rec, f"checks.{cid}")
        for cid, rec in of.opt_obj(data, "checks", "").items()
    }
    channels = {
        name: _channel(box, f"channels.{name}")
        for name, box in of.opt_obj(data, "channels", "").items()
    }
    return Book(checks, channels, _last_run(of.opt_obj(data, "last_run", "")))


def _check(v: Any, where: str) -> dict[str, Any]:
    rec = of.obj(v, where)
    out: dict[str, Any] = {}
    for key, value in rec.items():
        at = f"{where}.{key}"
        if key in _TIMES:
            out[key] = of.timestamp(value, at)
        elif key == "state":
            out[key] = _state(value, at)
        elif key in ("text", "dependent_on"):
            out[key] = of.text(value, at)
        elif key == "perf":
            out[key] = [of.text(p, f"{at}[]") for p in of.seq(value, at)]
        elif key == "duration":
            out[key] = of.number(value, at)
        elif key == "attempts":
            out[key] = of.count(value, at)
        elif key == "history":
            out[key] = [_state(s, f"{at}[]") for s in of.seq(value, at)]
        elif key == "flapping":
            out[key] = of.boolean(value, at)
        # Anything else is from another version: dropped, nothing reads it.
    return out


def _state(v: Any, where: str) -> int:
    if of.count(v, where) >= len(STATES):
        raise of.Bad(f"{where}: not a state")
    return int(v)


def _channel(v: Any, where: str) -> dict[str, Any]:
    box = of.obj(v, where)
    out: dict[str, Any] = {"told": {}}
    for cid, entry in of.opt_obj(box, "told", where).items():
        at = f"{where}.told.{cid}"
        e = of.obj(entry, at)
        told: dict[str, Any] = {}
        if "state" in e:
            told["state"] = of.text(e["state"], f"{at}.state")
        if e.get("by") is not None:
            told["by"] = of.text(e["by"], f"{at}.by")
        if "since" in e:
            told["since"] = of.timestamp(e["since"], f"{at}.since")
        out["told"][cid] = told
    for key in ("renotified", "weekly"):
        if key in box:
            out[key] = of.timestamp(box[key], f"{where}.{key}")
    if "sent" in box:
        out["sent"] = [of.timestamp(t, f"{where}.sent[]") for t in of.seq(box["sent"], where)]
    return out


def _last_run(run: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "time" in run:
        out["time"] = of.timestamp(run["time"], "last_run.time")
    if "node" in run:
        out["node"] = of.text(run["node"], "last_run.node")
    for key in ("checks", "ran"):
        if key in run:
            out[key] = of.count(run[key], f"last_run.{key}")
    if "duration" in run:
        out["duration"] = of.number(run["duration"], "last_run.duration")
    return out


def save(state_dir: Path, book: Book) -> None:
    from kissha.files import atomic_write

    state_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "version": VERSION,
        "last_run": book.last_run,
        "checks": book.checks,
        "channels": book.channels,
    }
    atomic_write(
        state_dir / NAME, json.dumps(data, indent=1, sort_keys=True).encode() + b"\n", mode=0o644
    )
