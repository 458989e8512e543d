"""The [monitor] table: how ``kissha monitor`` runs, tells, and which checks it adds or
changes ([[monitor.checks]]). With no table at all, the defaults apply: the original's
checks generated from the nodes and sites, with no line to write."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kissha.config.tomlcheck import (
    Reader,
    argv,
    at_least,
    kind_of,
    nonempty,
    one_of,
    path_from,
    port_number,
    seconds_of,
)
from kissha.core.model import Node

KINDS = ("plugin", "ping", "probe", "cert", "http", "nameserver", "tcp", "disk", "load", "swap")
SCOPES = ("cluster", "local")
DEFAULT_PLUGINS_DIR = "/usr/lib/nagios/plugins"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/@+-]*$")
_CLOCK_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class CheckEntry:
    """One [[monitor.checks]] table: a new check (with ``kind``), or settings for a
    generated one (same ``id``, no ``kind``); None: not given (the default applies)."""

    id: str
    key: str  # its key path, for messages: "monitor.checks[2]"
    kind: str | None = None
    argv: tuple[str, ...] = ()
    node: str | None = None
    family: str | None = None
    name: str | None = None
    port: int | None = None
    path: str | None = None
    probe: str | None = None
    depends: tuple[str, ...] | None = None
    retries: int | None = None
    retry_interval: float | None = None
    interval: float | None = None
    spread: float | None = None
    timeout: float | None = None
    quiet: tuple[tuple[int, int], ...] | None = None
    scope: str | None = None
    nodes: tuple[str, ...] | None = None  # run only on these nodes
    enabled: bool = True
    warn_days: int | None = None
    crit_days: int | None = None


@dataclass(frozen=True)
class MonitorConfig:
    configured: bool = False  # a [monitor] table is present: the daemon runs the monitor
    defaults: bool = True  # generate the original's checks from the nodes and sites
    timeout: float = 10.0  # per attempt of a check
    concurrency: int = 8
    deadline: float = 240.0  # the whole run: nothing new starts after it
    retries: int = 2
    retry_interval: float = 3.0
    stale_after: float = 900.0
    renotify: int | None = 7 * 60  # minute of the day of the daily re-notification
    weekly: tuple[int, int] | None = None  # (weekday, minute): the weekly report
    quiet: tuple[tuple[int, int], ...] = ()
    timezone: str = ""  # "": the machine's local time
    cert_warn_days: int = 20
    cert_crit_days: int = 7
    flap_window: int = 10
    flap_changes: int = 4  # 0: no flap damping
    channels: tuple[str, ...] | None = None  # None: every [notify] channel
    node: str | None = None  # this node; default [notify] node, else the host name
    plugins_dir: Path | None = Path(DEFAULT_PLUGINS_DIR)  # None: built-in checks only
    every: float = 300.0  # inside the daemon: seconds between monitor runs (0: never)
    http_path: str = "/"
    ca_file: str | None = None
    exclude: tuple[str, ...] = ()  # glob patterns of generated check ids to drop
    checks: tuple[CheckEntry, ...] = ()


def duration(r: Reader, table: Mapping[str, Any], key: str, p: str, default: float) -> float:
    """A duration key: "90s", "5m", "1h" or a number of seconds (>= 0)."""
    if key not in table:
        return default
    value = table[key]
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) if value >= 0 and value == value and value != float("inf") else None
    elif isinstance(value, str):
        seconds = seconds_of(value)
    if seconds is None:
        r.problem(f"{p}.{key}", f"not a duration (e.g. 30s, 5m, 1h): {value!r}")
        return default
    return seconds


def clock(text: str) -> int | None:
    """'07:00' -> minutes of the day; None if not HH:MM."""
    m = _CLOCK_RE.match(text.strip())
    return None if m is None else int(m.group(1)) * 60 + int(m.group(2))


def _quiet(r: Reader, table: Mapping[str, Any], p: str) -> tuple[tuple[int, int], ...] | None:
    if "quiet" not in table:
        return None
    raw = table["quiet"]
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        r.problem(f"{p}.quiet", f"must be an array of 'HH:MM-HH:MM', not {kind_of(raw)}")
        return None
    out: list[tuple[int, int]] = []
    for i, item in enumerate(raw):
        start, _, end = str(item).partition("-") if isinstance(item, str) else ("", "", "")
        a, b = clock(start), clock(end)
        if a is None or b is None or a == b:
            r.problem(f"{p}.quiet[{i}]", f"not a range of the day like '22:00-07:00': {item!r}")
            continue
        out.append((a, b))
    return tuple(out)


def _strings(r: Reader, table: Mapping[str, Any], key: str, p: str) -> tuple[str, ...] | None:
    if key not in table:
        return None
    raw = table[key]
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        r.problem(f"{p}.{key}", "must be an array of non-empty strings")
        return None
    return tuple(raw)


def parse_monitor(
    r: Reader, data: Mapping[str, Any], base: Path, nodes: tuple[Node, ...]
) -> MonitorConfig:
    """[monitor], read from the whole config: no table means every default."""
    if "monitor" not in data:
        return MonitorConfig()
    p = "monitor"
    table = r.table(data, "monitor", "")
    r.unknown(
        table,
        {
            "defaults",
            "timeout",
            "concurrency",
            "deadline",
            "retries",
            "retry_interval",
            "stale_after",
            "renotify",
            "weekly",
            "quiet",
            "timezone",
            "cert_warn_days",
            "cert_crit_days",
            "flap_window",
            "flap_changes",
            "channels",
            "node",
            "plugins_dir",
            "every",
            "http_path",
            "ca_file",
            "exclude",
            "checks",
        },
        p,
    )
    names = [n.name for n in nodes]
    renotify = _renotify(r, table, p)
    weekly = _weekly(r, table, p)
    timezone = _timezone(r, table, p)
    node = r.get(table, "node", p, str, "") or None
    if node is not None and names and node not in names:
        r.problem(f"{p}.node", f"no such node: {node!r} (nodes: {', '.join(names)})")
    plugins_dir = _plugins_dir(r, table, p, base)
    warn_days = r.get(table, "cert_warn_days", p, int, 20, at_least(0))
    crit_days = r.get(table, "cert_crit_days", p, int, 7, at_least(0))
    if crit_days > warn_days:
        r.problem(f"{p}.cert_crit_days", f"must be <= cert_warn_days ({warn_days})")
    http_path = r.get(table, "http_path", p, str, "/")
    if not http_path.startswith("/") or " " in http_path or not http_path.isprintable():
        r.problem(f"{p}.http_path", f"must be a URL path starting with '/': {http_path!r}")
    ca_file = r.get(table, "ca_file", p, str, "", nonempty) or None
    checks = _checks(r, table, p, names)
    seen: set[str] = set()
    for c in checks:
        if c.id in seen:
            r.problem(f"{c.key}.id", f"two checks are named {c.id!r}")
        seen.add(c.id)
    return MonitorConfig(
        configured=True,
        defaults=r.get(table, "defaults", p, bool, True),
        timeout=duration(r, table, "timeout", p, 10.0) or 10.0,
        concurrency=r.get(table, "concurrency", p, int, 8, at_least(1)),
        deadline=duration(r, table, "deadline", p, 240.0) or 240.0,
        retries=r.get(table, "retries", p, int, 2, at_least(0)),
        retry_interval=duration(r, table, "retry_interval", p, 3.0),
        stale_after=duration(r, table, "stale_after", p, 900.0),
        renotify=renotify,
        weekly=weekly,
        quiet=_quiet(r, table, p) or (),
        timezone=timezone,
        cert_warn_days=warn_days,
        cert_crit_days=crit_days,
        flap_window=r.get(table, "flap_window", p, int, 10, at_least(2)),
        flap_changes=r.get(table, "flap_changes", p, int, 4, at_least(0)),
        channels=_strings(r, table, "channels", p),
        node=node,
        plugins_dir=plugins_dir,
        every=duration(r, table, "every", p, 300.0),
        http_path=http_path,
        ca_file=str(path_from(base, ca_file)) if ca_file else None,
        exclude=_strings(r, table, "exclude", p) or (),
        checks=checks,
    )


def _renotify(r: Reader, table: Mapping[str, Any], p: str) -> int | None:
    """The daily re-notification's minute of the day (07:00 by default), None if 'off'."""
    renotify: int | None = 7 * 60
    if "renotify" in table:
        raw = table["renotify"]
        renotify = None if raw == "off" else clock(raw) if isinstance(raw, str) else None
        if raw != "off" and renotify is None:
            r.problem(f"{p}.renotify", f"a time of day like '07:00', or 'off': {raw!r}")
    return renotify


def _weekly(r: Reader, table: Mapping[str, Any], p: str) -> tuple[int, int] | None:
    """The forced weekly report: (weekday, minute of the day), None if 'off'."""
    weekly: tuple[int, int] | None = None
    if "weekly" in table and table["weekly"] != "off":
        raw = table["weekly"]
        day, _, at = str(raw).strip().partition(" ") if isinstance(raw, str) else ("", "", "")
        minute = clock(at)
        if day.lower()[:3] not in WEEKDAYS or minute is None:
            r.problem(f"{p}.weekly", f"a day and time like 'mon 07:00', or 'off': {raw!r}")
        else:
            weekly = (WEEKDAYS.index(day.lower()[:3]), minute)
    return weekly


def _timezone(r: Reader, table: Mapping[str, Any], p: str) -> str:
    """A time zone name zoneinfo knows, or "" (the node's local time)."""
    timezone = r.get(table, "timezone", p, str, "")
    if timezone:
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(timezone)
        except (ValueError, KeyError, OSError):
            r.problem(f"{p}.timezone", f"no such time zone: {timezone!r} (e.g. 'Europe/Berlin')")
            timezone = ""
    return timezone


def _plugins_dir(r: Reader, table: Mapping[str, Any], p: str, base: Path) -> Path | None:
    """Where the Nagios plugins are; None: built-in checks only."""
    plugins_dir: Path | None = Path(DEFAULT_PLUGINS_DIR)
    if "plugins_dir" in table:
        raw = table["plugins_dir"]
        if raw is False or raw == "":
            plugins_dir = None
        elif isinstance(raw, str):
            plugins_dir = path_from(base, raw)
        else:
            r.problem(f"{p}.plugins_dir", "a directory, or false for built-in checks only")
    return plugins_dir


CHECK_KEYS = {
    "id",
    "kind",
    "argv",
    "node",
    "family",
    "name",
    "port",
    "path",
    "probe",
    "depends",
    "retries",
    "retry_interval",
    "interval",
    "spread",
    "timeout",
    "quiet",
    "scope",
    "nodes",
    "enabled",
    "warn_days",
    "crit_days",
}
# What each kind needs besides an id.
NEEDS = {
    "plugin": ("argv",),
    "ping": ("node",),
    "probe": ("node", "probe"),
    "cert": ("node", "name"),
    "http": ("node", "name"),
    "nameserver": ("node",),
    "tcp": ("node", "port"),
}


def _checks(
    r: Reader, table: Mapping[str, Any], p: str, names: list[str]
) -> tuple[CheckEntry, ...]:
    raw = table.get("checks", [])
    if not isinstance(raw, list):
        r.problem(f"{p}.checks", "must be an array of tables ([[monitor.checks]])")
        return ()
    out: list[CheckEntry] = []
    for i, spec in enumerate(raw):
        key = f"{p}.checks[{i}]"
        if not isinstance(spec, dict):
            r.problem(key, f"must be a table, not {kind_of(spec)}")
            continue
        r.unknown(spec, CHECK_KEYS, key)
        if "id" not in spec:
            r.problem(f"{key}.id", "missing (a name for the check, e.g. 'ntp' or 'procs/nsd')")
        cid = r.get(
            spec,
            "id",
            key,
            str,
            "",
            lambda v: None if _ID_RE.match(v) else f"letters, digits and . _ : / @ + - only: {v!r}",
        )
        kind = r.get(spec, "kind", key, str, "", one_of(KINDS)) or None
        if kind is None and "argv" in spec:
            kind = "plugin"  # argv alone says it: a plugin
        for need in NEEDS.get(kind or "", ()):
            if need not in spec:
                r.problem(f"{key}.{need}", f"missing (a {kind} check needs it)")
        node = r.get(spec, "node", key, str, "") or None
        if node is not None and node not in names:
            r.problem(f"{key}.node", f"no such node: {node!r} (nodes: {', '.join(names)})")
        only = _strings(r, spec, "nodes", key)
        for j, n in enumerate(only or ()):
            if n not in names:
                r.problem(f"{key}.nodes[{j}]", f"no such node: {n!r}")
        family = r.get(spec, "family", key, str, "", one_of(("ipv4", "ipv6"))) or None
        port = r.get(spec, "port", key, int, 0, port_number) or None
        out.append(
            CheckEntry(
                id=cid,
                key=key,
                kind=kind,
                argv=tuple(r.get(spec, "argv", key, list, [], argv)),
                node=node,
                family=family,
                name=r.get(spec, "name", key, str, "") or None,
                port=port,
                path=r.get(spec, "path", key, str, "") or None,
                probe=r.get(spec, "probe", key, str, "") or None,
                depends=_strings(r, spec, "depends", key) if "depends" in spec else None,
                retries=r.get(spec, "retries", key, int, -1, at_least(0))
                if "retries" in spec
                else None,
                retry_interval=duration(r, spec, "retry_interval", key, 0.0)
                if "retry_interval" in spec
                else None,
                interval=duration(r, spec, "interval", key, 0.0) if "interval" in spec else None,
                spread=duration(r, spec, "spread", key, 0.0) if "spread" in spec else None,
                timeout=(duration(r, spec, "timeout", key, 10.0) or 10.0)
                if "timeout" in spec
                else None,
                quiet=_quiet(r, spec, key),
                scope=r.get(spec, "scope", key, str, "", one_of(SCOPES)) or None,
                nodes=only,
                enabled=r.get(spec, "enabled", key, bool, True),
                warn_days=r.get(spec, "warn_days", key, int, 0, at_least(0))
                if "warn_days" in spec
                else None,
                crit_days=r.get(spec, "crit_days", key, int, 0, at_least(0))
                if "crit_days" in spec
                else None,
            )
        )
    return tuple(out)
