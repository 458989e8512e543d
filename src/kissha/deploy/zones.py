"""Zone files for one node: the operator's source zones with the ``; Enable failover``
marks set to the roles that node's kissha serves now, and a fresh serial when they differ
from what the node has.

Why render the marks here rather than install the source and run the node's
``kissha failover`` over SSH: a failover run probes the other nodes and may itself change
the roles (a deploy would then cause the failover it must never cause), it needs the
node's kissha installed and working before the first deploy, and it cannot be shown in
``--dry-run``. Rendering from the node's own state.json (the roles its kissha applied at
its last run) with core/zonefile's plan_zone is deterministic, shows the exact diff, and
leaves the node's next failover run nothing to rewrite. The roles are read again just
before installing: if a failover ran in between, the zones are not installed (exit 5).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from kissha.config import Config
from kissha.core import zonefile
from kissha.core.model import Node
from kissha.errors import ConfigError, ZoneError
from kissha.render.engine import Rendered
from kissha.render.files import FileSpec

NSD_GROUP = {"openbsd": "_nsd", "debian": "nsd"}


@dataclass(frozen=True)
class Source:
    """One zone of the source directory: its name, text and path on the node."""

    name: str
    path: Path
    text: str
    node_path: str


def sources(cfg: Config) -> list[Source]:
    """The source zones (``[deploy] zones_source``, the ``dns.zones`` patterns), each
    scanned once here so that a broken one stops deploy before any node is contacted."""
    deploy = cfg.deploy
    if deploy is None or deploy.zones_source is None:
        return []
    out: dict[str, Source] = {}
    for item in cfg.dns.zones:
        if not isinstance(item, str):
            continue  # a {name, file} entry names a file on the node, not in the source
        for path in sorted(deploy.zones_source.glob(item)):
            if path.name.startswith(".") or not path.is_file() or not path.name.endswith(".zone"):
                continue
            name = path.name[: -len(".zone")].lower().rstrip(".")
            text = path.read_text(encoding="utf-8")
            try:
                s = zonefile.scan(text, name, str(path))
            except ZoneError as exc:
                raise ConfigError([str(exc)]) from None
            if s.serial is None or zonefile._serial_value(s.serial) is None:
                raise ConfigError([f"{path}: no SOA record with a 32-bit serial"])
            node_path = str(PurePosixPath(cfg.dns.zones_dir) / path.name)
            out.setdefault(node_path, Source(name, path, text, node_path))
    return list(out.values())


def state_path(cfg: Config) -> str:
    return str(PurePosixPath(str(cfg.state_dir)) / "state.json")


def roles_from_state(text: str | None, cfg: Config) -> dict[str, Node] | None:
    """role -> node from the node's state.json; None when it has none (or it is damaged:
    the node's kissha sets a damaged one aside and starts again)."""
    if text is None:
        return None
    try:
        roles = json.loads(text)["roles"]
        master, standby = roles["master"], roles["standby"]
    except (ValueError, KeyError, TypeError):
        return None
    names = set(cfg.node_names)
    if master not in names or standby not in names:
        return None
    return {"master": cfg.node(master), "standby": cfg.node(standby)}


def roles_from_zone(text: str | None, zone: str, cfg: Config) -> dict[str, Node] | None:
    """role -> node from the marks of the zone the node serves now; None when they do
    not name one node per role."""
    if text is None:
        return None
    try:
        s = zonefile.scan(text, zone)
    except ZoneError:
        return None
    found: dict[str, set[str]] = {}
    for rec in s.marked:
        nodes = {
            n.name
            for n in cfg.nodes
            if (a := n.address(rec.family)) and zonefile._same_address(a, rec.address.text)
        }
        found.setdefault(rec.role, set()).update(nodes or {"?"})
    if not found or any(len(v) != 1 or "?" in v for v in found.values()):
        return None
    roles = {role: cfg.node(next(iter(v))) for role, v in found.items()}
    if len(roles) == 1:  # a zone with master marks only: the standby is the other node
        role, node = next(iter(roles.items()))
        other = next((n for n in cfg.nodes if n.name != node.name), node)
        roles["standby" if role == "master" else "master"] = other
    return roles


def with_serial(text: str, zone: str, serial: int) -> str:
    s = zonefile.scan(text, zone)
    assert s.serial is not None  # sources() checked it
    t = s.serial
    lines = list(s.lines)
    lines[t.line] = lines[t.line][: t.start] + str(serial) + lines[t.line][t.end :]
    return "\n".join(lines)


def zone_text(
    src: Source,
    installed: str | None,
    targets: Mapping[str, Node] | None,
    policy: str,
    now: float,
) -> str:
    """The zone as it goes to the node: marks at ``targets`` (None: as in the source, for a
    node that serves nothing yet), and the installed text itself when nothing else
    differs, else a serial newer than both the source's and the installed one's."""
    text = src.text
    if targets is not None:
        p = zonefile.plan_zone(src.name, src.path, text, targets, policy, now)
        text = p.new_text if p.new_text is not None else text
    token = zonefile.scan(text, src.name).serial
    source_serial = None if token is None else zonefile._serial_value(token)
    assert source_serial is not None  # sources() checked it
    if installed is None:
        return text
    try:
        token = zonefile.scan(installed, src.name).serial
    except ZoneError:
        token = None  # a zone nsd would refuse: replaced with the source's serial
    old = zonefile._serial_value(token) if token is not None else None
    if old is None:
        return text
    if with_serial(text, src.name, old) == installed:
        return installed  # nothing but (maybe) the serial differs: no change
    base = source_serial if zonefile.serial_gt(source_serial, old) else old
    return with_serial(text, src.name, zonefile.next_serial(base, policy, now))


def roles_for(
    cfg: Config, srcs: list[Source], current: Mapping[str, str | None]
) -> dict[str, Node] | None:
    """What the node serves now: its state.json's roles, else its installed zones' marks."""
    roles = roles_from_state(current.get(state_path(cfg)), cfg)
    if roles is not None:
        return roles
    for src in srcs:
        roles = roles_from_zone(current.get(src.node_path), src.name, cfg)
        if roles is not None:
            return roles
    return None


def rendered(
    cfg: Config,
    node: str,
    flavour: str,
    srcs: list[Source],
    current: Mapping[str, str | None],
    now: float,
) -> list[Rendered]:
    """The node's zone files as Rendered files (checked by nsd-checkzone, reload nsd)."""
    targets = roles_for(cfg, srcs, current)
    out: list[Rendered] = []
    for src in srcs:
        text = zone_text(src, current.get(src.node_path), targets, cfg.dns.serial, now)
        spec = FileSpec(
            "zone",
            src.node_path,
            0o644,
            "root",
            NSD_GROUP[flavour],
            ("nsd",),
            ("nsd-checkzone", src.name, "{path}"),
        )
        out.append(Rendered(node, src.node_path, text, spec))
    return out
