"""The kissha configuration: TOML in, a validated frozen model out, every problem named by key."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# [health] and the operational tables have their own modules; what callers use of them
# (Config's parts, normal_fingerprint) is re-exported, so kissha.config stays the API.
# [monitor] and [[sites]] are imported only for configs that have them (a failover run
# reads neither): see __getattr__ below.
from kissha.config.health import HealthConfig as HealthConfig
from kissha.config.health import check_node_probes, parse_health
from kissha.config.health import normal_fingerprint as normal_fingerprint
from kissha.config.ops import DaemonConfig as DaemonConfig
from kissha.config.ops import MetricsConfig as MetricsConfig
from kissha.config.ops import PageConfig as PageConfig
from kissha.config.ops import parse_daemon, parse_metrics, parse_page
from kissha.config.tomlcheck import (
    Reader,
    argv,
    at_least,
    fully_qualified,
    ip,
    kind_of,
    one_of,
    path_from,
    port_number,
    positive,
)
from kissha.core.model import Node
from kissha.errors import ConfigError

if TYPE_CHECKING:
    from kissha.certs.settings import CertsConfig
    from kissha.config.deploy import DeployConfig
    from kissha.config.monitor import MonitorConfig as MonitorConfig
    from kissha.config.sites import Site as Site
    from kissha.config.sites import SiteName as SiteName
    from kissha.notify.settings import NotifyConfig


def __getattr__(name: str) -> Any:
    """The re-exported types of [monitor] and [[sites]], imported on first use."""
    if name == "MonitorConfig":
        from kissha.config.monitor import MonitorConfig

        return MonitorConfig
    if name in ("Site", "SiteName"):
        from kissha.config import sites

        return getattr(sites, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_PATH = Path("/etc/kissha.toml")
DNS_SERVERS = ("nsd",)
SERIAL_POLICIES = ("epoch", "date", "increment")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class ZoneRef:
    """A zone kissha manages: its name and its file."""

    name: str
    path: Path

    def read(self) -> str:
        """The file's text; bytes that are not UTF-8 survive a round trip unchanged."""
        from kissha.errors import ZoneError

        try:
            return self.path.read_bytes().decode("utf-8", "surrogateescape")
        except OSError as exc:
            raise ZoneError(f"{self.path}: cannot read: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class DnsConfig:
    """The local authoritative server and how to verify what it serves."""

    server: str
    zones_dir: Path
    zones: tuple[str | ZoneRef, ...]
    control: tuple[str, ...] = ("nsd-control",)
    checkzone: tuple[str, ...] = ("nsd-checkzone",)
    verify_servers: tuple[str, ...] = ("127.0.0.1", "::1")
    verify_port: int = 53
    verify_timeout: float = 5.0
    verify_max_names: int = 1000
    serial: str = "epoch"
    command_timeout: float = 30.0


@dataclass(frozen=True)
class Config:
    """Everything one node's kissha needs."""

    nodes: tuple[Node, ...]
    default_master: str
    rotation: str
    standby_when_down: str
    health: HealthConfig
    dns: DnsConfig
    state_dir: Path
    source: str = ""
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    page: PageConfig = field(default_factory=PageConfig)
    notify: NotifyConfig | None = None  # None: no [notify], nothing imported
    sites: tuple[Site, ...] = ()  # [[sites]]: what the nodes serve besides their own FQDNs
    certs: CertsConfig | None = None  # None: no [certs]
    monitor_table: MonitorConfig | None = None  # [monitor] as given; None: no table
    deploy: DeployConfig | None = None  # [deploy]: read by render and deploy only

    @property
    def monitor(self) -> MonitorConfig:
        """[monitor]; every default when the config has no table."""
        if self.monitor_table is not None:
            return self.monitor_table
        from kissha.config.monitor import MonitorConfig

        return MonitorConfig()

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    def site_names(self) -> tuple[SiteName, ...]:
        """Every name the nodes serve (sites, aliases, standby names, node FQDNs)."""
        from kissha.config.sites import site_names

        return site_names(self.sites, self.nodes, self.health.probes)


def _glob_problem(pattern: str) -> str | None:
    if not pattern:
        return "must not be empty"
    if pattern.startswith("/"):
        return f"a pattern relative to dns.zones_dir, not an absolute path: {pattern!r}"
    return None


def _probe_names(value: list[Any]) -> str | None:
    if not value or not all(isinstance(v, str) for v in value):
        return "must be a non-empty array of probe names"
    if len(set(value)) != len(value):
        return "names a probe twice"
    return None


# A first run on a new node has no config yet: say where one comes from.
MISSING_HINT = (
    "cannot read: no such file; start from examples/kissha.toml in kissha's source (a complete, "
    "commented config), or pass -c FILE / set KISSHA_CONFIG"
)


def load(path: Path | str = DEFAULT_PATH) -> Config:
    """Read and validate a config file; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([MISSING_HINT], str(path)) from None
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"], str(path)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8: {exc}"], str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"invalid TOML: {exc}"], str(path)) from None
    # Absolute: nsd-checkzone runs in zones_dir, so a relative zone path would miss.
    return parse(data, source=str(path), base=path.absolute().parent)


def parse(data: Mapping[str, Any], source: str = "", base: Path | None = None) -> Config:
    """Validate parsed TOML; relative paths are resolved against ``base``."""
    r = Reader()
    base = base or Path.cwd()
    r.unknown(
        data,
        {
            "state_dir",
            "default_master",
            "rotation",
            "standby_when_down",
            "nodes",
            "health",
            "dns",
            "daemon",
            "metrics",
            "page",
            "notify",
            "sites",
            "certs",
            "monitor",
            "deploy",
        },
        "",
    )
    nodes = _nodes(r, data)
    names = tuple(n.name for n in nodes)
    default_master = r.get(data, "default_master", "", str, names[0] if names else "")
    if names and default_master not in names:
        r.problem("default_master", f"no such node: {default_master!r} (nodes: {', '.join(names)})")
    rotation = r.get(data, "rotation", "", str, "weekly", one_of(("weekly", "off")))
    standby_when_down = r.get(
        data, "standby_when_down", "", str, "master", one_of(("master", "keep"))
    )
    state_dir = path_from(base, r.get(data, "state_dir", "", str, "/var/lib/kissha"))
    health = parse_health(r, r.table(data, "health", ""), base, nodes)
    check_node_probes(r, nodes, health)
    dns = _dns(r, r.table(data, "dns", ""), base)
    daemon = parse_daemon(r, r.table(data, "daemon", ""))
    metrics = parse_metrics(r, r.table(data, "metrics", ""), base)
    page = parse_page(r, data, base)
    sites: tuple[Site, ...] = ()
    if "sites" in data:
        from kissha.config.sites import parse_sites

        sites = parse_sites(r, data, nodes)
    monitor = None
    if "monitor" in data:
        from kissha.config.monitor import parse_monitor

        monitor = parse_monitor(r, data, base, nodes)
    notify = None
    if "notify" in data:  # the parser is imported only for configs that have the table
        from kissha.notify.settings import parse_notify

        notify = parse_notify(r, r.table(data, "notify", ""), base, nodes)
    certs = None
    if "certs" in data:
        from kissha.certs.settings import parse_certs

        certs = parse_certs(r, r.table(data, "certs", ""), base, nodes)
    deploy = None
    if "deploy" in data:
        from kissha.config.deploy import parse_deploy

        deploy = parse_deploy(r, r.table(data, "deploy", ""), base, nodes)
    if r.problems:
        raise ConfigError(r.problems, source)
    return Config(
        nodes=nodes,
        default_master=default_master,
        rotation=rotation,
        standby_when_down=standby_when_down,
        health=health,
        dns=dns,
        state_dir=state_dir,
        source=source,
        daemon=daemon,
        metrics=metrics,
        page=page,
        notify=notify,
        sites=sites,
        certs=certs,
        monitor_table=monitor,
        deploy=deploy,
    )


def _nodes(r: Reader, data: Mapping[str, Any]) -> tuple[Node, ...]:
    table = r.table(data, "nodes", "")
    if not table:
        if ("nodes" in data and isinstance(data["nodes"], dict)) or "nodes" not in data:
            r.problem("nodes", "at least two nodes are needed ([nodes.NAME] tables)")
        return ()
    nodes: list[Node] = []
    fqdns: dict[str, str] = {}
    for name, spec in table.items():
        key = f"nodes.{name}"
        if not _NAME_RE.match(name):
            r.problem(key, "a node name uses letters, digits, '-' and '_' only")
        if not isinstance(spec, dict):
            r.problem(key, f"must be a table, not {kind_of(spec)}")
            continue
        r.unknown(spec, {"fqdn", "ipv4", "ipv6", "probes"}, key)
        if "fqdn" not in spec:
            r.problem(f"{key}.fqdn", "missing (the node's own name, e.g. 'fishfinger.example.org')")
        fqdn = r.get(spec, "fqdn", key, str, "", fully_qualified).rstrip(".").lower()
        ipv4 = r.get(spec, "ipv4", key, str, "", ip(4)) or None
        ipv6 = r.get(spec, "ipv6", key, str, "", ip(6)) or None
        if ipv6:
            ipv6 = ipaddress.IPv6Address(ipv6).compressed
        if "ipv4" not in spec and "ipv6" not in spec:
            r.problem(key, "needs an 'ipv4' or an 'ipv6' address (or both)")
        if fqdn and fqdn in fqdns:
            r.problem(f"{key}.fqdn", f"same FQDN as nodes.{fqdns[fqdn]}: {fqdn!r}")
        fqdns.setdefault(fqdn, name)
        probes = r.get(spec, "probes", key, list, None, _probe_names)
        nodes.append(
            Node(
                name=name,
                fqdn=fqdn,
                ipv4=ipv4,
                ipv6=ipv6,
                probes=None if probes is None else tuple(probes),
            )
        )
    if len(nodes) < 2:
        r.problem("nodes", f"at least two nodes are needed, found {len(nodes)}")
    for family in ("ipv4", "ipv6"):
        seen: dict[str, str] = {}
        for node in nodes:
            address = node.address(family)  # type: ignore[arg-type,unused-ignore]
            if address and address in seen:
                r.problem(f"nodes.{node.name}.{family}", f"same address as nodes.{seen[address]}")
            if address:
                seen.setdefault(address, node.name)
    return tuple(nodes)


def _dns(r: Reader, table: Mapping[str, Any], base: Path) -> DnsConfig:
    p = "dns"
    r.unknown(
        table,
        {
            "server",
            "zones_dir",
            "zones",
            "control",
            "checkzone",
            "verify_servers",
            "verify_port",
            "verify_timeout",
            "verify_max_names",
            "serial",
            "command_timeout",
        },
        p,
    )
    server = r.get(table, "server", p, str, "nsd", one_of(DNS_SERVERS))
    if "zones_dir" not in table:
        r.problem(f"{p}.zones_dir", "missing (the directory holding the zone files)")
    zones_dir = path_from(base, r.get(table, "zones_dir", p, str, "."))
    zones: list[str | ZoneRef] = []
    raw = table.get("zones", "*.zone")
    if isinstance(raw, str):
        message = _glob_problem(raw)
        if message:
            r.problem(f"{p}.zones", message)
        else:
            zones.append(raw)
    elif isinstance(raw, list) and raw:
        for i, item in enumerate(raw):
            key = f"{p}.zones[{i}]"
            if isinstance(item, str) and item and not _glob_problem(item):
                zones.append(item)
            elif isinstance(item, str) and item:
                r.problem(key, _glob_problem(item) or "")
            elif (
                isinstance(item, dict)
                and isinstance(item.get("name"), str)
                and isinstance(item.get("file"), str)
            ):
                r.unknown(item, {"name", "file"}, key)
                if not item["file"] or fully_qualified(item["name"].rstrip(".") + ".x") is not None:
                    r.problem(key, "needs a zone name and a file name")
                    continue
                zones.append(
                    ZoneRef(
                        item["name"].rstrip(".").lower() + ".", path_from(zones_dir, item["file"])
                    )
                )
            else:
                r.problem(key, "must be a file name or glob, or a table {name = ..., file = ...}")
    else:
        r.problem(f"{p}.zones", "must be a glob string or a non-empty array")
    verify_servers = r.get(table, "verify_servers", p, list, ["127.0.0.1", "::1"])
    for i, address in enumerate(verify_servers):
        try:
            if not isinstance(address, str):
                raise TypeError
            ipaddress.ip_address(address)
        except (ValueError, TypeError):
            r.problem(f"{p}.verify_servers[{i}]", f"not an IP address: {address!r}")
    if not verify_servers:
        r.problem(f"{p}.verify_servers", "must list at least one address")
    return DnsConfig(
        server=server,
        zones_dir=zones_dir,
        zones=tuple(zones),
        control=tuple(r.get(table, "control", p, list, ["nsd-control"], argv)),
        checkzone=tuple(r.get(table, "checkzone", p, list, ["nsd-checkzone"], argv)),
        verify_servers=tuple(str(a) for a in verify_servers),
        verify_port=r.get(table, "verify_port", p, int, 53, port_number),
        verify_timeout=r.get(table, "verify_timeout", p, float, 5.0, positive),
        verify_max_names=r.get(table, "verify_max_names", p, int, 1000, at_least(1)),
        serial=r.get(table, "serial", p, str, "epoch", one_of(SERIAL_POLICIES)),
        command_timeout=r.get(table, "command_timeout", p, float, 30.0, positive),
    )


def zone_refs(dns: DnsConfig) -> list[ZoneRef]:
    """The zones to manage: globs expanded in the zones directory, in a stable order.

    A zone's name is its file name without the ``.zone`` suffix, as with the original
    script (``foo.zone.zone`` is the zone ``foo.zone``); use the table form otherwise.
    """
    refs: dict[str, ZoneRef] = {}  # by path: str hashes cheaply, thousands a run
    listing: list[tuple[str, bool]] | None = None  # the zones directory's (name, is file)
    for item in dns.zones:
        if isinstance(item, ZoneRef):
            refs.setdefault(str(item.path), item)
            continue
        if "/" in item or "**" in item:
            found = [(p.name, p) for p in sorted(dns.zones_dir.glob(item)) if p.is_file()]
        else:
            # One scandir instead of a glob and a stat per file: the types come with the
            # names (every run does this, for thousands of zones). Path.glob matches a
            # pattern without "/" with fnmatch, case-sensitively, like fnmatchcase.
            import fnmatch

            if listing is None:
                with os.scandir(dns.zones_dir) as entries:
                    listing = sorted((e.name, e.is_file()) for e in entries)
            found = [
                (name, dns.zones_dir / name)
                for name, is_file in listing
                if is_file and name[0] != "." and fnmatch.fnmatchcase(name, item)
            ]
        for filename, path in found:
            if filename.startswith("."):
                continue  # our own temp files and backups are hidden
            if not filename.endswith(".zone"):
                raise ConfigError(
                    [
                        f"dns.zones: {filename}: cannot tell the zone name (no '.zone' suffix); "
                        "list it as {name = ..., file = ...}"
                    ]
                )
            name = filename[: -len(".zone")].lower().rstrip(".") + "."
            refs.setdefault(str(path), ZoneRef(name, path))
    return list(refs.values())
