"""kissha status, the pure core: one nameserver's answers mapped to nodes (``view``),
and everything observed turned into a verdict (``judge``). No I/O: status.py asks,
statustext.py renders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kissha.core.model import Event, Family, Node, ProbeResult, Roles
from kissha.core.policy import round_ok

MAX_NAMES = 40  # A/AAAA names asked per nameserver, from the first zones on
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
LEVELS = ("OK", "WARNING", "CRITICAL", "UNKNOWN")


@dataclass(frozen=True)
class Question:
    """One name to ask every nameserver; ``role`` is "master", "standby" or "soa"."""

    zone: str
    name: str
    rrtype: str
    role: str


# What one nameserver said to one question: the values, or an error in words.
Reply = tuple[str, ...] | str


@dataclass(frozen=True)
class NsView:
    """One nameserver over one family: which nodes its marked names point at."""

    node: str
    family: Family
    address: str
    error: str | None = None  # set when nothing came back: the nameserver is unreachable
    master: tuple[str, ...] = ()  # nodes the master names point at (more than one: mixed)
    standby: tuple[str, ...] = ()
    serials: Mapping[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # per-name errors and addresses of no node

    @property
    def label(self) -> str:
        return f"{self.node}/{self.family}"


@dataclass(frozen=True)
class Observation:
    """Everything ``judge`` looks at; ``last_run`` is None when no run is recorded."""

    now: float
    views: tuple[NsView, ...]
    probes: tuple[ProbeResult, ...]
    nodes: tuple[str, ...]
    last_run: float | None
    stale_after: float
    roles: Roles | None = None
    health: Mapping[str, bool] = field(default_factory=dict)  # from the state: node -> up
    events: tuple[Event, ...] = ()
    state_warning: str | None = None
    zones_skipped: int = 0
    asked: bool = True  # False: the nameservers were not asked (a page without them)
    checks: tuple[Any, ...] | None = None  # kissha monitor's last checks (monitor.run.Shown)


@dataclass(frozen=True)
class Verdict:
    level: int
    summary: str
    problems: tuple[str, ...]  # what raised the level, most serious first
    notes: tuple[str, ...]  # informational: serial differences, standby disagreement
    perfdata: tuple[str, ...]

    @property
    def name(self) -> str:
        return LEVELS[self.level]


@dataclass(frozen=True)
class Report:
    observation: Observation
    verdict: Verdict


def view(
    node: Node, family: Family, replies: Mapping[Question, Reply] | str, nodes: Sequence[Node]
) -> NsView:
    """Map one nameserver's replies to the nodes whose addresses they name."""
    address = node.address(family) or ""
    if isinstance(replies, str):
        return NsView(node.name, family, address, error=replies)
    owner_of = {a: n.name for n in nodes for f in n.families if (a := n.address(f)) is not None}
    pointed: dict[str, set[str]] = {"master": set(), "standby": set()}
    serials: dict[str, str] = {}
    problems: list[str] = []
    for q, reply in replies.items():
        if isinstance(reply, str):
            problems.append(f"{q.name} {q.rrtype}: {reply}")
            continue
        if q.role == "soa":
            if reply:
                serials[q.zone] = reply[0]
            continue
        if not reply:
            problems.append(f"{q.name} {q.rrtype}: no records")
        for value in reply:
            owner = owner_of.get(_normal(value))
            if owner is None:
                problems.append(f"{q.name} {q.rrtype}: {value} is no node's address")
            else:
                pointed[q.role].add(owner)
    order = [n.name for n in nodes]
    return NsView(
        node.name,
        family,
        address,
        master=tuple(n for n in order if n in pointed["master"]),
        standby=tuple(n for n in order if n in pointed["standby"]),
        serials=serials,
        problems=tuple(problems),
    )


def _normal(address: str) -> str:
    import ipaddress

    try:
        return ipaddress.ip_address(address).compressed
    except ValueError:
        return address


def normal_nodes(nodes: Sequence[Node]) -> list[Node]:
    """Nodes with their addresses in compressed form, to compare with answers."""
    return [
        Node(n.name, n.fqdn, n.ipv4, _normal(n.ipv6) if n.ipv6 else None, n.probes) for n in nodes
    ]


def ago(seconds: float) -> str:
    s = int(max(0.0, seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def judge(obs: Observation) -> Verdict:
    """OK, WARNING or CRITICAL, with the reasons; see docs/how-it-works.md."""
    critical: list[str] = []
    warnings: list[str] = []
    notes: list[str] = []
    up = [v for v in obs.views if v.error is None]
    for v in obs.views:
        if v.error is not None:
            warnings.append(f"{v.label} nameserver unreachable: {v.error}")
    answering = [v for v in up if v.master]
    masters = {m for v in answering for m in v.master}
    agree = len(masters) == 1
    if not obs.asked:
        pass
    elif not up:
        critical.append(f"no nameserver reachable ({len(obs.views)} tried)")
    elif not answering:
        critical.append("no nameserver names a master")
    elif not agree:
        critical.append("SPLIT BRAIN: " + _split_detail(answering))
    else:
        for v in up:
            if not v.master:
                warnings.append(f"{v.label} names no master")
    for v in up:
        warnings.extend(f"{v.label}: {problem}" for problem in v.problems)
    standbys = {v.standby for v in up if v.standby}
    if len(standbys) > 1:
        notes.append(
            "standby names differ: "
            + ", ".join(f"{v.label} -> {'+'.join(v.standby)}" for v in up if v.standby)
        )
    zones = sorted({z for v in up for z in v.serials})
    for z in zones:
        seen = {v.serials.get(z) for v in up if z in v.serials}
        if len(seen) > 1:
            notes.append(
                f"serials of {z} differ (each node has its own zones): "
                + ", ".join(f"{v.label} {v.serials[z]}" for v in up if z in v.serials)
            )
    node_ok = _node_ok(obs.probes, obs.nodes)
    failed = [p for p in obs.probes if not p.ok]
    if obs.probes and not any(node_ok.values()):
        critical.append("every node fails its probes from here")
    for p in failed:
        kind = "" if p.required else " (informational)"
        warnings.append(f"probe {p.probe} of {p.node}/{p.family} failed{kind}: {p.detail}")
    for p in obs.probes:
        if p.warning:
            warnings.append(f"probe {p.probe} of {p.node}/{p.family}: {p.warning}")
    for name, is_up in obs.health.items():
        if not is_up:
            warnings.append(f"the state says {name} is down")
    age = None if obs.last_run is None else obs.now - obs.last_run
    if age is None:
        warnings.append("stale state: no failover run recorded")
    elif age > obs.stale_after:
        warnings.append(f"stale state: last run {ago(age)} ago (limit {ago(obs.stale_after)})")
    if obs.state_warning:
        warnings.append(obs.state_warning)
    if obs.zones_skipped:
        notes.append(f"{obs.zones_skipped} zone(s) not asked (at most {MAX_NAMES} names)")
    level = CRITICAL if critical else WARNING if warnings else OK
    if critical:
        summary = critical[0]
    elif not obs.asked:
        summary = "nameservers not asked"
        if obs.roles is not None:
            summary = f"master {obs.roles.master}, standby {obs.roles.standby} ({summary})"
    elif agree:
        summary = f"all {len(answering)} answering nameservers point at {next(iter(masters))}"
        if len(answering) == len(obs.views):
            summary = f"all {len(answering)} nameservers point at {next(iter(masters))}"
    else:
        summary = "no answer"
    perf = (
        f"ns_agree={1 if agree and up else 0};;;0;1",
        f"nameservers_up={len(up)};;;0;{len(obs.views)}",
        f"probes_failed={len(failed)};;;0;{len(obs.probes)}",
        "last_run_age=U"
        if age is None
        else f"last_run_age={int(max(0, age))}s;{obs.stale_after:g};;0",
    )
    return Verdict(level, summary, tuple(critical + warnings), tuple(notes), perf)


def _split_detail(views: Sequence[NsView]) -> str:
    by_node: dict[str, set[str]] = {}
    for v in views:
        by_node.setdefault(v.node, set()).update(v.master)
    parts = []
    for node, masters in by_node.items():
        families = [v for v in views if v.node == node]
        mixed = any(len(v.master) > 1 for v in families) or len({v.master for v in families}) > 1
        where = " + ".join(sorted(masters))
        parts.append(
            f"{node}'s nameserver points at {where}"
            + (" (mixed: differs by name)" if mixed else "")
        )
    return ", ".join(parts)


def _node_ok(probes: Sequence[ProbeResult], nodes: Sequence[str]) -> dict[str, bool]:
    """Each probed node's round, judged by policy itself."""
    return {n: round_ok(probes, n) for n in nodes if any(p.node == n for p in probes)}
