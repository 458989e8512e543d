"""Placeholder certificates for a node that has none yet, so that its first deploy's
whole-config check (``nginx -t`` loads every certificate it names) passes and the TLS
servers start.

On a fresh node nothing has run ``kissha certs`` yet, and it cannot run before deploy
has installed its kissha.toml: without this, a deploy from scratch would be refused by
nginx and put everything back. A placeholder is exactly what ``kissha certs`` itself
writes first (certs/store.py: self-signed, for that one name, marked as a placeholder),
so the node's next ``kissha certs`` run sees it as due and replaces it. Only names with
no certificate, key or chain file get one; an existing certificate is never touched.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from kissha.config import Config
from kissha.deploy.remote import Remote
from kissha.render.model import context


@dataclass(frozen=True)
class Needed:
    name: str
    cert: str
    key: str
    fullchain: str


def needed(cfg: Config, node: str, flavour: str) -> list[Needed]:
    """Every name the node serves over TLS (HTTPS or Gemini), with its certificate paths."""
    names = context(cfg, cfg.node(node), flavour, "")["names"]
    return [Needed(n.name, n.cert, n.key, n.fullchain) for n in names if n.https or n.gemini]


def paths(wanted: list[Needed]) -> list[str]:
    return sorted({p for w in wanted for p in (w.cert, w.key, w.fullchain)})


def missing(wanted: list[Needed], current: Mapping[str, str | None]) -> list[Needed]:
    """The names lacking any of their three files on the node (``current``: what
    Remote.read_all found, with these paths among ``exists``)."""
    return [w for w in wanted if any(current.get(p) is None for p in (w.cert, w.key, w.fullchain))]


END = "KISSHA_PLACEHOLDER_END"  # a PEM text never holds this line
STAGED = ".kissha-new"


def script(cfg: Config, remote: Remote, names: list[Needed], now: float) -> tuple[str, list[str]]:
    """Shell lines that write a placeholder key, certificate and chain for each name
    (one SSH command for them all): every file is written under umask 077 next to its
    target, given its owner and mode, then renamed into place. Also the paths written
    (root-prefixed)."""
    if not names:
        return "", []
    from kissha.certs import store  # cryptography: only when a placeholder is needed

    key_type = cfg.certs.key_type if cfg.certs else "ecdsa-p256"
    group = cfg.certs.key_group if cfg.certs else ""
    key_mode = "640" if group else "600"
    written: list[str] = []
    dirs = sorted({remote.at(p).rsplit("/", 1)[0] for p in paths(names)})
    # The directories first, with the usual umask (a key group must be able to enter).
    lines = ["set -e", "mkdir -p " + " ".join(shlex.quote(d) for d in dirs), "umask 077"]
    for n in names:
        key = store.new_key(key_type)
        pem = {
            "key": store.key_pem(key).decode(),
            "cert": store.placeholder(n.name, key, now).decode(),
        }
        for path, text, mode, owner in (
            (n.key, pem["key"], key_mode, f"root:{group}" if group else "root"),
            (n.cert, pem["cert"], "644", "root"),
            (n.fullchain, pem["cert"], "644", "root"),
        ):
            q = shlex.quote(remote.at(path) + STAGED)
            lines += [f"cat > {q} <<'{END}'", text.rstrip("\n"), END]
            # An owner or group this system lacks (a test root) keeps the uploader's.
            lines.append(f"chown {owner} {q} 2>/dev/null || true")
            lines.append(f"chmod {mode} {q} && mv -f {q} {shlex.quote(remote.at(path))}")
            written.append(remote.at(path))
    lines.append("umask 022")
    return "\n".join(lines) + "\n", written
