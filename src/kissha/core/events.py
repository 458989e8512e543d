"""Pure: what a run means for the event history and the open problems.

A run's facts (probe results, the decision, what was applied) become events in the
state: transitions (a node or one address family going down or up, a master change
and its cause, a rollback) and problems that open once and stay open until they clear
(every node down, a certificate close to expiry, a zone that fails validation, an
error). Notifications are sent from these events, so each is told once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from kissha.core.model import FAMILIES, Event, NodeHealth, ProbeResult, Problem, Roles
from kissha.core.policy import update_health, week_number
from kissha.core.report import Outcome

if TYPE_CHECKING:
    from kissha.config import Config
    from kissha.core.report import RunReport
    from kissha.engine.state import State

MAX_REASONS = 2
PIN_KINDS = ("pin", "unpin", "unpinned")


def reason(results: Sequence[ProbeResult], node: str, family: str | None = None) -> str:
    """Why a node (or one family of it) fails: 'https/ipv4: connection refused (+1 more)'."""
    failed = [
        r
        for r in results
        if r.node == node and r.required and not r.ok and (family is None or r.family == family)
    ]
    if not failed:
        return "its probes pass now"
    parts = [f"{r.probe}/{r.family}: {r.detail}" for r in failed[:MAX_REASONS]]
    more = f" (+{len(failed) - MAX_REASONS} more)" if len(failed) > MAX_REASONS else ""
    return "; ".join(parts) + more


def family_ok(results: Sequence[ProbeResult], node: str, family: str) -> bool | None:
    """Whether every required probe of node over family passed; None: none ran."""
    mine = [r for r in results if r.node == node and r.family == family and r.required]
    return all(r.ok for r in mine) if mine else None


def fold_families(
    config: Config,
    st: State,
    results: Sequence[ProbeResult],
    now: float,
    before: Mapping[str, NodeHealth],
) -> None:
    """Debounce each (node, family) like the nodes; report a family's change on its own
    only while its node's health stays as it was: when the node goes down or up in the
    same run, the node's event says which families (one event, not three)."""
    hc = config.health
    for node in config.nodes:
        fams = st.families.setdefault(node.name, {})
        now_health = st.health.get(node.name)
        node_changed = (
            node.name in before and now_health is not None and before[node.name].up != now_health.up
        )
        for family in FAMILIES:
            ok = family_ok(results, node.name, family)
            if ok is None:
                continue
            prev = fams.get(family)
            new = update_health(
                prev, ok, hc.failures_before_demotion, hc.successes_before_promotion
            )
            fams[family] = new
            if prev is None or prev.up == new.up or node_changed:
                continue
            if new.up:
                st.add_event(
                    now,
                    "family-up",
                    f"{node.name} passes its probes over {family} again",
                    node=node.name,
                    family=family,
                )
            else:
                why = reason(results, node.name, family)
                st.add_event(
                    now,
                    "family-down",
                    f"{node.name} is down over {family}: {why}",
                    node=node.name,
                    family=family,
                    reason=why,
                )


def down_families(st: State, node: str) -> list[str]:
    return [f for f, h in st.families.get(node, {}).items() if not h.up]


def change_cause(
    previous: Roles, health: Mapping[str, NodeHealth], planned: bool
) -> Literal["failover", "rotation", "failback"]:
    """Why the master changed, which is the event's kind and its counter (only a health
    failover is news that should page someone):

    - "failover": the old master is down (health);
    - "rotation": the preference itself moved since the last run (the week turned, a
      pin was set, removed or expired, the config was edited) or the old master is no
      node of the config any more, while the old master is up;
    - "failback": the old master is up and the preference did not move, so the new
      master leads because it passes its probes again (health recovery).

    Health first: a master that goes down in the week's last minute is a failover."""
    old = health.get(previous.master)
    if old is None:
        return "rotation"
    if not old.up:
        return "failover"
    return "rotation" if planned else "failback"


def fold_run(config: Config, st: State, report: RunReport, failed: bool = False) -> None:
    """Fold one run into the state: streaks, roles actually served, events, problems.

    ``failed``: the run stopped with an error after probing (a zone that cannot be
    planned...): health, node and certificate events count, roles and outcome do not."""
    now, decision = report.now, report.decision
    before_health = dict(st.health)
    for name, h in decision.health.items():
        before = st.health.get(name)
        if before is None or before.up == h.up:
            continue
        if h.up:
            st.add_event(now, "node-up", f"{name} is up", node=name)
            st.close_problem(f"node-down:{name}")
            continue
        why = reason(report.probes, name)
        fams = [f for f in FAMILIES if family_ok(report.probes, name, f) is False] or down_families(
            st, name
        )
        probed = {r.family for r in report.probes if r.node == name}
        only = f" over {fams[0]} only" if len(fams) == 1 and len(probed) > 1 else ""

        message = f"{name} is down{only}: {why}"
        extra: dict[str, Any] = {"node": name, "families": fams, "reason": why}
        st.add_event(now, "node-down", message, **extra)
        st.problems[f"node-down:{name}"] = Problem("node-down", round(now, 3), message, extra)
    last_time = st.last_run.get("time")
    planned = _planned(config, st, now, last_time, decision.preferred)
    st.health = dict(decision.health)
    fold_families(config, st, report.probes, now, before_health)
    roles = decision.roles
    if roles is None:
        st.open_problem(now, "all-down", "all-down", report.message)
    else:
        st.close_problem("all-down")
    if failed:
        pass
    elif report.outcome == Outcome.ROLLED_BACK:
        st.add_event(now, "rollback", report.message)
        st.rollbacks += 1
    elif roles is not None and report.outcome in (Outcome.CHANGED, Outcome.UNCHANGED):
        if report.outcome == Outcome.CHANGED:
            _fold_change(st, report, roles, planned)
        st.roles = roles
        if decision.preferred:
            st.preferred = decision.preferred[0]
    fold_certs(st, report.probes, now)
    if report.checked:
        fold_zone_problems(st, report.zone_problems, now)
    if not failed:  # the run got through: the errors of earlier runs are over
        for key in [k for k in st.problems if k.startswith("error:")]:
            st.close_problem(key)
    close_unconfigured(config, st)


def close_unconfigured(config: Config, st: State) -> None:
    """Close the problems of a node, or of a node's probe, that the config no longer has
    (a node replaced, a probe dropped): no probe of them runs any more, so nothing else
    would close them, and each would be reminded of every day for ever."""
    nodes = {n.name for n in config.nodes}
    probed = {
        (n.name, p.name) for n in config.nodes for p in config.health.probes if n.runs(p.name)
    }
    for key, problem in list(st.problems.items()):
        node, probe = problem.fields.get("node"), problem.fields.get("probe")
        if not isinstance(node, str):
            continue
        if node not in nodes or (isinstance(probe, str) and (node, probe) not in probed):
            st.close_problem(key)


def _fold_change(st: State, report: RunReport, roles: Roles, planned: bool) -> None:
    """The event (and counter) of a run that changed the records: a failover, failback
    or rotation when the master moved; else "records" (the master stayed: the standby
    moved, or the zone files did not match the config, e.g. edited addresses)."""
    now, previous = report.now, report.previous
    done = report.done
    zones = [p.zone for p in done][:50]
    # Named once, here: the zones this change could not reach.
    missed = list(dict.fromkeys(f.zone for f in report.failed))
    n = f"{len(done)} zone(s)" + (f"; not changed: {', '.join(missed[:10])}" if missed else "")
    failed: dict[str, Any] = {"failed_zones": missed[:50]} if missed else {}
    if any(f.stage == "verify" for f in report.failed):
        st.rollbacks += 1
    if previous is not None and previous.master != roles.master:
        change = change_cause(previous, report.decision.health, planned)
        extra: dict[str, Any] = {"cause": change, "from": previous.master, "to": roles.master}
        if change == "failover":
            extra["reason"] = reason(report.probes, previous.master)
        message = f"master {previous.master} -> {roles.master}, standby {roles.standby}; {n}"
        st.add_event(now, change, message, zones=zones, standby=roles.standby, **extra, **failed)
        if change == "failover":
            st.failovers += 1
        elif change == "failback":
            st.failbacks += 1
        else:
            st.rotations += 1
        return
    if previous is None:
        cause = "first-run"
        message = (
            f"records now point at master {roles.master}, standby {roles.standby} "
            f"(no roles known before); {n}"
        )
    elif previous.standby != roles.standby:
        cause = "standby"
        message = f"standby {previous.standby} -> {roles.standby}, master {roles.master} stays; {n}"
    else:
        cause = "records"
        message = (
            f"records changed, roles unchanged (master {roles.master}, standby "
            f"{roles.standby}): the zone files did not match the config; {n}"
        )
    st.add_event(
        now,
        "records",
        message,
        zones=zones,
        standby=roles.standby,
        cause=cause,
        master=roles.master,
        **failed,
    )
    st.record_changes += 1


def _planned(
    config: Config, st: State, now: float, last_time: object, preferred: Sequence[str]
) -> bool:
    """Whether the preference itself moved since the last run that applied roles: the
    preferred node changed (a new week, a pin, an edited config). State files written
    before the preferred node was kept: a new week or a pin set, removed or expired."""
    if st.preferred is not None and preferred:
        return st.preferred != preferred[0]
    if not isinstance(last_time, int | float):
        return False
    if config.rotation == "weekly" and week_number(float(last_time)) != week_number(now):
        return True
    return any(e.kind in PIN_KINDS and e.time > last_time for e in st.events)


def fold_certs(st: State, results: Sequence[ProbeResult], now: float) -> None:
    """One problem per (node, probe) whose certificate is close to expiry, until a run
    where that probe passes everywhere without the warning."""
    endpoints: dict[tuple[str, str], list[ProbeResult]] = {}
    for r in results:
        endpoints.setdefault((r.node, r.probe), []).append(r)
    for (node, probe), rs in endpoints.items():
        key = f"cert-expiring:{node}/{probe}"
        warned = [r for r in rs if r.ok and r.warning]
        if warned:
            w = warned[0]
            st.open_problem(
                now,
                key,
                "cert-expiring",
                f"{node} {probe}/{w.family}: {w.warning}",
                node=node,
                probe=probe,
            )
        elif all(r.ok for r in rs):
            st.close_problem(key)


def fold_zone_problems(st: State, problems: Sequence[str], now: float) -> None:
    """A zone file that fails validation: one event until it validates again."""
    keys = set()
    for problem in problems:
        key = "zone-invalid:" + _digest(problem)
        keys.add(key)
        st.open_problem(now, key, "zone-invalid", problem)
    for key in [k for k in st.problems if k.startswith("zone-invalid:") and k not in keys]:
        st.close_problem(key)


def fold_error(st: State, message: str, now: float) -> Event | None:
    """A run that failed: one event per distinct error until a run gets through again."""
    return st.open_problem(now, "error:" + _digest(message), "error", message)


def fold_split_brain(
    st: State, masters: Mapping[str, tuple[str, ...]], complete: bool, now: float, after: float
) -> None:
    """Nameservers (label -> the masters it names) seen by this run. Split brain opens
    once they disagree in every run for ``after`` seconds, and is resolved when every
    nameserver answered and all name one master. A partial view (some unreachable) that
    agrees changes nothing: it proves neither."""
    named = {m for ms in masters.values() for m in ms}
    if len(named) > 1:
        detail = ", ".join(f"{label} -> {'+'.join(ms)}" for label, ms in masters.items() if ms)
        since = st.watch.setdefault("since", round(now, 3))
        if now - float(since) >= after:
            st.open_problem(now, "split-brain", "split-brain", f"nameservers disagree: {detail}")
        return
    st.watch.pop("since", None)
    if complete and len(named) == 1 and st.close_problem("split-brain"):
        st.add_event(
            now,
            "split-brain-resolved",
            f"every nameserver points at {next(iter(named))} again",
        )


def _digest(text: str) -> str:
    import hashlib  # only when a problem is reported

    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]
