"""What the templates see: plain values computed from the config for one node and flavour."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kissha.config import Config, ZoneRef
from kissha.config.deploy import DeployConfig
from kissha.config.monitor import MonitorConfig
from kissha.core.model import Node
from kissha.errors import ConfigError

# OpenBSD httpd runs chrooted in /var/www: its paths are relative to that.
HTTPD_CHROOT = "/var/www"
DEFAULTS = {
    "openbsd": {
        "web_root": "/var/www/htdocs",
        "gemini_root": "/var/gemini",
        "challenge_dir": "/var/www/acme",
        "control": "/var/run/nsd.sock",
    },
    "debian": {
        "web_root": "/var/www",
        "gemini_root": "/var/lib/molly-brown",
        "challenge_dir": "/var/lib/kissha/acme",
        "control": "/run/nsd/nsd.ctl",
    },
}


# The regular monitor runs in the crontab: every 5 minutes from 08:00 to 22:55, as the
# original ran its monitor (quiet at night).
MONITOR_EVERY = 5
MONITOR_HOURS = (8, 22)


def monitor_extra_runs(mc: MonitorConfig) -> list[str]:
    """Cron times ("M H * * DOW") of the monitor runs that the re-notification and the
    weekly report need outside the regular runs: the original ran its monitor at 07:00
    to re-notify and once a week to report, and kissha monitor sends them at the first
    run after their moment. None with [monitor] timezone: cron runs in the machine's
    local time, which may not be that zone."""
    if mc.timezone:
        return []
    moments: list[tuple[int, str]] = []
    if mc.renotify is not None:
        moments.append((mc.renotify, "*"))
    if mc.weekly is not None:
        day, minute = mc.weekly
        moments.append((minute, str((day + 1) % 7)))  # cron: 0 is Sunday; kissha: 0 is Monday
    out: list[str] = []
    for minute_of_day, dow in moments:
        hour, minute = divmod(minute_of_day, 60)
        regular = minute % MONITOR_EVERY == 0 and MONITOR_HOURS[0] <= hour <= MONITOR_HOURS[1]
        if not regular:
            out.append(f"{minute} {hour} * * {dow}")
    return out


@dataclass(frozen=True)
class NameView:
    """One name this node serves, as the templates use it."""

    name: str
    kind: str  # site | alias | standby | node
    https: bool
    gemini: bool
    web_dir: str  # its content directory (site names share their site's)
    gemini_dir: str
    next_hop: str | None  # port 80: where a challenge not held here is redirected
    cert: str
    key: str
    fullchain: str


def next_hop(host: str, me: str, chain: tuple[str, ...]) -> str | None:
    """The node FQDN that port 80 sends an unknown challenge token for ``host`` to: the
    same rule as certs.challenge.route, fixed at render time (None: answer 404)."""
    start = chain.index(host) + 1 if host in chain else 0
    return next((fqdn for fqdn in chain[start:] if fqdn != me), None)


def _cert_path(cfg: Config, flavour: str, which: str, name: str) -> str:
    from kissha.certs.settings import LAYOUTS

    if cfg.certs is not None:
        return str(cfg.certs.path(which, name))
    layout = LAYOUTS[flavour]
    template: str = getattr(layout, which)
    return template.replace("{name}", name)


def zones(cfg: Config, source: Path) -> list[dict[str, str]]:
    """The zones in the source directory, with their file's path on the node."""
    out: dict[str, dict[str, str]] = {}
    for item in cfg.dns.zones:
        if isinstance(item, ZoneRef):
            node_path = str(item.path)
            out.setdefault(node_path, {"name": item.name.rstrip("."), "file": node_path})
            continue
        for path in sorted(source.glob(item)):
            if path.name.startswith(".") or not path.is_file():
                continue
            if not path.name.endswith(".zone"):
                raise ConfigError(
                    [f"dns.zones: {path}: no '.zone' suffix; list it as {{name, file}}"]
                )
            node_path = str(PurePosixPath(cfg.dns.zones_dir) / path.name)
            name = path.name[: -len(".zone")].lower().rstrip(".")
            out.setdefault(node_path, {"name": name, "file": node_path})
    return list(out.values())


def context(cfg: Config, node: Node, flavour: str, config_text: str) -> dict[str, Any]:
    """Everything the templates of one node use."""
    deploy = cfg.deploy or DeployConfig()
    defaults = DEFAULTS[flavour]
    web_root = deploy.web_root or defaults["web_root"]
    gemini_root = deploy.gemini_root or defaults["gemini_root"]
    challenge_dir = str(cfg.certs.challenge_dir) if cfg.certs else defaults["challenge_dir"]
    chain = tuple(n.fqdn for n in cfg.nodes if n.fqdn)
    names: list[NameView] = []
    for sn in cfg.site_names():
        if sn.kind == "node" and sn.node != node.name:
            continue  # another node's FQDN always points at that node
        home = sn.site or sn.name
        names.append(
            NameView(
                name=sn.name,
                kind=sn.kind,
                https="https" in sn.serve,
                gemini="gemini" in sn.serve,
                web_dir=f"{web_root}/{home}",
                gemini_dir=f"{gemini_root}/{home}",
                next_hop=next_hop(sn.name, node.fqdn, chain),
                cert=_cert_path(cfg, flavour, "cert", sn.name),
                key=_cert_path(cfg, flavour, "key", sn.name),
                fullchain=_cert_path(cfg, flavour, "fullchain", sn.name),
            )
        )
    if flavour == "openbsd" and not challenge_dir.startswith(HTTPD_CHROOT + "/"):
        raise ConfigError(
            [
                f"certs.challenge_dir: {challenge_dir} is outside httpd's chroot "
                f"{HTTPD_CHROOT}: port 80 could not serve the tokens"
            ]
        )
    # vger serves one directory for every name, unless several sites serve Gemini: then
    # -v, a directory per name (OpenBSD's inetd.conf).
    site_dirs = sorted({n.gemini_dir for n in names if n.gemini and n.kind != "node"})
    own_dir = f"{gemini_root}/{node.fqdn}"
    gemini_single_dir = site_dirs[0] if len(site_dirs) == 1 else None if site_dirs else own_dir
    source = deploy.zones_source or cfg.dns.zones_dir
    # A stable minute per node for the daily certificate run: the nodes do not ask at once.
    minute = zlib.crc32(node.name.encode()) % 60
    return {
        "node": node,
        "nodes": cfg.nodes,
        "flavour": flavour,
        "names": names,
        "https_names": [n for n in names if n.https],
        "gemini_names": [n for n in names if n.gemini],
        "zones": zones(cfg, Path(source)),
        "zones_dir": str(cfg.dns.zones_dir),
        "control_socket": defaults["control"],
        "web_root": web_root,
        "gemini_root": gemini_root,
        "gemini_port": deploy.gemini_port,
        "gemini_single_dir": gemini_single_dir,
        "challenge_dir": challenge_dir,
        "httpd_challenge_root": challenge_dir[len(HTTPD_CHROOT) :],
        "httpd_root": lambda path: (
            path[len(HTTPD_CHROOT) :] if path.startswith(HTTPD_CHROOT + "/") else path
        ),
        "kissha": deploy.kissha,
        "config_path": deploy.config_path,
        "config_text": config_text,
        "certs": cfg.certs is not None,
        "monitor": cfg.monitor.configured,
        "monitor_schedule": f"*/{MONITOR_EVERY} {MONITOR_HOURS[0]}-{MONITOR_HOURS[1]} * * *",
        "monitor_extra": monitor_extra_runs(cfg.monitor),
        "state_dir": str(cfg.state_dir),
        "certs_minute": minute,
    }
