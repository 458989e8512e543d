"""Pure decisions: which node is master and which standby, from health, state and time.

Nothing here reads a file or the clock: the caller passes ``now`` (epoch seconds), this
round's results and the previous state, so every node computes the same answer from the
same facts and tests can replay any situation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from kissha.config import Config
from kissha.core.model import Decision, NodeHealth, Pin, ProbeResult, Roles, iso

WEEK = 7 * 86400
# Weeks are counted from Monday 1970-01-05 00:00 UTC: the count never jumps at a year
# boundary (unlike the original's `date +%U`) and is the same on every node.
_FIRST_MONDAY = 4 * 86400


def week_number(now: float) -> int:
    """Whole weeks since Monday 1970-01-05 00:00 UTC."""
    return int((now - _FIRST_MONDAY) // WEEK)


def round_ok(results: Sequence[ProbeResult], node: str) -> bool:
    """A node passes a round when every required probe passed on every address family.

    Either family failing fails the node, as in the original (which checked IPv4 and IPv6).
    """
    mine = [r for r in results if r.node == node and r.required]
    return bool(mine) and all(r.ok for r in mine)


def update_health(
    previous: NodeHealth | None, ok: bool, failures_needed: int, successes_needed: int
) -> NodeHealth:
    """Debounce: demote after N failed rounds in a row, promote after M good ones."""
    prev = previous or NodeHealth()
    if ok:
        streak = prev.ok_streak + 1
        up = prev.up or streak >= successes_needed
        return NodeHealth(up=up, fail_streak=0, ok_streak=streak)
    streak = prev.fail_streak + 1
    up = prev.up and streak < failures_needed
    return NodeHealth(up=up, fail_streak=streak, ok_streak=0)


def preferred_order(
    config: Config, now: float, pin: Pin | None = None
) -> tuple[tuple[str, ...], list[str]]:
    """The order in which nodes should lead, before health is considered, and why."""
    names = list(config.node_names)
    names.remove(config.default_master)
    order = [config.default_master, *names]
    reasons: list[str] = []
    if config.rotation == "weekly":
        week = week_number(now)
        k = week % len(order)
        order = order[k:] + order[:k]
        reasons.append(f"rotation: week {week} (UTC) prefers {order[0]}")
    else:
        reasons.append(f"rotation off: {order[0]} is the default master")
    if pin is not None and pin.active(now) and pin.node in order:
        order.remove(pin.node)
        order.insert(0, pin.node)
        until = "" if pin.until is None else f" until {iso(pin.until)}"
        reasons.append(f"pinned to {pin.node}{until}")
    return tuple(order), reasons


def decide(
    config: Config,
    results: Sequence[ProbeResult],
    previous: Mapping[str, NodeHealth],
    current: Roles | None,
    now: float,
    pin: Pin | None = None,
) -> Decision:
    """Decide the roles for this round.

    ``previous`` is each node's health after the last round; ``current`` what the records
    point at now (None if unknown). Returns roles None when every node is down: the records
    then stay as they are.
    """
    hc = config.health
    health = {
        name: update_health(
            previous.get(name),
            round_ok(results, name),
            hc.failures_before_demotion,
            hc.successes_before_promotion,
        )
        for name in config.node_names
    }
    order, reasons = preferred_order(config, now, pin)
    for name in order:
        h, before = health[name], previous.get(name, NodeHealth())
        if not h.up and before.up:
            reasons.append(f"{name} is now down: {h.fail_streak} failed rounds in a row")
        elif h.up and not before.up:
            reasons.append(f"{name} is up again: {h.ok_streak} good rounds in a row")
        elif h.up and h.fail_streak:
            reasons.append(
                f"{name} failed {h.fail_streak} of {hc.failures_before_demotion} rounds "
                "before demotion"
            )
        elif not h.up:
            reasons.append(
                f"{name} is down ({h.ok_streak} of {hc.successes_before_promotion} good rounds "
                "needed to return)"
            )
    up = [n for n in order if health[n].up]
    if not up:
        keep = f" ({current.master} stays master)" if current else ""
        reasons.append(f"every node is down: keeping the current records{keep}")
        return Decision(None, health, tuple(reasons), order)
    master = up[0]
    if master != order[0]:
        reasons.append(f"{master} takes over as master because {order[0]} is down")
    others = [n for n in order if n != master]
    healthy_others = [n for n in others if health[n].up]
    if healthy_others:
        standby = healthy_others[0]
    elif config.standby_when_down == "master":
        standby = master
        reasons.append(f"no healthy standby: standby names point at the master {master}")
    else:
        standby = others[0]
        reasons.append(f"standby {standby} is down; its names keep pointing at it")
    full = (master, *healthy_others, *(n for n in others if not health[n].up))
    return Decision(Roles(master, standby, full), health, tuple(reasons), order)
