"""The status page (I/O edge): after each run, fold it into the history and, when due,
ask the nameservers and write ``index.html`` and ``status.json`` into ``[page] dir``.

Imported only when ``[page]`` is configured (or by ``kissha page``). Nothing here can
fail a failover run: every problem comes back as a warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kissha.core.model import ProbeResult, iso
from kissha.errors import KisshaError, LockHeld
from kissha.observe import history

if TYPE_CHECKING:
    from kissha.config import Config
    from kissha.core.report import RunReport
    from kissha.engine.state import State
    from kissha.observe import pagehtml, verdict

log = logging.getLogger(__name__)

STAMP = "page.stamp"  # in state_dir; its mtime is the (run's) time of the last page
MIN_REFRESH = 30


def publish(config: Config, report: RunReport, st: State) -> list[str]:
    """After a run's state is saved: record the run, and write the page when due."""
    warnings: list[str] = []
    try:
        warning = history.record(config.state_dir, report.now, report.probes, config.page.days)
        if warning:
            warnings.append(warning)
        if not due(config, report.now, st):
            return warnings
        write(config, report.now, report.probes, st, report.now, config.page.port)
        stamp = config.state_dir / STAMP
        stamp.touch()
        os.utime(stamp, (report.now, report.now))
    except (OSError, KisshaError) as exc:
        warning = f"page: cannot write the page in {config.page.dir}: {_reason(exc)}"
        log.warning(warning)
        warnings.append(warning)
    except Exception as exc:  # the zones are already served: a page bug must not fail the run
        warning = f"page: internal error: {type(exc).__name__}: {exc}"
        log.warning(warning, exc_info=True)
        warnings.append(warning)
    return warnings


def due(config: Config, now: float, st: State) -> bool:
    """At most every ``page.every`` seconds, and at once after a run that added an event
    (a failover, a rollback, a node going down or up) or when the page is missing."""
    page = config.page
    if page.every <= 0 or page.dir is None or not (page.dir / "index.html").exists():
        return True
    if st.events and st.events[-1].time >= round(now, 3):
        return True
    try:
        last = (config.state_dir / STAMP).stat().st_mtime
    except FileNotFoundError:
        return True
    return not 0 <= now - last < page.every


def write(
    config: Config,
    now: float,
    probes: Sequence[ProbeResult],
    st: State,
    last_run: float | None,
    port: int,
    out: Path | None = None,
) -> tuple[Path, int]:
    """Build and write both files; returns the directory and the HTML's size in bytes."""
    from kissha.files import atomic_write
    from kissha.observe import pagehtml

    directory = out or config.page.dir
    if directory is None:
        raise KisshaError("page: no directory ([page] dir or --out)")
    data, doc = build(config, now, probes, st, last_run, port)
    html = pagehtml.render(data).encode()
    directory.mkdir(parents=True, exist_ok=True)
    body = json.dumps(doc, indent=1).encode() + b"\n"
    with _writing(directory):
        atomic_write(directory / "status.json", body, mode=0o644)
        atomic_write(directory / "index.html", html, mode=0o644)
    return directory, len(html)


WRITE_WAIT = 5.0  # seconds: another writer holds the page's lock for milliseconds


@contextlib.contextmanager
def _writing(directory: Path) -> Iterator[None]:
    """One writer of the page at a time: ``kissha page`` (it takes no run lock) and a
    run's page write would share the temp files' names. An flock on the directory
    itself, so no lock file sits where the web server serves from. Where a directory
    cannot be flocked (Linux's NFS emulates flock with POSIX locks, which want a
    descriptor open for writing), the page is written without it, as before."""
    import fcntl

    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        deadline = time.monotonic() + WRITE_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if not isinstance(exc, BlockingIOError):
                    break  # no flock here (EBADF, ENOLCK, EOPNOTSUPP): write unlocked
                if time.monotonic() > deadline:
                    raise LockHeld(
                        f"page: another kissha has been writing {directory} "
                        f"for over {WRITE_WAIT:g} s; this one wrote nothing"
                    ) from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # and with it the lock


def build(
    config: Config,
    now: float,
    probes: Sequence[ProbeResult],
    st: State,
    last_run: float | None,
    port: int,
) -> tuple[pagehtml.PageData, dict[str, Any]]:
    """The page's data and status.json's content (asks the nameservers when configured)."""
    from kissha import __version__
    from kissha.observe import asking as asking_mod
    from kissha.observe import pagehtml, status, statustext, verdict

    page = config.page
    views: tuple[verdict.NsView, ...] = ()
    skipped = 0
    if page.nameservers:
        asking = asking_mod.Asking(config, port, config.health.timeout)
        views, skipped = asking.views(), asking.skipped
    start = now - page.days * history.DAY
    width = history.column_width(page.days)
    buckets, warning = history.load(config.state_dir, start // width * width)
    health = {n: h.up for n, h in st.health.items()}
    obs = verdict.Observation(
        now=now,
        views=views,
        probes=tuple(probes),
        nodes=config.node_names,
        last_run=last_run,
        stale_after=status.DEFAULT_STALE_AFTER,
        roles=st.roles,
        health=health,
        events=tuple(st.events[-status.LAST_EVENTS :]),
        zones_skipped=skipped,
        asked=page.nameservers,
        checks=status.monitor_checks(config, now),
    )
    report = verdict.Report(obs, verdict.judge(obs))
    events = [e for e in st.events if e.time >= start]
    data = pagehtml.PageData(
        title=page.title or f"kissha: {', '.join(config.node_names)}",
        now=now,
        refresh=max(MIN_REFRESH, int(page.every)),
        status=report,
        nodes=config.nodes,
        health=health,
        history=buckets,
        events=events,
        start=start,
        column_width=width,
        version=__version__,
        warnings=(warning,) if warning else (),
    )
    doc = statustext.as_json(report)
    doc["history"] = {
        "since": iso(start),
        "days": page.days,
        "bucket_seconds": history.bucket_width(page.days),
        "column_seconds": width,
        "buckets": len(buckets),
        "series": history.summary(buckets),
    }
    doc["page"] = {"generated": iso(now), "title": data.title, "version": __version__}
    if config.certs is not None:  # what the last kissha certs run recorded
        from kissha.certs import summary

        rows = summary.load(config.state_dir)
        doc["certificates"] = summary.as_json(rows)
        data = replace(data, extra_html=summary.html_section(rows))
    return data, doc


def from_state(
    config: Config, now: float, st: State, port: int, out: Path | None
) -> tuple[Path, int]:
    """``kissha page``: the page of the last recorded run, written once (no lock needed:
    the history is only read, and both files are replaced atomically)."""
    last = st.last_run.get("time")
    probes = [_probe(config, p) for p in st.last_run.get("probes", []) if isinstance(p, dict)]
    return write(
        config,
        now,
        probes,
        st,
        float(last) if isinstance(last, int | float) else None,
        port,
        out,
    )


def _probe(config: Config, p: dict[str, Any]) -> ProbeResult:
    node, family = str(p.get("node")), p.get("family")
    address = ""
    if node in config.node_names and family in ("ipv4", "ipv6"):
        address = config.node(node).address(family) or ""
    return ProbeResult(
        node=node,
        probe=str(p.get("probe")),
        family="ipv6" if family == "ipv6" else "ipv4",
        address=address,
        ok=bool(p.get("ok")),
        detail=str(p.get("detail", "")),
        required=bool(p.get("required", True)),
        latency_ms=p.get("latency_ms"),
        warning=p.get("warning"),
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return str(exc.strerror or exc) + (f": {exc.filename}" if exc.filename else "")
    return str(exc)
