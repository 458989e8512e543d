"""kissha status: what every nameserver answers, judged for people, JSON and Nagios.

The I/O edges (``ask`` queries one nameserver, ``collect`` gathers everything) feed a
pure core: ``view`` maps one nameserver's answers to nodes, ``judge`` turns the
observations into a verdict, and ``text``/``as_json``/``nagios_line`` render it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kissha.config import Config, zone_refs
from kissha.core.model import Family, Node, ProbeResult, Roles, iso
from kissha.core.zonefile import scan
from kissha.dns.client import ask_each
from kissha.errors import ZoneError

SCHEMA = "kissha.status/1"
MAX_NAMES = 40  # A/AAAA names asked per nameserver, from the first zones on
DEFAULT_STALE_AFTER = 600.0
LAST_EVENTS = 5
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
    events: tuple[Mapping[str, Any], ...] = ()
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


# -- which names to ask ----------------------------------------------------------------


def questions(config: Config) -> tuple[list[Question], int]:
    """Per zone its SOA and its first master and standby A and AAAA names, from the
    first zones on, for at most MAX_NAMES names in all; also how many zones were left
    out for that bound. Zones past the bound are counted, never read: a status or a
    page write costs the same with 6 zones or 5,000."""
    out: list[Question] = []
    names = 0
    refs = zone_refs(config.dns)
    for asked, ref in enumerate(refs):
        try:
            marked = scan(ref.read(), ref.name, str(ref.path)).marked
        except ZoneError:
            marked = ()  # check-config and failover report it; the SOA is still asked
        picked: dict[tuple[str, str], Question] = {}
        for rec in marked:
            picked.setdefault(
                (rec.role, rec.rrtype), Question(ref.name, rec.owner, rec.rrtype, rec.role)
            )
        if names + len(picked) > MAX_NAMES:
            return out, len(refs) - asked
        names += len(picked)
        out.append(Question(ref.name, ref.name, "SOA", "soa"))
        out.extend(picked[k] for k in sorted(picked))
    return out, 0


# -- asking one nameserver (I/O) -------------------------------------------------------


def ask(
    address: str, family: Family, port: int, qs: Sequence[Question], timeout: float
) -> dict[Question, Reply] | str:
    """Ask every question at once (kissha.dns.client: resends, TCP for truncated
    answers). Returns a reply per question, or an error in words when the nameserver
    cannot be reached at all."""
    replies, unanswered = ask_each(address, port, {q: (q.name, q.rrtype) for q in qs}, timeout)
    if not replies and qs:
        why = next(iter(unanswered.values()), "timeout")
        return f"timeout after {timeout:g} s" if why == "timeout" else why
    out: dict[Question, Reply] = {}
    for q in qs:
        reply = replies.get(q)
        if reply is None:
            out[q] = unanswered.get(q, "timeout")
        else:
            out[q] = reply.problem or reply.values
    return out


# -- the pure core ---------------------------------------------------------------------


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


def _age(seconds: float) -> str:
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
        warnings.append(f"stale state: last run {_age(age)} ago (limit {_age(obs.stale_after)})")
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
    """As policy does: a node passes when every required probe passes on every family."""
    ok = {n: True for n in nodes if any(p.node == n for p in probes)}
    for p in probes:
        if p.required and not p.ok:
            ok[p.node] = False
    return ok


# -- rendering -------------------------------------------------------------------------


def nagios_line(v: Verdict) -> str:
    """One line: ``KISSHA LEVEL - summary; more | perfdata`` (no '|' in the text)."""
    more = [p for p in v.problems if p != v.summary]
    text = "; ".join([v.summary, *more[:3]]) + (
        f"; and {len(more) - 3} more" if len(more) > 3 else ""
    )
    text = text.replace("|", "/").replace("\n", " ")
    return f"KISSHA {v.name} - {text} | {' '.join(v.perfdata)}"


def text(report: Report) -> str:
    obs, v = report.observation, report.verdict
    out = [f"kissha status at {iso(obs.now)}", "", "nameservers:"]
    width = max((len(x.label) for x in obs.views), default=8)
    for x in obs.views:
        if x.error is not None:
            out.append(f"  {x.label:<{width}}  {x.address}: UNREACHABLE ({x.error})")
            continue
        master = "+".join(x.master) or "-"
        standby = "+".join(x.standby) or "-"
        out.append(
            f"  {x.label:<{width}}  master names -> {master}, standby names -> {standby}"
            f"; {_serials(x.serials)}"
        )
        out.extend(f"  {'':<{width}}  ! {p}" for p in x.problems)
    out += ["", "probes from here:"]
    nwidth = max((len(p.node) for p in obs.probes), default=4)
    pwidth = max((len(p.probe) for p in obs.probes), default=5)
    for p in obs.probes:
        flag = "" if p.required else " [informational]"
        status = "ok" if p.ok else "FAILED"
        warn = f"; warning: {p.warning}" if p.warning else ""
        out.append(
            f"  {p.node:<{nwidth}}  {p.probe:<{pwidth}} {p.family}  {status:<6} "
            f"{p.detail}{warn}{flag}"
        )
    out += ["", "state:"]
    if obs.roles is not None:
        out.append(f"  roles: master {obs.roles.master}, standby {obs.roles.standby}")
    if obs.health:
        out.append(
            "  health: " + ", ".join(f"{n} {'up' if u else 'DOWN'}" for n, u in obs.health.items())
        )
    if obs.last_run is None:
        out.append("  last run: none recorded")
    else:
        out.append(f"  last run: {iso(obs.last_run)} ({_age(obs.now - obs.last_run)} ago)")
    for e in obs.events:
        out.append(f"  {iso(float(e.get('time', 0)))}  {e.get('kind')}: {e.get('message')}")
    if obs.checks is not None:
        out += ["", _checks_text(obs)]
    out.append("")
    for n in v.notes:
        out.append(f"note: {n}")
    out.extend(f"problem: {problem}" for problem in v.problems)
    out.append(f"{v.name}: {v.summary}")
    return "\n".join(out) + "\n"


def _checks_text(obs: Observation) -> str:
    """kissha monitor's checks: the ones not OK in full, the OK ones counted."""
    assert obs.checks is not None
    ok = [c for c in obs.checks if c.state == "OK"]
    lines = [f"checks (kissha monitor): {len(ok)} of {len(obs.checks)} OK"]
    for c in obs.checks:
        if c.state != "OK":
            since = "" if c.since is None else f" since {iso(c.since)}"
            lines.append(f"  {c.state:<9} {c.id}{since}: {c.output}")
    return "\n".join(lines)


def _serials(serials: Mapping[str, str]) -> str:
    """'serial 1700000000 (6 zones)': one figure per distinct serial; JSON has each zone."""
    if not serials:
        return "no serial"
    count: dict[str, list[str]] = {}
    for zone, serial in sorted(serials.items()):
        count.setdefault(serial, []).append(zone.rstrip("."))
    if len(count) == 1:
        ((serial, zones),) = count.items()
        return f"serial {serial}" + (f" ({len(zones)} zones)" if len(zones) > 1 else "")
    return "serials " + ", ".join(f"{s} ({' '.join(z)})" for s, z in count.items())


def as_json(report: Report) -> dict[str, Any]:
    obs, v = report.observation, report.verdict
    return {
        "schema": SCHEMA,
        "time": iso(obs.now),
        "status": v.name,
        "summary": v.summary,
        "problems": list(v.problems),
        "notes": list(v.notes),
        "nameservers": [
            {
                "node": x.node,
                "family": x.family,
                "address": x.address,
                "reachable": x.error is None,
                "error": x.error,
                "master": list(x.master),
                "standby": list(x.standby),
                "serials": dict(x.serials),
                "problems": list(x.problems),
            }
            for x in obs.views
        ],
        "probes": [
            {
                "node": p.node,
                "probe": p.probe,
                "family": p.family,
                "ok": p.ok,
                "required": p.required,
                "detail": p.detail,
                "warning": p.warning,
            }
            for p in obs.probes
        ],
        "state": {
            "roles": None
            if obs.roles is None
            else {"master": obs.roles.master, "standby": obs.roles.standby},
            "health": dict(obs.health),
            "last_run": None if obs.last_run is None else iso(obs.last_run),
            "last_run_age": None if obs.last_run is None else round(obs.now - obs.last_run, 1),
            "events": list(obs.events),
        },
        "checks": None
        if obs.checks is None
        else [
            {
                "id": c.id,
                "state": c.state,
                "since": None if c.since is None else iso(c.since),
                "output": c.output,
            }
            for c in obs.checks
        ],
    }


# -- one status run (I/O) --------------------------------------------------------------


class Asking:
    """Every node's nameserver over every family, asked in threads from construction
    on; ``views()`` waits for the answers (each bounded by ``timeout``)."""

    def __init__(self, config: Config, port: int, timeout: float) -> None:
        qs, self.skipped = questions(config)
        self.nodes = normal_nodes(config.nodes)
        self.targets = [(n, f) for n in self.nodes for f in n.families]
        self.timeout = timeout
        self.replies: list[dict[Question, Reply] | str] = ["not asked"] * len(self.targets)

        def work(i: int) -> None:
            node, family = self.targets[i]
            try:
                self.replies[i] = ask(node.address(family) or "", family, port, qs, timeout)
            except Exception as exc:  # a bug must show as this nameserver's error, not hang
                self.replies[i] = f"error: {type(exc).__name__}: {exc}"

        self.threads = [
            threading.Thread(target=work, args=(i,), daemon=True) for i in range(len(self.targets))
        ]
        for t in self.threads:
            t.start()

    def views(self) -> tuple[NsView, ...]:
        for t in self.threads:
            t.join(self.timeout + 1.0)
        return tuple(
            view(n, f, self.replies[i], self.nodes) for i, (n, f) in enumerate(self.targets)
        )


def collect(config: Config, now: float, *, port: int = 53, stale_after: float) -> Report:
    """Ask every nameserver and probe every node, at the same time; read the state."""
    from kissha.engine import state as statefile
    from kissha.probes import run_round
    from kissha.probes.tofu import ProbeContext

    asking = Asking(config, port, config.health.timeout * 2)
    context = ProbeContext.load(config.state_dir, readonly=True)
    probes = run_round(config.nodes, config.health, context)
    views = asking.views()
    st, state_warning = statefile.load_readonly(config.state_dir)
    last = st.last_run.get("time")
    obs = Observation(
        now=now,
        views=views,
        probes=tuple(probes),
        nodes=config.node_names,
        last_run=float(last) if isinstance(last, int | float) else None,
        stale_after=stale_after,
        roles=st.roles,
        health={n: h.up for n, h in st.health.items()},
        events=tuple(st.events[-LAST_EVENTS:]),
        state_warning=state_warning,
        zones_skipped=asking.skipped,
        checks=monitor_checks(config, now),
    )
    return Report(obs, judge(obs))


def monitor_checks(config: Config, now: float) -> tuple[Any, ...] | None:
    """kissha monitor's checks, when it runs here (imported only then)."""
    if not (config.state_dir / "monitor.json").exists():
        return None
    from kissha.monitor.run import shown

    return shown(config, now)
