"""The kissha configuration: TOML in, a validated frozen model out, every problem named by key."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kissha.errors import ConfigError
from kissha.model import Node, ProbeSpec

if TYPE_CHECKING:
    from kissha.notify.settings import NotifyConfig

DEFAULT_PATH = Path("/etc/kissha.toml")
# Each probe type with its default port (None: the port must be given).
PROBE_KINDS: dict[str, int | None] = {
    "https": 443,
    "http": 80,
    "gemini": 1965,
    "tcp": None,
    "dns": 53,
    "smtp": 25,
}
COMMON_PROBE_KEYS = {"name", "type", "port", "required"}
# The keys only some types take, and the types that take them (for error messages).
PROBE_KEY_TYPES = {
    "path": "http, https and gemini",
    "expect": "http, https and gemini",
    "ca_file": "https and gemini",
    "tls": "gemini",
    "fingerprints": "gemini",
    "zone": "dns",
}
PROBE_KEYS = {
    "https": {"path", "expect", "ca_file"},
    "http": {"path", "expect"},
    "gemini": {"path", "expect", "ca_file", "tls", "fingerprints"},
    "tcp": set(),
    "dns": {"zone"},
    "smtp": set(),
}
GEMINI_TLS = ("tofu", "ca", "pinned")
DNS_SERVERS = ("nsd",)
SERIAL_POLICIES = ("epoch", "date", "increment")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_HEX64_RE = re.compile(r"^[0-9A-F]{64}$")

T = TypeVar("T")


@dataclass(frozen=True)
class HealthConfig:
    """How nodes are probed and how results are debounced."""

    probes: tuple[ProbeSpec, ...]
    timeout: float = 2.0
    retries: int = 1
    failures_before_demotion: int = 3
    successes_before_promotion: int = 5
    max_body: int = 65536
    cert_warn_days: int = 14  # a passing https/gemini probe warns this close to expiry


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
class DaemonConfig:
    """How ``kissha daemon`` paces its rounds."""

    interval: float = 60.0  # seconds between round starts; sub-second allowed


@dataclass(frozen=True)
class MetricsConfig:
    """Where Prometheus metrics go: a textfile for node_exporter, an HTTP port (daemon)."""

    textfile: Path | None = None
    listen: tuple[str, int] | None = None  # (host, port)


@dataclass(frozen=True)
class PageConfig:
    """The status page: a static index.html and status.json written after runs."""

    dir: Path | None = None  # None: no page, and the page code is never imported
    days: int = 3  # the timeline's length, and how long the history is kept
    title: str = ""  # "" : "kissha: <nodes>"
    every: float = 60.0  # seconds between page writes (a run with an event writes at once)
    nameservers: bool = True  # ask every nameserver what it answers, as kissha status does
    port: int = 53  # the nameservers' port


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

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)


class _Reader:
    """Reads typed values out of nested tables, collecting every problem with its key path."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}" if key else message)

    def table(self, data: Mapping[str, Any], key: str, prefix: str) -> dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            self.problem(_join(prefix, key), f"must be a table, not {_kind(value)}")
            return {}
        return value

    def get(
        self,
        data: Mapping[str, Any],
        key: str,
        prefix: str,
        kind: type[T] | tuple[type, ...],
        default: T,
        check: Callable[[Any], str | None] | None = None,
    ) -> T:
        if key not in data:
            return default
        value = data[key]
        # bool is an int in Python; a TOML boolean is never a number here.
        wrong = isinstance(value, bool) and kind is not bool
        if wrong or not isinstance(value, kind):
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            else:
                self.problem(_join(prefix, key), f"must be {_kind_name(kind)}, not {_kind(value)}")
                return default
        if check is not None:
            message = check(value)
            if message:
                self.problem(_join(prefix, key), message)
                return default
        return value  # type: ignore[no-any-return]

    def unknown(self, data: Mapping[str, Any], known: set[str], prefix: str) -> None:
        for key in data:
            if key not in known:
                hint = ""
                from difflib import get_close_matches  # only on the error path

                close = get_close_matches(key, sorted(known), n=1)
                if close:
                    hint = f" (did you mean '{close[0]}'?)"
                self.problem(_join(prefix, key), f"unknown key{hint}")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _kind(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    if isinstance(kind, tuple):
        return " or ".join(_kind_name(k) for k in kind)
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "a table",
    }.get(kind, kind.__name__)


def _positive(value: float) -> str | None:
    return None if value > 0 else f"must be > 0, not {value}"


def _at_least(minimum: int) -> Callable[[int], str | None]:
    return lambda v: None if v >= minimum else f"must be >= {minimum}, not {v}"


def _port(value: int) -> str | None:
    return None if 0 < value < 65536 else f"not a port number: {value}"


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str | None]:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}, not {v!r}"


def _ip(version: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            return f"not an IPv{version} address: {value!r}"
        if address.version != version:
            return f"not an IPv{version} address: {value!r}"
        if getattr(address, "scope_id", None):
            return f"a scoped address cannot go in a DNS record: {value!r}"
        return None

    return check


def _fqdn(value: str) -> str | None:
    labels = value.rstrip(".").split(".")
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
        return f"not a fully qualified domain name: {value!r}"
    return None


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


def _argv(value: list[Any]) -> str | None:
    if not value or not all(isinstance(v, str) and v for v in value):
        return "must be a non-empty array of strings (a command and its arguments)"
    return None


def load(path: Path | str = DEFAULT_PATH) -> Config:
    """Read and validate a config file; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"], str(path)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8: {exc}"], str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"invalid TOML: {exc}"], str(path)) from None
    return parse(data, source=str(path), base=path.parent)


def parse(data: Mapping[str, Any], source: str = "", base: Path | None = None) -> Config:
    """Validate parsed TOML; relative paths are resolved against ``base``."""
    r = _Reader()
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
        },
        "",
    )
    nodes = _nodes(r, data)
    names = tuple(n.name for n in nodes)
    default_master = r.get(data, "default_master", "", str, names[0] if names else "")
    if names and default_master not in names:
        r.problem("default_master", f"no such node: {default_master!r} (nodes: {', '.join(names)})")
    rotation = r.get(data, "rotation", "", str, "weekly", _one_of(("weekly", "off")))
    standby_when_down = r.get(
        data, "standby_when_down", "", str, "master", _one_of(("master", "keep"))
    )
    state_dir = _path(base, r.get(data, "state_dir", "", str, "/var/lib/kissha"))
    health = _health(r, r.table(data, "health", ""), base, nodes)
    _check_node_probes(r, nodes, health)
    dns = _dns(r, r.table(data, "dns", ""), base)
    daemon = _daemon(r, r.table(data, "daemon", ""))
    metrics = _metrics(r, r.table(data, "metrics", ""), base)
    page = _page(r, data, base)
    notify = None
    if "notify" in data:  # the parser is imported only for configs that have the table
        from kissha.notify.settings import parse_notify

        notify = parse_notify(r, r.table(data, "notify", ""), base, nodes)
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
    )


def _path(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def _nodes(r: _Reader, data: Mapping[str, Any]) -> tuple[Node, ...]:
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
            r.problem(key, f"must be a table, not {_kind(spec)}")
            continue
        r.unknown(spec, {"fqdn", "ipv4", "ipv6", "probes"}, key)
        if "fqdn" not in spec:
            r.problem(f"{key}.fqdn", "missing (the node's own name, e.g. 'fishfinger.example.org')")
        fqdn = r.get(spec, "fqdn", key, str, "", _fqdn).rstrip(".").lower()
        ipv4 = r.get(spec, "ipv4", key, str, "", _ip(4)) or None
        ipv6 = r.get(spec, "ipv6", key, str, "", _ip(6)) or None
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


def _expect_ok(text: str) -> bool:
    """Only the plain field {fqdn}: no attributes, indexes, conversions or formats."""
    import string

    try:
        parsed = [(f, c, s) for _, f, s, c in string.Formatter().parse(text) if f is not None]
    except ValueError:
        return False
    return all(f == "fqdn" and not c and not s for f, c, s in parsed)


def _health(
    r: _Reader, table: Mapping[str, Any], base: Path, nodes: tuple[Node, ...]
) -> HealthConfig:
    p = "health"
    r.unknown(
        table,
        {
            "timeout",
            "retries",
            "failures_before_demotion",
            "successes_before_promotion",
            "max_body",
            "cert_warn_days",
            "probes",
        },
        p,
    )
    timeout = r.get(table, "timeout", p, float, 2.0, _positive)
    retries = r.get(table, "retries", p, int, 1, _at_least(0))
    fails = r.get(table, "failures_before_demotion", p, int, 3, _at_least(1))
    oks = r.get(table, "successes_before_promotion", p, int, 5, _at_least(1))
    max_body = r.get(table, "max_body", p, int, 65536, _at_least(64))
    cert_warn_days = r.get(table, "cert_warn_days", p, int, 14, _at_least(0))
    raw = table.get("probes", [{"type": "https"}])
    probes: list[ProbeSpec] = []
    if not isinstance(raw, list) or not raw:
        r.problem(f"{p}.probes", "must be a non-empty array of tables ([[health.probes]])")
        raw = []
    names: set[str] = set()
    for i, spec in enumerate(raw):
        key = f"{p}.probes[{i}]"
        if not isinstance(spec, dict):
            r.problem(key, f"must be a table, not {_kind(spec)}")
            continue
        probe = _probe(r, spec, key, base, nodes)
        if probe.name in names:
            r.problem(f"{key}.name", f"two probes are named {probe.name!r}")
        names.add(probe.name)
        probes.append(probe)
    if probes and not any(pr.required for pr in probes):
        r.problem(f"{p}.probes", "at least one probe must be required")
    return HealthConfig(
        probes=tuple(probes),
        timeout=timeout,
        retries=retries,
        failures_before_demotion=fails,
        successes_before_promotion=oks,
        max_body=max_body,
        cert_warn_days=cert_warn_days,
    )


def _probe(
    r: _Reader, spec: Mapping[str, Any], key: str, base: Path, nodes: tuple[Node, ...]
) -> ProbeSpec:
    """One [[health.probes]] table: the keys its type takes, with that type's defaults."""
    kind = r.get(spec, "type", key, str, "https", _one_of(tuple(PROBE_KINDS)))
    own = PROBE_KEYS[kind] | COMMON_PROBE_KEYS
    for k in spec:
        if k in PROBE_KEY_TYPES and k not in own:
            r.problem(f"{key}.{k}", f"only for {PROBE_KEY_TYPES[k]} probes")
    spec = {k: v for k, v in spec.items() if k not in PROBE_KEY_TYPES or k in own}
    r.unknown(spec, own, key)  # "did you mean" suggests only keys this type takes
    spec = {k: v for k, v in spec.items() if k in own}
    name = r.get(spec, "name", key, str, kind)
    default_port = PROBE_KINDS[kind]
    if default_port is None and "port" not in spec:
        r.problem(f"{key}.port", f"missing (a {kind} probe has no default port)")
    port = r.get(spec, "port", key, int, default_port or 0, _port)
    path = expect = ""  # tcp, dns and smtp send no request and read no body
    if "path" in own:
        path = r.get(spec, "path", key, str, "/" if kind == "gemini" else "/index.txt")
        if not path.startswith("/"):
            r.problem(f"{key}.path", f"must start with '/': {path!r}")
        elif not path.isprintable() or " " in path or not path.isascii():
            # it goes into the request line as it is: no spaces, controls or non-ASCII
            r.problem(f"{key}.path", f"must be a URL path without spaces or controls: {path!r}")
        default = "" if kind == "gemini" else "Welcome to {fqdn}"  # "": no body check
        expect = r.get(spec, "expect", key, str, default)
        if not _expect_ok(expect):
            r.problem(f"{key}.expect", "only {fqdn} may appear in braces ('{{' for a brace)")
    tls = r.get(spec, "tls", key, str, "tofu" if kind == "gemini" else "ca", _one_of(GEMINI_TLS))
    if kind == "gemini" and tls != "ca" and "ca_file" in spec:
        r.problem(f"{key}.ca_file", f'only with tls = "ca" (this probe has tls = {tls!r})')
    ca_file = r.get(spec, "ca_file", key, str, "") or None
    if ca_file is not None:
        ca_file = str(_path(base, ca_file))
    fingerprints: dict[str, str] = {}
    if tls == "pinned":
        if "fingerprints" not in spec:
            r.problem(f"{key}.fingerprints", 'missing (a table: node name = "sha256:HEX")')
        else:
            fingerprints = _fingerprints(
                r, r.table(spec, "fingerprints", key), f"{key}.fingerprints", nodes, name
            )
    elif "fingerprints" in spec:
        r.problem(f"{key}.fingerprints", f'only with tls = "pinned" (this probe has tls = {tls!r})')
    zone = None
    if kind == "dns":
        if "zone" not in spec:
            r.problem(f"{key}.zone", "missing (the zone whose SOA is asked, e.g. 'example.org')")
        zone = r.get(spec, "zone", key, str, "", _zone).rstrip(".").lower() or None
    return ProbeSpec(
        name=name,
        kind=kind,
        port=port,
        path=path,
        expect=expect,
        ca_file=ca_file,
        required=r.get(spec, "required", key, bool, True),
        tls=tls,
        fingerprints=tuple(fingerprints.items()),
        zone=zone,
    )


def _fingerprints(
    r: _Reader, table: Mapping[str, Any], key: str, nodes: tuple[Node, ...], probe: str
) -> dict[str, str]:
    """node name -> "sha256:HEX" (upper case, no colons) for every node running ``probe``."""
    out: dict[str, str] = {}
    known = [n.name for n in nodes]
    for name, value in table.items():
        if name not in known:
            r.problem(f"{key}.{name}", f"no such node (nodes: {', '.join(known)})")
            continue
        fingerprint = normal_fingerprint(value) if isinstance(value, str) else None
        if fingerprint is None:
            r.problem(f"{key}.{name}", f"not 'sha256:' and 64 hex digits: {value!r}")
            continue
        out[name] = fingerprint
    for node in nodes:
        if node.runs(probe) and node.name not in table:
            r.problem(key, f"no fingerprint for node {node.name!r}")
    return out


def normal_fingerprint(text: str) -> str | None:
    """``sha256:ab:cd...`` in any case, with or without colons -> ``sha256:ABCD...``."""
    algorithm, sep, digits = text.strip().partition(":")
    digits = digits.replace(":", "").upper()
    if algorithm.lower() != "sha256" or not sep or not _HEX64_RE.match(digits):
        return None
    return f"sha256:{digits}"


def _zone(value: str) -> str | None:
    labels = value.rstrip(".").split(".")
    if not value.rstrip(".") or not all(_LABEL_RE.match(label) for label in labels):
        return f"not a zone name: {value!r}"
    return None


def _check_node_probes(r: _Reader, nodes: tuple[Node, ...], health: HealthConfig) -> None:
    """Each node's probe list names real probes, at least one of them required."""
    names = [pr.name for pr in health.probes]
    for node in nodes:
        for i, name in enumerate(node.probes or ()):
            if name not in names:
                r.problem(
                    f"nodes.{node.name}.probes[{i}]",
                    f"no such probe: {name!r} (probes: {', '.join(names)})",
                )
        mine = [pr for pr in health.probes if node.runs(pr.name)]
        if node.probes and mine and not any(pr.required for pr in mine):
            r.problem(
                f"nodes.{node.name}.probes",
                "none of its probes is required (a node needs at least one required probe)",
            )


def _dns(r: _Reader, table: Mapping[str, Any], base: Path) -> DnsConfig:
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
    server = r.get(table, "server", p, str, "nsd", _one_of(DNS_SERVERS))
    if "zones_dir" not in table:
        r.problem(f"{p}.zones_dir", "missing (the directory holding the zone files)")
    zones_dir = _path(base, r.get(table, "zones_dir", p, str, "."))
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
                if not item["file"] or _fqdn(item["name"].rstrip(".") + ".x") is not None:
                    r.problem(key, "needs a zone name and a file name")
                    continue
                zones.append(
                    ZoneRef(item["name"].rstrip(".").lower() + ".", _path(zones_dir, item["file"]))
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
        control=tuple(r.get(table, "control", p, list, ["nsd-control"], _argv)),
        checkzone=tuple(r.get(table, "checkzone", p, list, ["nsd-checkzone"], _argv)),
        verify_servers=tuple(str(a) for a in verify_servers),
        verify_port=r.get(table, "verify_port", p, int, 53, _port),
        verify_timeout=r.get(table, "verify_timeout", p, float, 5.0, _positive),
        verify_max_names=r.get(table, "verify_max_names", p, int, 1000, _at_least(1)),
        serial=r.get(table, "serial", p, str, "epoch", _one_of(SERIAL_POLICIES)),
        command_timeout=r.get(table, "command_timeout", p, float, 30.0, _positive),
    )


def _daemon(r: _Reader, table: Mapping[str, Any]) -> DaemonConfig:
    r.unknown(table, {"interval"}, "daemon")
    return DaemonConfig(interval=r.get(table, "interval", "daemon", float, 60.0, _positive))


def _metrics(r: _Reader, table: Mapping[str, Any], base: Path) -> MetricsConfig:
    p = "metrics"
    r.unknown(table, {"textfile", "listen"}, p)
    textfile = r.get(table, "textfile", p, str, "", _nonempty)
    listen = r.get(table, "listen", p, str, "", _nonempty)
    address = None
    if listen:
        address = parse_listen(listen)
        if address is None:
            r.problem(
                f"{p}.listen", f"not HOST:PORT (e.g. '127.0.0.1:9469' or '[::1]:9469'): {listen!r}"
            )
    return MetricsConfig(textfile=_path(base, textfile) if textfile else None, listen=address)


MAX_PAGE_DAYS = 31


def _page(r: _Reader, data: Mapping[str, Any], base: Path) -> PageConfig:
    p = "page"
    if "page" not in data:
        return PageConfig()
    table = r.table(data, "page", "")
    r.unknown(table, {"dir", "days", "title", "every", "nameservers", "port"}, p)
    if isinstance(data["page"], dict) and "dir" not in table:
        r.problem(f"{p}.dir", "missing (the directory for index.html and status.json)")
    directory = r.get(table, "dir", p, str, "", _nonempty)
    days = r.get(
        table,
        "days",
        p,
        int,
        3,
        lambda v: None if 1 <= v <= MAX_PAGE_DAYS else f"must be 1 to {MAX_PAGE_DAYS}, not {v}",
    )
    return PageConfig(
        dir=_path(base, directory) if directory else None,
        days=days,
        title=r.get(table, "title", p, str, ""),
        every=r.get(table, "every", p, float, 60.0, _not_negative),
        nameservers=r.get(table, "nameservers", p, bool, True),
        port=r.get(table, "port", p, int, 53, _port),
    )


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else f"must be >= 0, not {value}"


def _nonempty(value: str) -> str | None:
    return None if value else "must not be empty"


def parse_listen(text: str) -> tuple[str, int] | None:
    """'127.0.0.1:9469' or '[::1]:9469' -> (host, port); None if it is neither."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        return None  # an IPv6 address needs brackets
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if _fqdn(host + ".x") is not None:
            return None
    return host, int(port)


def zone_refs(dns: DnsConfig) -> list[ZoneRef]:
    """The zones to manage: globs expanded in the zones directory, in a stable order.

    A zone's name is its file name without the ``.zone`` suffix, as with the original
    script (``foo.zone.zone`` is the zone ``foo.zone``); use the table form otherwise.
    """
    refs: dict[Path, ZoneRef] = {}
    for item in dns.zones:
        if isinstance(item, ZoneRef):
            refs.setdefault(item.path, item)
            continue
        for path in sorted(dns.zones_dir.glob(item)):
            if path.name.startswith(".") or not path.is_file():
                continue  # our own temp files and backups are hidden
            if not path.name.endswith(".zone"):
                raise ConfigError(
                    [
                        f"dns.zones: {path.name}: cannot tell the zone name (no '.zone' suffix); "
                        "list it as {name = ..., file = ...}"
                    ]
                )
            name = path.name[: -len(".zone")].lower().rstrip(".") + "."
            refs.setdefault(path, ZoneRef(name, path))
    return list(refs.values())
