"""state_dir/notify.json: per channel what was taken in, what waits, what was sent."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from kissha import ownfile as of
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
    """A missing file is an empty outbox; a damaged one (unreadable, garbage, JSON of
    the wrong shape) is set aside as ``notify.json.bad-<UTC time>`` with a one-line
    warning, so notifications go on, from this run's events."""
    path = state_dir / name
    try:
        return parse(path.read_bytes()), []
    except FileNotFoundError:
        return Outbox(), []
    except OSError as exc:
        why = f"cannot read ({exc.strerror or exc})"
    except of.Bad as exc:
        why = f"unreadable ({exc})"
    warning = f"notify: {path}: {why}; {of.set_aside(path)}; starting with an empty outbox"
    log.warning(warning)
    return Outbox(), [warning]


def parse(raw: bytes) -> Outbox:
    """notify.json's bytes as an outbox, or ``ownfile.Bad``."""
    data = of.obj(of.parse(raw), "outbox")
    if data.get("version") != VERSION:
        raise of.Bad(f"unknown version {str(data.get('version'))[:40]!r}")
    channels = of.opt_obj(data, "channels", "")
    return Outbox({n: Box.from_json(b, f"channels.{n}") for n, b in channels.items()})


def save(state_dir: Path, outbox: Outbox, name: str = NAME) -> list[str]:
    from kissha.files import atomic_write

    try:
        atomic_write(state_dir / name, outbox.dumps().encode(), mode=0o600)
    except OSError as exc:
        warning = f"notify: cannot write {state_dir / name}: {exc.strerror or exc}"
        log.warning(warning)
        return [warning]
    return []
