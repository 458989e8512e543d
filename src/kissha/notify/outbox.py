"""state_dir/notify.json: per channel what was taken in, what waits, what was sent."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from kissha.notify.plan import Box

log = logging.getLogger(__name__)
VERSION = 1
NAME = "notify.json"


@dataclass
class Outbox:
    channels: dict[str, Box] = field(default_factory=dict)

    def dumps(self) -> str:
        data = {
            "version": VERSION,
            "channels": {n: b.to_json() for n, b in sorted(self.channels.items())},
        }
        return json.dumps(data, indent=1, sort_keys=True) + "\n"


def load(state_dir: Path, name: str = NAME) -> tuple[Outbox, list[str]]:
    """A missing file is an empty outbox; a damaged one is set aside (with a warning) so
    notifications go on, from this run's events."""
    path = state_dir / name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Outbox(), []
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(f"unknown version {data.get('version')!r}")
        boxes = {str(n): Box.from_json(b) for n, b in data.get("channels", {}).items()}
        return Outbox(boxes), []
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        os.replace(path, path.with_name(name + ".corrupt"))
        warning = f"notify: {path}: unreadable ({exc}); set aside as {name}.corrupt"
        log.warning(warning)
        return Outbox(), [warning]


def save(state_dir: Path, outbox: Outbox, name: str = NAME) -> list[str]:
    from kissha.files import atomic_write

    try:
        atomic_write(state_dir / name, outbox.dumps().encode(), mode=0o600)
    except OSError as exc:
        warning = f"notify: cannot write {state_dir / name}: {exc.strerror or exc}"
        log.warning(warning)
        return [warning]
    return []
