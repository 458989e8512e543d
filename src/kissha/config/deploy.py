"""The [deploy] table: how ``kissha render`` lays out each node's files and how
``kissha deploy`` reaches the nodes. Only those commands read it; a node ignores it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kissha.config.tomlcheck import Reader, argv, nonempty, one_of, path_from, port_number
from kissha.core.model import Node

FLAVOURS = ("openbsd", "debian")
BECOME = ("", "doas", "sudo")


def _absolute(value: str) -> str | None:
    return None if value.startswith("/") else "must be an absolute path"


@dataclass(frozen=True)
class DeployConfig:
    """What render and deploy need beyond the rest of the config."""

    flavour: str = "openbsd"
    templates: Path | None = None  # the operator's overrides: DIR/FLAVOUR/NAME or DIR/NAME
    zones_source: Path | None = None  # the operator's zone files; default: dns.zones_dir
    web_source: Path | None = None  # kissha publish: DIR/SITE/ -> web_root/SITE/
    gemini_source: Path | None = None  # kissha publish: DIR/SITE/ -> gemini_root/SITE/
    web_root: str = ""  # "" : /var/www/htdocs (OpenBSD) or /var/www (Debian); NAME/ below
    gemini_root: str = ""  # "" : /var/gemini (OpenBSD) or /var/lib/molly-brown (Debian)
    gemini_port: int = 11965  # OpenBSD: the local Gemini server relayd forwards to
    kissha: str = "/usr/local/bin/kissha"  # the command in crontabs and units
    config_path: str = "/etc/kissha.toml"  # where the node's kissha.toml goes
    ssh_user: str = "root"
    ssh_port: int = 22
    ssh_key: Path | None = None
    known_hosts: Path | None = None  # None: ~/.ssh/known_hosts
    become: str = ""  # "doas" or "sudo" for a non-root ssh_user
    hosts: tuple[tuple[str, str], ...] = ()  # node name -> SSH address; default its FQDN
    root: str = ""  # a prefix for every path written (tests, a chroot); "" none
    reload: tuple[tuple[str, tuple[str, ...]], ...] = ()  # service -> command, overrides

    def host(self, node: Node) -> str:
        return dict(self.hosts).get(node.name, node.fqdn)


def parse_deploy(
    r: Reader, table: Mapping[str, Any], base: Path, nodes: tuple[Node, ...]
) -> DeployConfig:
    p = "deploy"
    r.unknown(
        table,
        {
            "flavour",
            "templates",
            "zones_source",
            "web_source",
            "gemini_source",
            "web_root",
            "gemini_root",
            "gemini_port",
            "kissha",
            "config_path",
            "ssh_user",
            "ssh_port",
            "ssh_key",
            "known_hosts",
            "become",
            "hosts",
            "root",
            "reload",
        },
        p,
    )
    templates = r.get(table, "templates", p, str, "", nonempty)
    zones_source = r.get(table, "zones_source", p, str, "", nonempty)
    web_source = r.get(table, "web_source", p, str, "", nonempty)
    gemini_source = r.get(table, "gemini_source", p, str, "", nonempty)
    ssh_key = r.get(table, "ssh_key", p, str, "", nonempty)
    known_hosts = r.get(table, "known_hosts", p, str, "", nonempty)
    hosts = r.table(table, "hosts", p)
    names = {n.name for n in nodes}
    for name, host in hosts.items():
        if name not in names:
            r.problem(f"{p}.hosts.{name}", f"no such node: {name!r}")
        if not isinstance(host, str) or not host:
            r.problem(f"{p}.hosts.{name}", "must be a host name or address")
    root = r.get(table, "root", p, str, "")
    if root and not root.startswith("/"):
        r.problem(f"{p}.root", "must be an absolute path")
    reload: list[tuple[str, tuple[str, ...]]] = []
    for service, command in r.table(table, "reload", p).items():
        message = argv(command) if isinstance(command, list) else "must be an array"
        if message:
            r.problem(f"{p}.reload.{service}", message + ' (e.g. ["rcctl", "reload", "httpd"])')
        else:
            reload.append((service, tuple(command)))
    return DeployConfig(
        flavour=r.get(table, "flavour", p, str, "openbsd", one_of(FLAVOURS)),
        templates=path_from(base, templates) if templates else None,
        zones_source=path_from(base, zones_source) if zones_source else None,
        web_source=path_from(base, web_source) if web_source else None,
        gemini_source=path_from(base, gemini_source) if gemini_source else None,
        web_root=r.get(table, "web_root", p, str, "", _absolute_or_empty),
        gemini_root=r.get(table, "gemini_root", p, str, "", _absolute_or_empty),
        gemini_port=r.get(table, "gemini_port", p, int, 11965, port_number),
        kissha=r.get(table, "kissha", p, str, "/usr/local/bin/kissha", _absolute),
        config_path=r.get(table, "config_path", p, str, "/etc/kissha.toml", _absolute),
        ssh_user=r.get(table, "ssh_user", p, str, "root", nonempty),
        ssh_port=r.get(table, "ssh_port", p, int, 22, port_number),
        ssh_key=path_from(base, ssh_key) if ssh_key else None,
        known_hosts=path_from(base, known_hosts) if known_hosts else None,
        become=r.get(table, "become", p, str, "", one_of(BECOME)),
        hosts=tuple((k, str(v)) for k, v in hosts.items() if isinstance(v, str)),
        root=root.rstrip("/"),
        reload=tuple(reload),
    )


def _absolute_or_empty(value: str) -> str | None:
    return None if not value else _absolute(value)
