"""The [[sites]] table: the names the nodes serve, and every name that needs a certificate.

One table of sites serves certificates, monitoring and rendering: each site's name, the
names derived from it (``www.`` aliases that point at the master and ``standby.`` names
that point at the standby, as the original), what it is served over, plus each node's
own FQDN, which always points at that node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kissha.config.tomlcheck import Reader, fully_qualified, kind_of
from kissha.core.model import Node, ProbeSpec

NameKind = Literal["site", "alias", "standby", "node"]
SERVICES = ("https", "gemini")
DEFAULT_ALIASES = ("www",)
DEFAULT_STANDBY = ("standby",)
DEFAULT_SERVE = ("https",)


@dataclass(frozen=True)
class Site:
    """A site: its name, the full names derived from it, and what serves it."""

    name: str  # "example.org", lower case, no trailing dot
    aliases: tuple[str, ...] = ()  # full names pointing at the master: "www.example.org"
    standby: tuple[str, ...] = ()  # full names pointing at the standby: "standby.example.org"
    serve: tuple[str, ...] = DEFAULT_SERVE  # "https", "gemini"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases, *self.standby)


@dataclass(frozen=True)
class SiteName:
    """One DNS name the nodes serve, with where it comes from and whom it points at."""

    name: str
    kind: NameKind
    serve: tuple[str, ...]
    site: str | None = None  # the site it derives from (kinds site, alias, standby)
    node: str | None = None  # kind "node": the node whose own FQDN it is

    @property
    def role(self) -> str:
        """Whom the DNS points this name at: "master", "standby", or "node" (itself)."""
        return {"site": "master", "alias": "master", "standby": "standby"}.get(self.kind, "node")


def _prefixes(
    r: Reader, spec: Mapping[str, Any], prefix: str, key: str, default: tuple[str, ...]
) -> list[str]:
    raw = r.get(spec, key, prefix, list, list(default))
    out: list[str] = []
    for i, label in enumerate(raw):
        # "www" or "www.paul": one or more labels before the site's name.
        if not isinstance(label, str) or fully_qualified(f"{label}.x") is not None:
            r.problem(f"{prefix}.{key}[{i}]", f"not a label to put before the name: {label!r}")
            continue
        out.append(label.rstrip(".").lower())
    return out


def parse_sites(r: Reader, data: Mapping[str, Any], nodes: tuple[Node, ...]) -> tuple[Site, ...]:
    """[[sites]], read from the whole config: no table means no sites (only node FQDNs)."""
    if "sites" not in data:
        return ()
    raw = data["sites"]
    if not isinstance(raw, list):
        r.problem("sites", f"must be an array of tables ([[sites]]), not {kind_of(raw)}")
        return ()
    sites: list[Site] = []
    # Every name once, across sites and node FQDNs: one name cannot point two ways.
    seen: dict[str, str] = {n.fqdn: f"nodes.{n.name}.fqdn" for n in nodes if n.fqdn}
    for i, spec in enumerate(raw):
        key = f"sites[{i}]"
        if not isinstance(spec, dict):
            r.problem(key, f"must be a table, not {kind_of(spec)}")
            continue
        r.unknown(spec, {"name", "aliases", "standby", "serve"}, key)
        if "name" not in spec:
            r.problem(f"{key}.name", "missing (the site's domain name, e.g. 'example.org')")
        name = r.get(spec, "name", key, str, "", fully_qualified).rstrip(".").lower()
        aliases = _prefixes(r, spec, key, "aliases", DEFAULT_ALIASES)
        standby = _prefixes(r, spec, key, "standby", DEFAULT_STANDBY)
        serve = r.get(spec, "serve", key, list, list(DEFAULT_SERVE))
        for j, service in enumerate(serve):
            if service not in SERVICES:
                r.problem(
                    f"{key}.serve[{j}]", f"must be one of {', '.join(SERVICES)}, not {service!r}"
                )
        if len(set(map(str, serve))) != len(serve):
            r.problem(f"{key}.serve", "names a service twice")
        if not name:
            continue
        site = Site(
            name=name,
            aliases=tuple(f"{a}.{name}" for a in aliases),
            standby=tuple(f"{s}.{name}" for s in standby),
            serve=tuple(s for s in SERVICES if s in serve),
        )
        for full, field in (
            [(site.name, "name")]
            + [(n, "aliases") for n in site.aliases]
            + [(n, "standby") for n in site.standby]
        ):
            if full in seen:
                r.problem(f"{key}.{field}", f"{full!r} is already named by {seen[full]}")
            else:
                seen[full] = f"{key}.{field}"
        sites.append(site)
    return tuple(sites)


def node_services(node: Node, probes: tuple[ProbeSpec, ...]) -> tuple[str, ...]:
    """What a node's own FQDN is served over: https always (the health file, as the
    original), gemini when a gemini probe applies to the node."""
    gemini = any(p.kind == "gemini" and node.runs(p.name) for p in probes)
    return ("https", "gemini") if gemini else ("https",)


def site_names(
    sites: tuple[Site, ...], nodes: tuple[Node, ...], probes: tuple[ProbeSpec, ...] = ()
) -> tuple[SiteName, ...]:
    """Every name the nodes serve, with its kind: each site's name, aliases and standby
    names in config order, then each node's own FQDN."""
    out: list[SiteName] = []
    for site in sites:
        out.append(SiteName(site.name, "site", site.serve, site=site.name))
        out.extend(SiteName(n, "alias", site.serve, site=site.name) for n in site.aliases)
        out.extend(SiteName(n, "standby", site.serve, site=site.name) for n in site.standby)
    out.extend(
        SiteName(n.fqdn, "node", node_services(n, probes), node=n.name) for n in nodes if n.fqdn
    )
    return tuple(out)
