"""kissha's own files in state_dir (state.json, notify.json, tofu.json, history.jsonl,
scans.json, monitor.json, certs.json): read, shape-checked at the load boundary, and set
aside when damaged.

Each file has one loader that returns a typed, well-formed value or raises ``Bad``; the
loader's caller then sets the file aside (``NAME.bad-YYYYmmddTHHMMSSZ``, the newest
``KEEP_BAD`` kept) with a one-line warning and starts afresh. Nothing a user or a crash
can put into these files may stop a failover: kissha's memory is a convenience, the
zones are what matter.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

KEEP_BAD = 3  # set-aside copies kept per file: enough to look at, bounded on disk
# Epoch seconds that kissha can print (time.gmtime) and that --now can give: the years
# 1 to 9999, as datetime has them.
MIN_TIME = -62135596800.0
MAX_TIME = 253402300800.0
MAX_COUNT = 2**63 - 1


class Bad(ValueError):
    """A file of kissha's own whose content is damaged or of the wrong shape; the
    message says where (``health.fishfinger.up: not a boolean``).

    Always one printable line: where it names a key, the key comes from the damaged
    file and may hold a newline or control characters (escaped here, as repr does)."""

    def __init__(self, message: str) -> None:
        if not message.isprintable():
            message = repr(message)[1:-1]
        super().__init__(message if len(message) <= 200 else message[:199] + "…")


def parse(raw: bytes, finite: bool = True) -> Any:
    """JSON from bytes; anything undecodable (garbage, non-UTF-8, nesting deep enough
    to exhaust the recursion limit, a number too long to convert) is ``Bad``, and so
    are NaN and infinities anywhere (Python reads them, but they would make kissha's
    JSON output, status --json and webhooks, invalid for everyone else).

    ``finite=False`` leaves numbers to the caller: the history checks its own, and
    reads ~50k of them for a page."""
    try:
        if not finite:
            return json.loads(raw)
        return json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise Bad(f"not JSON ({_short(exc)})") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return value


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 80 else text[:79] + "…"


def set_aside(path: Path, now: float | None = None) -> str:
    """Rename a damaged ``path`` to ``path.bad-<UTC time>`` beside it and drop the
    oldest such copies beyond KEEP_BAD; returns what happened, for the warning.

    Never raises: when the rename fails too, the file stays and is replaced by the
    next save (the warning says so)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    target = path.with_name(f"{path.name}.bad-{stamp}")
    n = 1
    while target.exists() or target.is_symlink():
        n += 1
        target = path.with_name(f"{path.name}.bad-{stamp}-{n}")
    try:
        os.replace(path, target)
    except OSError as exc:
        return f"cannot set it aside ({exc.strerror or exc}): the next save replaces it"
    # The stamp in the name sorts by the time each copy was set aside.
    copies = sorted(path.parent.glob(f"{_glob_escape(path.name)}.bad-*"))
    for old in copies[:-KEEP_BAD]:
        with contextlib.suppress(OSError):
            old.unlink()
    return f"set aside as {target.name}"


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


# -- shape checks: each returns the value typed, or raises Bad naming where ------------


def obj(v: Any, where: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise Bad(f"{where}: not an object")
    return v


def opt_obj(data: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    """An optional object member; absent or null is empty (files of older versions)."""
    v = data.get(key)
    return {} if v is None else obj(v, _join(where, key))


def seq(v: Any, where: str) -> list[Any]:
    if not isinstance(v, list):
        raise Bad(f"{where}: not an array")
    return v


def text(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise Bad(f"{where}: not a string")
    return v


def boolean(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise Bad(f"{where}: not a boolean")
    return v


def count(v: Any, where: str) -> int:
    """A non-negative integer (not a boolean, which JSON keeps apart)."""
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_COUNT:
        raise Bad(f"{where}: not a count")
    return v


def number(v: Any, where: str) -> float:
    """A finite number (JSON's NaN and Infinity, which Python reads, are damage)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise Bad(f"{where}: not a finite number")
    try:
        f = float(v)  # an integer past a float's range (10**400) raises OverflowError
    except OverflowError:
        raise Bad(f"{where}: not a finite number") from None
    if not math.isfinite(f):
        raise Bad(f"{where}: not a finite number")
    return f


def timestamp(v: Any, where: str) -> float:
    """Epoch seconds that can be printed: MIN_TIME <= t < MAX_TIME."""
    t = number(v, where)
    if not MIN_TIME <= t < MAX_TIME:
        raise Bad(f"{where}: not a time")
    return t


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
