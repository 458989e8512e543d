"""The checks a node runs: the original's set generated from the config (nodes, sites,
[health.probes], the failover state's roles), then [[monitor.checks]] merged in: new
checks added, generated ones changed by id, some dropped (``exclude``, ``enabled``)."""

from __future__ import annotations

from dataclasses import replace
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from kissha.core.model import Family, Node, Roles
from kissha.errors import ConfigError
from kissha.monitor import logic
from kissha.monitor.model import CheckSpec

if TYPE_CHECKING:
    from kissha.config import Config
    from kissha.config.monitor import CheckEntry
    from kissha.config.sites import SiteName

GEMINI_PORT = 1965


def default_roles(config: Config) -> Roles:
    """Before the first failover run: the default master and the next node."""
    order = [config.default_master, *(n for n in config.node_names if n != config.default_master)]
    return Roles(order[0], order[1] if len(order) > 1 else order[0], tuple(order))


def generated(config: Config, roles: Roles | None) -> list[CheckSpec]:
    """The original's checks, for every node over each of its families: ping, each
    [health.probes] probe (https with certificate expiry, gemini, smtp...), what its
    nameserver answers, Gemini over TCP when a node serves Gemini without a probe for
    it; per site name: its certificate on every node and HTTPS over each family at the
    node the name points at; local disk, load and swap."""
    mc = config.monitor
    roles = roles or default_roles(config)
    base = CheckSpec(
        "",
        "",
        retries=mc.retries,
        retry_interval=mc.retry_interval,
        timeout=mc.timeout,
        quiet=mc.quiet,
        warn_days=mc.cert_warn_days,
        crit_days=mc.cert_crit_days,
    )
    out: list[CheckSpec] = []
    for node in config.nodes:
        for family in node.families:
            out += _node_checks(config, node, family, base)
    for sn in config.site_names():
        if sn.kind != "node" and "https" in sn.serve:
            out += _site_checks(config, sn, roles, base)
    for kind, about in (
        ("disk", "free space on /"),
        ("load", "load average"),
        ("swap", "free swap"),
    ):
        out.append(replace(base, id=kind, kind=kind, scope="local", about=f"this node's {about}"))
    return [s for s in out if not any(fnmatchcase(s.id, pat) for pat in mc.exclude)]


_TAKEN = {"ping", "dns", "cert", "http", "disk", "load", "swap"}  # a probe named so: "probe:NAME"


def _node_checks(config: Config, node: Node, family: Family, base: CheckSpec) -> list[CheckSpec]:
    """One node over one family: ping, its probes, its nameserver, Gemini over TCP."""
    ping = f"ping/{node.name}/{family}"
    at = replace(base, node=node.name, family=family, address=node.address(family))
    out = [replace(at, id=ping, kind="ping", about=f"{node.name} answers over {family}")]
    for probe in config.health.probes:
        if not node.runs(probe.name) or probe.kind == "dns":
            continue
        name = probe.name if probe.name not in _TAKEN else f"probe:{probe.name}"
        out.append(
            replace(
                at,
                id=f"{name}/{node.name}/{family}",
                kind="probe",
                probe=probe.name,
                depends=(ping,),
                about=f"kissha's {probe.kind} probe of {node.fqdn}",
            )
        )
    out.append(
        replace(
            at,
            id=f"dns/{node.name}/{family}",
            kind="nameserver",
            port=config.page.port,
            depends=(ping,),
            about=f"what {node.name}'s nameserver answers",
        )
    )
    gemini_sites = any("gemini" in site.serve for site in config.sites)
    has_gemini = any(p.kind == "gemini" and node.runs(p.name) for p in config.health.probes)
    if gemini_sites and not has_gemini:
        out.append(
            replace(
                at,
                id=f"gemini/{node.name}/{family}",
                kind="tcp",
                port=GEMINI_PORT,
                depends=(ping,),
                about="Gemini over TCP",
            )
        )
    return out


def _site_checks(config: Config, sn: SiteName, roles: Roles, base: CheckSpec) -> list[CheckSpec]:
    """One site name: its certificate on every node, HTTPS over each family at the
    node the name points at."""
    out = []
    for node in config.nodes:
        first: Family = "ipv4" if node.ipv4 else "ipv6"
        out.append(
            replace(
                base,
                id=f"cert/{sn.name}/{node.name}",
                kind="cert",
                name=sn.name,
                node=node.name,
                family=first,
                address=node.address(first),
                port=443,
                depends=(f"ping/{node.name}/{first}",),
                about=f"the certificate {node.name} serves for {sn.name}",
            )
        )
    target = config.node(roles.standby if sn.role == "standby" else roles.master)
    for fam in target.families:
        out.append(
            replace(
                base,
                id=f"http/{sn.name}/{fam}",
                kind="http",
                name=sn.name,
                node=target.name,
                family=fam,
                address=target.address(fam),
                port=443,
                path=config.monitor.http_path,
                depends=(f"ping/{target.name}/{fam}",),
                about=f"{sn.name} over HTTPS at the {sn.role} ({target.name})",
            )
        )
    return out


def for_node(config: Config, roles: Roles | None, me: str | None) -> list[CheckSpec]:
    """Every check this node runs, generated and configured, dependencies checked."""
    mc = config.monitor
    specs = generated(config, roles) if mc.defaults else []
    by_id = {s.id: i for i, s in enumerate(specs)}
    problems: list[str] = []
    drop: set[str] = set()
    for entry in mc.checks:
        if entry.nodes is not None and me is not None and me not in entry.nodes:
            drop.add(entry.id)
            continue
        if not entry.enabled:
            drop.add(entry.id)
            continue
        if entry.id in by_id and entry.kind is None:
            specs[by_id[entry.id]] = _override(specs[by_id[entry.id]], entry)
        elif entry.kind is None:
            problems.append(
                f"{entry.key}: no generated check is named {entry.id!r} and no kind is given "
                "(see kissha monitor --list)"
            )
        else:
            spec = _new(config, entry, problems)
            if entry.id in by_id:
                specs[by_id[entry.id]] = spec
            else:
                by_id[entry.id] = len(specs)
                specs.append(spec)
    specs = [s for s in specs if s.id not in drop]
    ids = {s.id for s in specs}
    specs = [
        replace(s, depends=tuple(d for d in s.depends if d in ids or d not in drop)) for s in specs
    ]
    problems += [f"monitor.checks: {p}" for p in logic.dependency_problems(specs)]
    if problems:
        raise ConfigError(problems, config.source)
    return specs


def _override(spec: CheckSpec, e: CheckEntry) -> CheckSpec:
    changes = {
        k: getattr(e, k)
        for k in (
            "depends",
            "retries",
            "retry_interval",
            "interval",
            "spread",
            "timeout",
            "quiet",
            "scope",
            "warn_days",
            "crit_days",
            "path",
        )
        if getattr(e, k) is not None
    }
    return replace(spec, **changes)


def _new(config: Config, e: CheckEntry, problems: list[str]) -> CheckSpec:
    mc = config.monitor
    family: Family | None = None
    address = None
    if e.node is not None:
        node = config.node(e.node)
        family = e.family if e.family in ("ipv4", "ipv6") else node.families[0]  # type: ignore[assignment]
        address = node.address(family)  # type: ignore[arg-type]
        if address is None:
            problems.append(f"{e.key}.family: node {e.node} has no {family} address")
    if e.kind == "probe" and e.probe not in {p.name for p in config.health.probes}:
        problems.append(f"{e.key}.probe: no such probe in [health.probes]: {e.probe!r}")
    default_port = {"cert": 443, "http": 443, "nameserver": config.page.port}.get(e.kind or "", 0)
    spec = CheckSpec(
        id=e.id,
        kind=e.kind or "plugin",
        argv=e.argv,
        node=e.node,
        family=family,
        name=e.name,
        address=address,
        port=e.port or default_port,
        path=e.path or ("/" if e.kind in ("disk",) else mc.http_path),
        probe=e.probe,
        retries=mc.retries,
        retry_interval=mc.retry_interval,
        timeout=mc.timeout,
        quiet=mc.quiet,
        # A plugin about a node is seen alike from every node: one tells. One about
        # nothing in particular runs on this host: its own node tells.
        scope="cluster" if e.node is not None else "local",
        warn_days=mc.cert_warn_days,
        crit_days=mc.cert_crit_days,
        about=" ".join(e.argv) if e.argv else f"{e.kind} check",
    )
    return _override(spec, e)
