"""Deploy every node: render all first (a template error touches no node), then per node
read what is there, stage the changed files, run the servers' checks, install, reload
only the services whose files changed. One node's failure does not stop the others."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, NamedTuple

from kissha.config import Config
from kissha.config.deploy import DeployConfig
from kissha.deploy import lock, placeholders, zones
from kissha.deploy.plan import Change, plan, services
from kissha.deploy.remote import Remote, RemoteError
from kissha.render.engine import Rendered, render_node

STAGED = ".kissha-new"
BACKUP = ".kissha-old"


def _start(service: str, via: str) -> str:
    if via == "rcctl":
        running = f"rcctl check {service} && rcctl reload {service}"
        return f"rcctl enable {service} && {{ {running} || rcctl start {service}; }}"
    return f"systemctl enable {service} && systemctl reload-or-restart {service}"


def reload_command(
    service: str, files: list[Rendered], flavour: str, deploy: DeployConfig, root: str = ""
) -> str:
    """The shell command that makes ``service`` read its new files; in an override,
    ``{root}`` is the node's root prefix."""
    override = dict(deploy.reload).get(service)
    if override:
        return " ".join(shlex.quote(a.replace("{root}", root)) for a in override)
    if service == "systemd":
        timers = [f.path.rsplit("/", 1)[1] for f in files if f.path.endswith(".timer")]
        return "systemctl daemon-reload && systemctl enable --now " + " ".join(timers)
    return _start(service, "rcctl" if flavour == "openbsd" else "systemctl")


@dataclass
class NodeResult:
    node: str
    changes: list[Change] = field(default_factory=list)
    reloaded: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""
    code: int = 0  # 0 nothing changed, 1 changed, 3 refused by a check, 5 failed


def connect_pyinfra(node: str, host: str, deploy: DeployConfig) -> Any:
    """A connected pyinfra Host: ``@local`` or SSH to ``host``."""
    from pyinfra.api.config import Config as PyinfraConfig
    from pyinfra.api.inventory import Inventory
    from pyinfra.api.state import State

    data: dict[str, Any] = {}
    if host != "@local":
        data = {"ssh_user": deploy.ssh_user, "ssh_port": deploy.ssh_port}
        if deploy.ssh_key is not None:
            data["ssh_key"] = str(deploy.ssh_key)
        if deploy.known_hosts is not None:
            data["ssh_known_hosts_file"] = str(deploy.known_hosts)
        # The lab and first deploys: accept a new host key, refuse a changed one.
        data["ssh_strict_host_key_checking"] = "accept-new"
    inventory = Inventory(([(host, data)], {}))  # type: ignore[no-untyped-call]
    State(inventory, PyinfraConfig(CONNECT_TIMEOUT=10))  # type: ignore[no-untyped-call]
    pyhost = inventory.get_host(host)
    pyhost.connect(show_errors=False, raise_exceptions=True)
    return pyhost


def deploy_node(
    cfg: Config,
    files: list[Rendered],
    remote: Remote,
    flavour: str,
    dry_run: bool,
    srcs: list[zones.Source] | None = None,
    now: float | None = None,
) -> NodeResult:
    deploy = cfg.deploy or DeployConfig()
    result = NodeResult(files[0].node if files else "")
    srcs = srcs or []
    extra = [zones.state_path(cfg)] if srcs else []
    # What deploy would write: a node file with the same SHA-256 is not downloaded.
    known = {f.path: f.content for f in files if f.spec.kind == "file"}
    paths = [f.path for f in files] + [s.node_path for s in srcs] + extra
    # The certificates of the names served over TLS: only whether they exist.
    tls = placeholders.needed(cfg, result.node, flavour)
    current = remote.read_all(paths, known, placeholders.paths(tls))
    if srcs:
        when = time.time() if now is None else now
        files = files + zones.rendered(cfg, result.node, flavour, srcs, current, when)
    result.changes = plan(files, current)
    if dry_run or not result.changes:
        result.code = 1 if result.changes else 0
        return result
    at = remote.at
    remote.write_all(
        [
            (at(c.path) + STAGED, c.new, c.file.spec.mode, c.file.spec.owner, c.file.spec.group)
            for c in result.changes
        ]
    )
    # A fresh node has no certificates yet, and its servers' checks (relayd -n, nginx -t)
    # would refuse the names it serves: placeholders, removed again if a check refuses.
    lacking = placeholders.missing(tls, current)
    prelude, written = placeholders.script(
        cfg, remote, lacking, time.time() if now is None else now
    )
    if prelude:
        remote.must(prelude)
    failed = (
        _check_staged(remote, result.changes)
        or _install(cfg, remote, result.changes, current, extra)
        or _check_whole(remote, result.changes, deploy, result.notes)
    )
    if failed is not None:
        result.code, result.error = failed.code, failed.error
        undo = _restore if failed.installed else _remove_staged
        undo(remote, result.changes, written)
        return result
    result.code = 1
    result.notes += [f"placeholder certificate for {n.name} (kissha certs replaces it)"
                     for n in lacking]  # fmt: skip
    # 4. Reload only what changed, each service once. nsd's reload reads its zones
    # again, not the addresses it listens on; a restart that cannot bind would leave it
    # stopped (a reload keeps the old one answering): the operator restarts it, told so.
    if any(c.path.rsplit("/", 1)[-1] == "nsd.conf" for c in result.changes):
        result.notes.append(
            "nsd.conf changed and nsd is reloaded, which reads the zones again but not "
            "the addresses it listens on: if those changed, restart nsd"
        )
    for service in services(result.changes):
        ok, out = remote.sh(reload_command(service, files, flavour, deploy, remote.root))
        if ok:
            result.reloaded.append(service)
        else:
            result.error = f"{service}: reload failed: {out.strip()}"
            result.code = 5
    _drop_backups(remote, result.changes)
    return result


class Failed(NamedTuple):
    """A step that stopped the deploy of a node: its exit code, what went wrong, and
    whether the new files were installed already (put the old ones back) or only
    staged (remove them)."""

    code: int
    error: str
    installed: bool = False


def _check_staged(remote: Remote, changes: list[Change]) -> Failed | None:
    """1. Checks that take the file: run on the staged copy, nothing installed yet."""
    for c in changes:
        check = c.file.spec.check
        if check and any("{path}" in a for a in check):
            staged = remote.at(c.path) + STAGED
            ok, out = remote.run([a.replace("{path}", staged) for a in check])
            if not ok:
                return Failed(3, f"{c.path}: {check[0]} refused it: {out.strip()}")
    return None


def _install(
    cfg: Config,
    remote: Remote,
    changes: list[Change],
    current: dict[str, str | None],
    extra: list[str],
) -> Failed | None:
    """2. Install: keep the old file until the whole-config checks pass; one command
    (one SSH round trip) that stops at the first step that fails."""
    at = remote.at
    # A failover that ran on the node since we read its roles: the zones rendered for the
    # old roles must not go in (they would point the records back).
    again: dict[str, str | None] | None = None
    if extra and any(c.file.spec.template == "zone" for c in changes):
        again = remote.read_all(extra)
        if zones.roles_for(cfg, [], again) != zones.roles_for(cfg, [], current):
            return Failed(
                5,
                "the node's roles changed during the deploy (a failover ran): "
                "nothing installed; deploy again",
            )
    steps = []
    for c in changes:
        q = shlex.quote(at(c.path))
        keep = f"cp -p {q} {q}{BACKUP} && " if c.old is not None else ""
        steps.append(f"{keep}mv -f {q}{STAGED} {q}")
    command = " && ".join(steps)
    if again is not None:
        # Zones go in under the node's kissha lock, and only if state.json is still what
        # was just read: no failover run can slip in between (deploy/lock.py).
        state = extra[0]
        lockfile = str(PurePosixPath(str(cfg.state_dir)) / "lock")
        command = lock.locked(command, at(lockfile), at(state), again.get(state), lock.WAIT)
    ok, out = remote.sh(command)
    if not ok:
        if "another kissha run holds" in out or "changed during the deploy" in out:
            return Failed(5, f"{out.strip()}: nothing installed; deploy again")
        raise RemoteError(f"install: {out.strip() or 'failed'}")
    return None


def _check_whole(
    remote: Remote, changes: list[Change], deploy: DeployConfig, notes: list[str]
) -> Failed | None:
    """3. Checks of the whole configuration (nginx -t), on the installed files."""
    whole = {c.file.spec.check for c in changes if c.file.spec.check} - {
        c.file.spec.check for c in changes if any("{path}" in a for a in c.file.spec.check)
    }
    for check in sorted(whole):
        if deploy.root:
            notes.append(f"not run with a root prefix: {' '.join(check)}")
            continue
        ok, out = remote.run(list(check))
        if not ok:
            return Failed(3, f"{check[0]} refused the new files: {out.strip()}", installed=True)
    return None


def _remove_staged(remote: Remote, changes: list[Change], placeholders: list[str]) -> None:
    """Nothing installed: the staged files and the placeholders written go."""
    paths = [remote.at(c.path) + STAGED for c in changes] + placeholders
    remote.sh("rm -f " + " ".join(shlex.quote(p) for p in paths))


def _restore(remote: Remote, changes: list[Change], placeholders: list[str]) -> None:
    for c in changes:
        q = shlex.quote(remote.at(c.path))
        remote.sh(f"mv -f {q}{BACKUP} {q}" if c.old is not None else f"rm -f {q}")
    if placeholders:
        remote.sh("rm -f " + " ".join(shlex.quote(p) for p in placeholders))


def _drop_backups(remote: Remote, changes: list[Change]) -> None:
    paths = " ".join(shlex.quote(remote.at(c.path) + BACKUP) for c in changes if c.old is not None)
    if paths:
        remote.sh(f"rm -f {paths}")


Connect = Callable[[str, str, DeployConfig], Any]


def run(
    cfg: Config,
    config_text: str,
    nodes: list[str],
    flavour: str,
    dry_run: bool,
    connect: Connect = connect_pyinfra,
    now: float | None = None,
) -> list[NodeResult]:
    deploy = cfg.deploy or DeployConfig()
    rendered = {n: render_node(cfg, n, flavour, config_text, deploy.templates) for n in nodes}
    srcs = zones.sources(cfg)  # a broken source zone stops here, no node contacted
    results: list[NodeResult] = []
    for name in nodes:
        try:
            host = connect(name, deploy.host(cfg.node(name)), deploy)
            result = deploy_node(
                cfg, rendered[name], Remote(host, deploy, name), flavour, dry_run, srcs, now
            )
        except RemoteError as exc:
            result = NodeResult(name, error=str(exc), code=5)
        except Exception as exc:  # pyinfra's connect errors, gevent, paramiko...
            result = NodeResult(name, error=f"{type(exc).__name__}: {exc}", code=5)
        result.node = name
        results.append(result)
    return results


def exit_code(results: list[NodeResult]) -> int:
    codes = {r.code for r in results}
    for code in (5, 3, 1):
        if code in codes:
            return code
    return 0
