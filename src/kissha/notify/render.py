"""Pure: the words of a notification (a one-line title, a plain-text body), no secrets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kissha.core.model import iso
from kissha.notify.kinds import MASTER_CHANGES

if TYPE_CHECKING:
    from kissha.config import Config
    from kissha.core.model import Event, Problem
    from kissha.core.report import RunReport
    from kissha.engine.state import State

MAX_TITLE = 200
MAX_MESSAGE_LINE = 300


@dataclass(frozen=True)
class Context:
    """What a notification may say besides its events: who sends, the run, the state."""

    config: Config
    node: str  # the sending node (or host) name
    now: float
    report: RunReport | None
    state: State


def one_line(text: str, limit: int = MAX_TITLE) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class Words:
    """How the notifications of one event kind read. ``title`` (after "kissha: ") is a
    template of the leading event's {message}, {from}, {to}, {node} and {why} (its
    reason) and of the sender {me}; ``hint`` (what to do) of {old}, {new}, {node},
    {family} ("?" when the event lacks them), {me} and {oks} (successes_before_promotion)."""

    title: str
    hint: str
    # A cause may need other advice: records/standby, records/first-run.
    causes: Mapping[str, str] = field(default_factory=dict)


# A kind no version of the table knows (a state written by another version): its
# message says it, with no advice.
UNLISTED = Words("{message}", "")
WORDS: dict[str, Words] = {
    "failover": Words(
        "failover {from} -> {to} ({from} down: {why})",
        "Find out why {old} fails the probes above and repair it. Nothing to do in "
        "DNS: kissha fails back by itself once {old} passes {oks} rounds in a row.",
    ),
    "failback": Words(
        "failback {from} -> {to} ({to} is up again and preferred)",
        "Nothing to do: {new} passed {oks} rounds in a row and leads again.",
    ),
    "rotation": Words(
        "rotation: master {from} -> {to} (planned: a new week, a pin or the config)",
        "Nothing to do: the weekly rotation, a pin or an edited config moved the "
        "master; both nodes pass their probes.",
    ),
    "records": Words(
        "records changed: {message}",
        "Nothing to do if the config was edited on purpose: the zone files now match "
        "the config's addresses.",
        {
            "standby": "Nothing to do: the standby names follow the healthy nodes.",
            "first-run": "Nothing to do: the state knew no roles (a first run, or a state "
            "started afresh), so the records were written for the roles of this run.",
        },
    ),
    "rollback": Words(
        "rollback on {me}: {message}",
        "The old zone files are back. Look at this run's output (kissha failover "
        "--dry-run) and the nameserver's log on {me}; kissha tries again at the next run.",
    ),
    "node-down": Words(
        "{message}",
        "Find out why {node} fails the probes above. It is trusted again after "
        "{oks} good rounds in a row.",
    ),
    "node-up": Words("{node} is up again", "Nothing to do."),
    "family-down": Words("{message}", "Check {node}'s {family} address, routes and firewall."),
    "family-up": Words("{message}", "Nothing to do."),
    "all-down": Words(
        "every node is down, seen from {me}: the records stay as they are",
        "Every node fails its probes from {me}: check {me}'s own network first. "
        "The records stay as they are until a node passes again.",
    ),
    "split-brain": Words(
        "SPLIT BRAIN seen from {me}: {message}",
        "The nameservers point at different masters, so users reach different "
        "nodes. Check the connectivity between the nodes; 'kissha status' on a host that "
        "reaches every nameserver shows what each answers.",
    ),
    "split-brain-resolved": Words("split brain resolved: {message}", "Nothing to do."),
    "cert-expiring": Words(
        "certificate close to expiry: {message}",
        "Renew the certificate (or check that renewal runs).",
    ),
    "cert-failed": Words(
        "certificates: {message}",
        "Run 'kissha certs --dry-run' on {me}: it shows each name's last error "
        "and when it tries again (the old certificates stay in place meanwhile).",
    ),
    "error": Words(
        "error on {me}: {message}",
        "Run 'kissha check-config' and 'kissha failover --dry-run' on {me} for the details.",
    ),
}


def _leading(kind: str, events: Sequence[Event]) -> Event:
    """The event a notice is about: the last master change of a run, else the first."""
    return events[-1] if kind in MASTER_CHANGES else events[0]


def title(kind: str, events: Sequence[Event], ctx: Context) -> str:
    """``kissha: failover fishfinger -> blowfish (fishfinger down: https/ipv4: ...)``."""
    main = _leading(kind, events)
    values = {
        "message": main.message,
        "from": main.fields.get("from"),
        "to": main.fields.get("to"),
        "node": main.fields.get("node"),
        "why": main.fields.get("reason") or "it is down",
        "me": ctx.node,
    }
    text = WORDS.get(kind, UNLISTED).title.format_map(values)
    if len(events) > 1 and kind not in MASTER_CHANGES:
        text += f" (+{len(events) - 1} more)"
    return one_line(f"kissha: {text}")


def hint(kind: str, events: Sequence[Event], ctx: Context) -> str:
    main = _leading(kind, events).fields
    values = {
        "old": main.get("from", "?"),
        "new": main.get("to", "?"),
        "node": main.get("node", "?"),
        "family": main.get("family", "?"),
        "me": ctx.node,
        "oks": ctx.config.health.successes_before_promotion,
    }
    words = WORDS.get(kind, UNLISTED)
    return words.causes.get(str(main.get("cause")), words.hint).format(**values)


def body(kind: str, events: Sequence[Event], ctx: Context) -> str:
    """What happened, what the run saw, what to do."""
    out = [f"{iso(e.time)}  {e.kind}: {_line(e.message)}" for e in events]
    report, st = ctx.report, ctx.state
    ran_now = report is not None and any(abs(e.time - report.now) < 0.001 for e in events)
    out.append("")
    if st.roles is not None:
        out.append(f"now: master {st.roles.master}, standby {st.roles.standby}")
    if st.health:
        out.append(
            "health: " + ", ".join(f"{n} {'up' if h.up else 'DOWN'}" for n, h in st.health.items())
        )
    if ran_now and report is not None:
        out += ["", f"probes from {ctx.node} at {iso(report.now)}:"]
        out += probe_lines(report)
    text = hint(kind, events, ctx)
    if text:
        out += ["", f"what to do: {text}"]
    ids = ", ".join(str(e.id) for e in events)
    out += ["", f"-- kissha on {ctx.node}" + (f" (event {ids})" if ids else "")]
    return "\n".join(out) + "\n"


def _line(message: str) -> str:
    return one_line(str(message), MAX_MESSAGE_LINE)


def probe_lines(report: RunReport) -> list[str]:
    rs = report.probes
    nw = max((len(r.node) for r in rs), default=4)
    pw = max((len(r.probe) for r in rs), default=5)
    lines = []
    for r in rs:
        status = "ok" if r.ok else "FAILED"
        tries = f" ({r.attempts} attempts)" if r.attempts > 1 else ""
        flag = "" if r.required else " [informational]"
        warning = f"; warning: {r.warning}" if r.warning else ""
        lines.append(
            f"  {r.node:<{nw}}  {r.probe:<{pw}} {r.family}  {status:<6} "
            f"{r.detail}{warning}{tries}{flag}"
        )
    return lines


def reminder(problems: Sequence[Problem], ctx: Context) -> tuple[str, str]:
    """Title and body of a reminder of the problems still open."""
    first = problems[0]
    more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
    head = f"kissha: still open since {iso(float(first.since))}: {first.message}{more}"
    out = [f"{len(problems)} problem(s) still open, seen from {ctx.node}:", ""]
    out += [f"since {iso(float(p.since))}  {p.kind}: {_line(p.message)}" for p in problems]
    st = ctx.state
    if st.roles is not None:
        out += ["", f"now: master {st.roles.master}, standby {st.roles.standby}"]
    out += ["", f"-- kissha on {ctx.node}; a reminder comes while a problem stays open"]
    return one_line(head), "\n".join(out) + "\n"


def digest(notices: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """Several notifications in one message, when the rate limit is reached."""
    kinds = ", ".join(dict.fromkeys(str(n["kind"]) for n in notices))
    head = one_line(f"kissha: {len(notices)} notifications in one (rate limit): {kinds}")
    parts = [f"{len(notices)} notifications, folded into one by the rate limit:", ""]
    for n in notices:
        parts += [f"== {n['title']}", "", str(n["text"]).rstrip("\n"), ""]
    return head, "\n".join(parts)
