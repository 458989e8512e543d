"""state_dir/monitor.json: the monitor's records between runs, written atomically; a
damaged file is set aside with a warning and the monitor starts afresh (never a crash)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from kissha.monitor.logic import Book

log = logging.getLogger(__name__)
VERSION = 1
NAME = "monitor.json"


def load(state_dir: Path, readonly: bool = False) -> tuple[Book, str | None]:
    path = state_dir / NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Book(), None
    except OSError as exc:
        return Book(), f"{path}: cannot read ({exc.strerror or exc}); starting afresh"
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ValueError(
                f"unknown version {data.get('version') if isinstance(data, dict) else None!r}"
            )
        checks, channels = data.get("checks", {}), data.get("channels", {})
        if not isinstance(checks, dict) or not isinstance(channels, dict):
            raise ValueError("unknown layout")
        if not all(isinstance(v, dict) for v in (*checks.values(), *channels.values())):
            raise ValueError("unknown layout")
        return Book(checks, channels, dict(data.get("last_run") or {})), None
    except (ValueError, TypeError, AttributeError) as exc:
        if readonly:
            return Book(), f"{path}: unreadable ({exc}); a real run sets it aside"
        os.replace(path, path.with_name(NAME + ".corrupt"))
        warning = f"{path}: unreadable ({exc}); set aside as {NAME}.corrupt, starting afresh"
        log.warning(warning)
        return Book(), warning


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
