"""One ``kissha certs`` run: placeholders, what is due, orders, files, hooks, notices."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kissha.certs import due as duemod
from kissha.certs import plan
from kissha.certs.report import NameResult, Report
from kissha.certs.settings import CertsConfig
from kissha.core.model import iso
from kissha.errors import ConfigError, KisshaError
from kissha.exits import Exit
from kissha.files import RunLock

if TYPE_CHECKING:
    from kissha.certs.acmeclient import Ca
    from kissha.config import Config

log = logging.getLogger(__name__)
LOCK = "certs.lock"
ARI_EVERY = 6 * 3600.0  # when the CA gives no Retry-After for its renewal info


class CertsFailed(KisshaError):
    """A certificate could not be obtained, or a reload hook failed."""

    exit_code = Exit.ROLLED_BACK  # a name or a hook failed


def this_node(config: Config, cc: CertsConfig) -> str:
    """certs.node, else the node named by the host name (as [notify] does)."""
    import socket

    if cc.node:
        return cc.node
    host = socket.gethostname().lower().rstrip(".")
    for node in config.nodes:
        if node.name.lower() == host.split(".")[0] or node.fqdn == host:
            return node.name
    raise ConfigError(
        [f"certs.node: cannot tell which node this is from the host name {host!r}; set it"],
        config.source,
    )


def _split_brain(state_dir: Path) -> str:
    """Split brain as this node's failover runs saw it (open problem or being watched)."""
    from kissha.engine import state as statefile

    st, _ = statefile.load_readonly(state_dir)
    problem = st.problems.get("split-brain")
    if problem:
        return problem.message or "nameservers disagree"
    if st.watch.get("since"):
        return "nameservers disagree (being watched)"
    return ""


def run(
    config: Config,
    now: float,
    dry_run: bool = False,
    force: tuple[str, ...] = (),
) -> Report:
    cc = config.certs
    if cc is None:
        raise ConfigError(["certs: no [certs] table: nothing to do"], config.source)
    me = this_node(config, cc)
    names = plan.held_names(config.site_names(), me, cc.exclude)
    unknown = [f for f in force if f not in {n.name for n in names}]
    if unknown:
        from kissha.errors import UsageError

        raise UsageError(f"--force: not a name this node holds: {', '.join(unknown)}")
    report = Report(me, cc.strategy, cc.directory, dry_run)
    lock = RunLock(config.state_dir / LOCK)
    with lock:
        _run(config, cc, me, names, now, dry_run, set(force), report)
    return report


def _run(
    config: Config,
    cc: CertsConfig,
    me: str,
    names: list[Any],
    now: float,
    dry_run: bool,
    force: set[str],
    report: Report,
) -> None:
    from kissha.certs import records as recordfile
    from kissha.engine import state as statefile

    records, warnings = recordfile.load(config.state_dir, readonly=dry_run)
    report.warnings += warnings
    recs: dict[str, dict[str, Any]] = records["names"]
    roles = statefile.load_readonly(config.state_dir)[0].roles
    report.split_brain = _split_brain(config.state_dir)
    wanted = plan.select(names, cc.strategy, me, roles, report.split_brain)
    todo: list[tuple[plan.Wanted, str]] = []  # (name, reason) to ask the CA for
    results: dict[str, NameResult] = {}
    ari_names = []
    for w in wanted:
        n = w.name
        rec = recs.setdefault(n.name, {})
        info, problem = _info(cc, n.name, rec)
        if problem:
            report.warnings.append(problem)
        if info is None:
            # Nothing usable here: a placeholder first, so the TLS servers can start.
            results[n.name], info = _placeholder(cc, n, rec, now, dry_run)
        window = None
        if rec.get("window") and info is not None and rec.get("serial") == info.serial:
            window = duemod.Window(rec["window"][0], rec["window"][1])
        spread = duemod.spread_of(me, n.name, info.serial if info else "")
        d = duemod.decide(
            info,
            window,
            now,
            spread,
            cc.spread,
            retry_at=rec.get("retry_at"),
            force=n.name in force,
        )
        base = results.get(n.name)
        if not w.request:
            results[n.name] = base or NameResult(
                n.name, n.kind, "skipped", w.why, d.at, _na(info), _issuer(info)
            )
            if base is not None:
                results[n.name] = replace(base, reason=f"{base.reason}; {w.why}")
            continue
        if d.due:
            todo.append((w, d.reason))
            results[n.name] = base or NameResult(
                n.name, n.kind, "due", d.reason, d.at, _na(info), _issuer(info)
            )
        elif base is not None:
            # A placeholder written while the back-off holds is still a change (hooks run).
            results[n.name] = replace(base, reason=f"{base.reason}; {d.reason}", due_at=d.at)
        else:
            results[n.name] = NameResult(
                n.name,
                n.kind,
                "unchanged",
                d.reason,
                d.at,
                _na(info),
                _issuer(info),
                error=str(rec.get("error", "")),
            )
            if (
                records.get("ari") is not False
                and info is not None
                and not info.placeholder
                and rec.get("ari_next", 0) <= now
            ):
                ari_names.append((n, info))
    if (todo or ari_names) and not dry_run:
        _ask_ca(config, cc, me, records, todo, ari_names, results, now)
    elif dry_run:
        for w, reason in todo:
            r = results[w.name.name]
            results[w.name.name] = replace(r, action="would-request", reason=reason)
    report.names = [results[w.name.name] for w in wanted]
    if dry_run:
        return
    # A placeholder is a change too: a server that could not start without the file can
    # now; a failed renewal with the old certificate kept is none.
    from kissha.certs import after

    if report.changed:
        after.hooks(cc, report)
    _remember(records, report, names, now)
    recordfile.save(config.state_dir, records)
    report.warnings += after.tell(config, cc, report, now)


def _placeholder(
    cc: CertsConfig, n: Any, rec: dict[str, Any], now: float, dry_run: bool
) -> tuple[NameResult, duemod.CertInfo | None]:
    """A self-signed placeholder for a name with no usable certificate (so the TLS
    servers can start), and the certificate now on disk."""
    if dry_run:
        return NameResult(n.name, n.kind, "would-placeholder", "no certificate"), None
    from kissha.certs import store

    files = store.Files.of(cc, n.name)
    key = store.new_key(cc.key_type)
    try:
        store.install(cc, files, store.key_pem(key), store.placeholder(n.name, key, now))
    except (OSError, store.StoreError) as exc:
        log.warning("certs: %s: placeholder: %s", n.name, _why(exc))
        return NameResult(n.name, n.kind, "failed", "no certificate", error=_why(exc)), None
    placed = NameResult(n.name, n.kind, "placeholder", "no certificate", written=True)
    return placed, _info(cc, n.name, rec)[0]


def _remember(records: dict[str, Any], report: Report, names: list[Any], now: float) -> None:
    """What status, the page and metrics show, without reading PEM; names no longer
    configured are dropped."""
    recs: dict[str, dict[str, Any]] = records["names"]
    for r in report.names:
        rec = recs.setdefault(r.name, {})
        rec.update(kind=r.kind, issuer=r.issuer, not_after=r.not_after, due_at=r.due_at)
        rec["checked"] = now
        if r.action in ("obtained", "renewed"):
            rec.pop("error", None)
    records["names"] = {k: v for k, v in recs.items() if k in {n.name for n in names}}


def _signature(cc: CertsConfig, name: str) -> list[int] | None:
    """The certificate's and key's inode, size and mtime: unchanged files need no parsing."""
    try:
        a, b = cc.path("cert", name).stat(), cc.path("key", name).stat()
    except OSError:
        return None
    return [a.st_ino, a.st_size, a.st_mtime_ns, b.st_ino, b.st_size, b.st_mtime_ns]


def _info(
    cc: CertsConfig, name: str, rec: dict[str, Any]
) -> tuple[duemod.CertInfo | None, str | None]:
    """What is on disk for ``name``: from certs.json when the files have not changed
    since the last run (the daily run then never imports cryptography), else parsed."""
    signature = _signature(cc, name)
    if signature is not None and rec.get("file") == signature and rec.get("info"):
        return duemod.CertInfo(**rec["info"]), None
    from kissha.certs import store

    info, _, problem = store.read(store.Files.of(cc, name))
    rec["file"], rec["info"] = signature, None if info is None else asdict(info)
    return info, problem


def _na(info: duemod.CertInfo | None) -> float | None:
    return None if info is None or info.placeholder else info.not_after


def _issuer(info: duemod.CertInfo | None) -> str:
    if info is None:
        return ""
    return "placeholder (self-signed)" if info.placeholder else info.issuer


def _ask_ca(
    config: Config,
    cc: CertsConfig,
    me: str,
    records: dict[str, Any],
    todo: list[tuple[plan.Wanted, str]],
    ari_names: list[Any],
    results: dict[str, NameResult],
    now: float,
) -> None:
    """Every due name, ``concurrency`` at a time, each thread with its own connection."""
    from kissha.certs import store
    from kissha.certs.acmeclient import Ca, CaError

    recs = records["names"]
    local = threading.local()

    def ca() -> Ca:
        if getattr(local, "ca", None) is None:
            local.ca = Ca(cc, config.state_dir)
        return local.ca  # type: ignore[no-any-return]

    try:
        first = Ca(cc, config.state_dir)  # registers the account once, before the threads
    except Exception as exc:  # each due name's failure, never the run's (exit 70)
        error = exc if isinstance(exc, CaError) else CaError(_why(exc))
        for w, _ in todo:
            _failed(recs, results, w.name.name, error, now)
        return
    local.ca = first
    records["ari"] = "renewalInfo" in first.directory.to_partial_json()

    for n, info in ari_names:
        _, cert, _ = store.read(store.Files.of(cc, n.name))
        if cert is None:
            continue
        window, retry = first.renewal_window(cert)  # never raises: (None, None) then
        rec = recs[n.name]
        rec["ari_next"] = now + (retry or ARI_EVERY)
        if window is None:
            continue
        rec["window"], rec["serial"] = [window.start, window.end], info.serial
        d = duemod.decide(info, window, now, duemod.spread_of(me, n.name, info.serial), cc.spread)
        if d.due:
            todo.append((plan.Wanted(n, True, ""), "in the CA's renewal window"))

    def one(w: plan.Wanted, reason: str) -> tuple[str, bytes, bytes] | CaError:
        name = w.name.name
        try:
            key = store.key_pem(store.new_key(cc.key_type))
            return name, key, ca().obtain(name, key, cc.challenge_dir)
        except CaError as exc:
            return exc
        except Exception as exc:  # one name's failure, never the run's (exit 70)
            return CaError(_why(exc))

    workers = min(cc.concurrency, max(1, len(todo)))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = {pool.submit(one, w, reason): (w, reason) for w, reason in todo}
        for future in concurrent.futures.as_completed(futures):
            w, reason = futures[future]
            name = w.name.name
            outcome = future.result()
            if isinstance(outcome, CaError):
                _failed(recs, results, name, outcome, now)
                continue
            _, key, chain = outcome
            files = store.Files.of(cc, name)
            had = results[name].not_after is not None
            try:
                store.install(cc, files, key, chain)
            except (OSError, store.StoreError) as exc:
                _failed(recs, results, name, CaError(f"cannot install: {_why(exc)}"), now)
                continue
            recs[name] = {"ari_next": now}  # a new certificate: ask for its window soon
            info, _ = _info(cc, name, recs[name])
            results[name] = NameResult(
                name,
                w.name.kind,
                "renewed" if had else "obtained",
                reason,
                None if info is None else duemod.due_at(info, None, 0.0, 0.0),
                _na(info),
                _issuer(info),
                written=True,
            )


def _why(exc: BaseException) -> str:
    """An exception in one line, naming the file when there is one."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _failed(
    recs: dict[str, Any], results: dict[str, NameResult], name: str, exc: Exception, now: float
) -> None:
    rec = recs.setdefault(name, {})
    rec["failures"] = int(rec.get("failures", 0)) + 1
    wait = duemod.backoff(rec["failures"], getattr(exc, "retry_after", None))
    rec["retry_at"] = now + wait
    rec["error"] = str(exc)
    old = results[name]
    results[name] = replace(
        old,
        action="failed",
        # A placeholder that could not be written said why first: keep it.
        error=f"{old.error}; {exc}" if old.error else str(exc),
        reason=f"{old.reason}; next try after {iso(now + wait)}",
    )
    log.warning("certs: %s: %s", name, exc)
