"""The operational tables of the config: [daemon], [metrics] and [page]."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kissha.config.tomlcheck import (
    Reader,
    nonempty,
    not_negative,
    parse_listen,
    path_from,
    port_number,
    positive,
)

MAX_PAGE_DAYS = 31


@dataclass(frozen=True)
class DaemonConfig:
    """How ``kissha daemon`` paces its rounds."""

    interval: float = 60.0  # seconds between round starts; sub-second allowed


@dataclass(frozen=True)
class MetricsConfig:
    """Where Prometheus metrics go: a textfile for node_exporter, an HTTP port (daemon)."""

    textfile: Path | None = None
    listen: tuple[str, int] | None = None  # (host, port)


@dataclass(frozen=True)
class PageConfig:
    """The status page: a static index.html and status.json written after runs."""

    dir: Path | None = None  # None: no page, and the page code is never imported
    days: int = 3  # the timeline's length, and how long the history is kept
    title: str = ""  # "" : "kissha: <nodes>"
    every: float = 60.0  # seconds between page writes (a run with an event writes at once)
    nameservers: bool = True  # ask every nameserver what it answers, as kissha status does
    port: int = 53  # the nameservers' port


def parse_daemon(r: Reader, table: Mapping[str, Any]) -> DaemonConfig:
    r.unknown(table, {"interval"}, "daemon")
    return DaemonConfig(interval=r.get(table, "interval", "daemon", float, 60.0, positive))


def parse_metrics(r: Reader, table: Mapping[str, Any], base: Path) -> MetricsConfig:
    p = "metrics"
    r.unknown(table, {"textfile", "listen"}, p)
    textfile = r.get(table, "textfile", p, str, "", nonempty)
    listen = r.get(table, "listen", p, str, "", nonempty)
    address = None
    if listen:
        address = parse_listen(listen)
        if address is None:
            r.problem(
                f"{p}.listen", f"not HOST:PORT (e.g. '127.0.0.1:9469' or '[::1]:9469'): {listen!r}"
            )
    return MetricsConfig(textfile=path_from(base, textfile) if textfile else None, listen=address)


def parse_page(r: Reader, data: Mapping[str, Any], base: Path) -> PageConfig:
    """[page], read from the whole config: no table means no page."""
    p = "page"
    if "page" not in data:
        return PageConfig()
    table = r.table(data, "page", "")
    r.unknown(table, {"dir", "days", "title", "every", "nameservers", "port"}, p)
    if isinstance(data["page"], dict) and "dir" not in table:
        r.problem(f"{p}.dir", "missing (the directory for index.html and status.json)")
    directory = r.get(table, "dir", p, str, "", nonempty)
    days = r.get(
        table,
        "days",
        p,
        int,
        3,
        lambda v: None if 1 <= v <= MAX_PAGE_DAYS else f"must be 1 to {MAX_PAGE_DAYS}, not {v}",
    )
    return PageConfig(
        dir=path_from(base, directory) if directory else None,
        days=days,
        title=r.get(table, "title", p, str, ""),
        every=r.get(table, "every", p, float, 60.0, not_negative),
        nameservers=r.get(table, "nameservers", p, bool, True),
        port=r.get(table, "port", p, int, 53, port_number),
    )
