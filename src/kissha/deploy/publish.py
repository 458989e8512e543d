"""``kissha publish``: each site's static content (``[deploy] web_source/SITE/`` and
``gemini_source/SITE/``) copied to every node's ``web_root/SITE/`` and
``gemini_root/SITE/``, only the files whose SHA-256 differs, over the same pyinfra
connection as deploy. Files the source no longer has are removed only with --delete.

On OpenBSD with several sites serving Gemini, vger runs with ``-v``: it reads
``gemini_root/NAME`` for the name asked for, so each site's other names (``www.``,
``standby.``...) become symbolic links to the site's directory (relative, inside vger's
root), made or corrected by publish and never over a real file or directory."""

from __future__ import annotations

import hashlib
import io
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kissha.config import Config
from kissha.config.deploy import DeployConfig
from kissha.deploy.remote import Remote, RemoteError
from kissha.deploy.run import Connect, connect_pyinfra
from kissha.errors import ConfigError
from kissha.render.model import DEFAULTS

STAGED = ".kissha-new"


@dataclass(frozen=True)
class Tree:
    """One local directory and where it goes on the node."""

    local: Path
    remote: str  # absolute, without the node's root prefix
    files: dict[str, str]  # path relative to both -> SHA-256


@dataclass
class PublishResult:
    node: str
    changed: list[str] = field(default_factory=list)  # remote paths, "new"/"changed"
    removed: list[str] = field(default_factory=list)
    bytes: int = 0  # uploaded
    error: str = ""
    code: int = 0  # 0 nothing changed, 1 changed, 5 failed


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def local_tree(local: Path, remote: str) -> Tree:
    files: dict[str, str] = {}
    for p in sorted(local.rglob("*")):
        if p.is_symlink() or not p.is_file():
            continue  # a symlink could point outside the content: never followed
        rel = p.relative_to(local).as_posix()
        if any(c in rel for c in "\n\\") or rel.endswith(STAGED):
            raise ConfigError([f"{p}: a file name kissha publish cannot copy safely"])
        files[rel] = _digest(p)
    return Tree(local, remote, files)


def trees(cfg: Config, flavour: str) -> list[Tree]:
    """Every site's content directories that exist in the sources."""
    deploy = cfg.deploy or DeployConfig()
    if deploy.web_source is None and deploy.gemini_source is None:
        raise ConfigError(["deploy: set web_source or gemini_source for kissha publish"])
    web_root = deploy.web_root or DEFAULTS[flavour]["web_root"]
    gemini_root = deploy.gemini_root or DEFAULTS[flavour]["gemini_root"]
    out: list[Tree] = []
    for source, root in ((deploy.web_source, web_root), (deploy.gemini_source, gemini_root)):
        if source is None:
            continue
        if not source.is_dir():
            raise ConfigError([f"{source}: no such directory"], "deploy")
        names = {s.name for s in cfg.sites}
        for d in sorted(source.iterdir()):
            if d.is_dir() and not d.name.startswith("."):
                if d.name not in names:
                    raise ConfigError([f"{d}: no site {d.name!r} in [[sites]]"])
                out.append(local_tree(d, f"{root}/{d.name}"))
    return out


def remote_digests(remote: Remote, directory: str) -> dict[str, str]:
    """relative path -> SHA-256 of every file under ``directory`` on the node."""
    q = shlex.quote(remote.at(directory))
    # sha256sum on Debian, sha256 -r on OpenBSD: both print "HASH  PATH" or "HASH PATH".
    out = remote.must(
        f"[ -d {q} ] || exit 0; cd {q} && "
        "if command -v sha256sum >/dev/null 2>&1; then "
        "find . -type f -exec sha256sum {} +; else find . -type f -exec sha256 -r {} +; fi"
    )
    digests: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[1].startswith("./"):
            digests[parts[1][2:]] = parts[0]
    return digests


def gemini_links(cfg: Config, flavour: str) -> list[tuple[str, str]]:
    """(link, target) for vger -v: every Gemini name of a site but the site's own, to
    the site's directory name; none unless OpenBSD and several sites serve Gemini (as
    render/model.py decides the inetd line)."""
    if flavour != "openbsd":
        return []
    deploy = cfg.deploy or DeployConfig()
    gemini_root = deploy.gemini_root or DEFAULTS[flavour]["gemini_root"]
    names = [sn for sn in cfg.site_names() if "gemini" in sn.serve and sn.kind != "node"]
    if len({sn.site or sn.name for sn in names}) < 2:
        return []  # one site: vger -d serves every name from its directory
    return sorted(
        (f"{gemini_root}/{sn.name}", sn.site) for sn in names if sn.site and sn.site != sn.name
    )


def _links(
    remote: Remote, links: Sequence[tuple[str, str]], dry_run: bool, result: PublishResult
) -> None:
    """Make (or, with ``dry_run``, only find) the links that are missing or point
    elsewhere, in one command (each command is an SSH round trip); a real file or
    directory in a link's place is left alone, with an error."""
    steps = []
    for link, target in links:
        q, t = shlex.quote(remote.at(link)), shlex.quote(target)
        make = (
            "true"
            if dry_run
            else f"mkdir -p {shlex.quote(remote.at(link.rsplit('/', 1)[0]))} && ln -sfn {t} {q}"
        )
        steps.append(
            f'if [ -L {q} ]; then [ "$(readlink {q})" = {t} ] || {{ {make} && echo ={q}; }}; '
            f"elif [ -e {q} ]; then echo '!'{q}; else {make} && echo +{q}; fi"
        )
    if not steps:
        return
    out = remote.must(" && ".join(steps))
    targets = dict(links)
    for line in out.splitlines():
        mark, path = line[:1], line[1:]
        link = path[len(remote.root) :] if path.startswith(remote.root) else path
        if link not in targets:
            continue
        if mark == "!":
            problem = f"{link}: not a link to {targets[link]} (a file or directory there)"
            result.error = f"{result.error}; {problem}" if result.error else problem
        elif mark in "+=":
            new = " (new)" if mark == "+" else ""
            result.changed.append(f"{link} -> {targets[link]}{new}")


def publish_node(
    remote: Remote,
    name: str,
    content: list[Tree],
    dry_run: bool,
    delete: bool,
    links: Sequence[tuple[str, str]] = (),
) -> PublishResult:
    result = PublishResult(name)
    uploads: list[tuple[Path, str]] = []
    for tree in content:
        there = remote_digests(remote, tree.remote)
        for rel, digest in tree.files.items():
            if there.get(rel) != digest:
                uploads.append((tree.local / rel, f"{tree.remote}/{rel}"))
                result.changed.append(f"{tree.remote}/{rel}" + ("" if rel in there else " (new)"))
        if delete:
            for rel in sorted(set(there) - set(tree.files)):
                if not rel.endswith(STAGED):
                    result.removed.append(f"{tree.remote}/{rel}")
    if dry_run:
        _links(remote, links, True, result)
        return _settled(result)
    dirs = sorted({remote.at(path.rsplit("/", 1)[0]) for _, path in uploads})
    if dirs:
        remote.must("mkdir -p " + " ".join(shlex.quote(d) for d in dirs))
    for local, path in uploads:
        data = local.read_bytes()
        # Staged then renamed: a visitor never gets half a file.
        if not remote.host.put_file(io.BytesIO(data), remote.at(path) + STAGED, **remote.become):
            raise RemoteError(f"{path}: cannot write")
        result.bytes += len(data)
    if uploads:  # all renamed in one command: each command is an SSH round trip
        steps = []
        for _, path in uploads:
            q = shlex.quote(remote.at(path))
            steps.append(f"chmod 644 {q}{STAGED} && mv -f {q}{STAGED} {q}")
        remote.must(" && ".join(steps))
    if result.removed:
        remote.must("rm -f " + " ".join(shlex.quote(remote.at(p)) for p in result.removed))
    try:  # the files are in: a failure here must not hide what was copied
        _links(remote, links, False, result)
    except RemoteError as exc:
        result.error = f"Gemini links: {exc}"
    return _settled(result)


def _settled(result: PublishResult) -> PublishResult:
    result.code = 5 if result.error else 1 if result.changed or result.removed else 0
    return result


def run(
    cfg: Config,
    nodes: list[str],
    flavour: str,
    dry_run: bool,
    delete: bool,
    connect: Connect = connect_pyinfra,
) -> list[PublishResult]:
    deploy = cfg.deploy or DeployConfig()
    content = trees(cfg, flavour)  # a bad source stops here, no node contacted
    links = gemini_links(cfg, flavour)
    results: list[PublishResult] = []
    for name in nodes:
        try:
            host = connect(name, deploy.host(cfg.node(name)), deploy)
            remote = Remote(host, deploy, name)
            result = publish_node(remote, name, content, dry_run, delete, links)
        except RemoteError as exc:
            result = PublishResult(name, error=str(exc), code=5)
        except Exception as exc:  # pyinfra's connect errors, gevent, paramiko...
            result = PublishResult(name, error=f"{type(exc).__name__}: {exc}", code=5)
        results.append(result)
    return results


def exit_code(results: list[PublishResult]) -> int:
    codes = {r.code for r in results}
    return 5 if 5 in codes else 1 if 1 in codes else 0
