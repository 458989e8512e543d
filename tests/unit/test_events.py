"""The event history from sequences of runs: transitions, causes, problems told once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kissha.core import events
from kissha.core.model import Event, Pin, ProbeResult, Problem, Roles
from kissha.core.policy import decide
from kissha.core.report import Outcome, RunReport
from kissha.engine import state as statefile
from tests.unit.test_policy import EVEN, cfg

WEEK = 7 * 86400


def probes(warning: str | None = None, **families: str) -> list[ProbeResult]:
    """node=families that pass ("ipv4+ipv6", "ipv4", "" for none)."""
    out = []
    for node, good in families.items():
        for family in ("ipv4", "ipv6"):
            ok = family in good.split("+")
            out.append(
                ProbeResult(
                    node,
                    "https",
                    family,
                    "x",
                    ok,
                    "ok" if ok else "connection refused",
                    warning=warning if ok else None,
                )
            )
    return out


def step(st: statefile.State, results: list[ProbeResult], now: float, **top: Any) -> list[Event]:
    """One run folded into st; the events it added."""
    c = cfg(**top)
    d = decide(c, results, st.health, st.roles, now, st.pin)
    if d.roles is None:
        outcome = Outcome.KEPT
    elif st.roles is not None and d.roles != st.roles:
        outcome = Outcome.CHANGED
    else:
        outcome = Outcome.UNCHANGED
    report = RunReport(now, False, tuple(results), d, st.roles, outcome=outcome, checked=True)
    seq = st.seq
    events.fold_run(c, st, report)
    st.last_run = {"time": now}
    return [e for e in st.events if e.id > seq]


def kinds(evs: list[Event]) -> list[str]:
    return [e.kind for e in evs]


def test_a_failover_and_a_failback_with_their_causes() -> None:
    st = statefile.State()
    assert step(st, probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6"), EVEN) == []
    down = probes(fishfinger="", blowfish="ipv4+ipv6")
    assert step(st, down, EVEN + 60) == step(st, down, EVEN + 120) == []
    evs = step(st, down, EVEN + 180)
    assert kinds(evs) == ["node-down", "failover"]  # no family events: the node's says it
    assert evs[0].fields["families"] == ["ipv4", "ipv6"]
    assert evs[0].message == (
        "fishfinger is down: https/ipv4: connection refused; https/ipv6: connection refused"
    )
    assert (evs[1].fields["cause"], evs[1].fields["from"], evs[1].fields["to"]) == (
        "failover",
        "fishfinger",
        "blowfish",
    )
    assert evs[1].fields["reason"].startswith("https/ipv4: connection refused")
    assert list(st.problems) == ["node-down:fishfinger"]
    assert step(st, down, EVEN + 240) == []
    up = probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6")
    for i in range(4):
        assert step(st, up, EVEN + 300 + 60 * i) == []
    evs = step(st, up, EVEN + 600)
    assert kinds(evs) == ["node-up", "failback"]  # a recovery, never called a failover
    assert evs[1].fields["cause"] == "failback"
    assert (evs[1].fields["from"], evs[1].fields["to"]) == ("blowfish", "fishfinger")
    assert st.problems == {}
    assert [e.id for e in st.events] == [1, 2, 3, 4]
    assert (st.failovers, st.failbacks, st.rotations) == (1, 1, 0)


def test_one_family_down_names_the_family_and_partial_changes_are_family_events() -> None:
    st = statefile.State()
    step(st, probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6"), EVEN)
    v6_down = probes(fishfinger="ipv4", blowfish="ipv4+ipv6")
    evs = [e for i in range(3) for e in step(st, v6_down, EVEN + 60 * (i + 1))]
    assert kinds(evs) == ["node-down", "failover"]
    assert evs[0].message == "fishfinger is down over ipv6 only: https/ipv6: connection refused"
    # IPv4 breaks too while the node is down: that is news of its own.
    both_down = probes(fishfinger="", blowfish="ipv4+ipv6")
    evs = [e for i in range(3) for e in step(st, both_down, EVEN + 300 + 60 * i)]
    assert kinds(evs) == ["family-down"]
    assert (evs[0].fields["node"], evs[0].fields["family"]) == ("fishfinger", "ipv4")
    # IPv4 comes back, IPv6 not yet: a family event; then IPv6: the node's event.
    evs = [e for i in range(5) for e in step(st, v6_down, EVEN + 600 + 60 * i)]
    assert kinds(evs) == ["family-up"]
    evs = [
        e
        for i in range(5)
        for e in step(
            st, probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6"), EVEN + 1000 + 60 * i
        )
    ]
    assert kinds(evs) == ["node-up", "failback"]


def test_rotation_and_pins_are_planned_changes_not_failovers() -> None:
    st = statefile.State()
    up = probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6")
    step(st, up, EVEN)
    evs = step(st, up, EVEN + WEEK)
    assert kinds(evs) == ["rotation"] and evs[0].fields["cause"] == "rotation"
    st.pin = Pin("fishfinger")
    st.add_event(EVEN + WEEK + 30, "pin", "pinned to fishfinger")
    evs = step(st, up, EVEN + WEEK + 60)
    assert kinds(evs) == ["rotation"]
    assert (evs[0].fields["from"], evs[0].fields["to"]) == ("blowfish", "fishfinger")
    assert (st.failovers, st.failbacks, st.rotations) == (0, 0, 2)


def test_an_edited_default_master_is_a_rotation_not_a_failback() -> None:
    st = statefile.State()
    up = probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6")
    step(st, up, EVEN, rotation="off")
    assert st.preferred == "fishfinger"
    evs = step(st, up, EVEN + 60, rotation="off", default_master="blowfish")
    assert kinds(evs) == ["rotation"]
    assert (evs[0].fields["from"], evs[0].fields["to"]) == ("fishfinger", "blowfish")
    assert (st.failovers, st.failbacks, st.rotations) == (0, 0, 1)


def test_a_week_that_turns_while_the_preferred_node_is_down_then_its_return_is_a_failback() -> None:
    st = statefile.State()
    both = probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6")
    step(st, both, EVEN)
    # blowfish, preferred next week, is down when the week turns: fishfinger stays.
    turn = EVEN + WEEK - 12 * 3600  # Monday 00:00 UTC
    down = probes(fishfinger="ipv4+ipv6", blowfish="")
    for i in range(3):
        step(st, down, turn - 180 + 60 * i)
    assert step(st, down, turn) == []
    assert st.preferred == "blowfish" and st.roles is not None
    assert st.roles.master == "fishfinger"
    evs = [e for i in range(5) for e in step(st, both, turn + 60 * (i + 1))]
    assert kinds(evs) == ["node-up", "failback"]
    assert (st.failovers, st.failbacks, st.rotations) == (0, 1, 0)


def test_states_from_before_the_split_call_a_failback_a_failback(tmp_path: Path) -> None:
    st = statefile.State()
    st.add_event(EVEN, "failover", "master a -> b", cause="failback", **{"from": "a", "to": "b"})
    st.add_event(EVEN + 1, "failover", "master b -> a", cause="rotation")
    st.add_event(EVEN + 2, "failover", "master a -> b", cause="failover")
    statefile.save(tmp_path, st)
    back, warning = statefile.load(tmp_path)
    assert warning is None
    assert kinds(back.events) == ["failback", "rotation", "failover"]


def test_records_only_changes_keep_the_master_and_say_why() -> None:
    c = cfg()
    up = probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6")
    st = statefile.State()
    step(st, up, EVEN)
    roles = st.roles
    assert roles is not None

    def changed(now: float, previous: Roles | None) -> list[Event]:
        d = decide(c, up, st.health, st.roles, now, st.pin)
        seq = st.seq
        events.fold_run(
            c, st, RunReport(now, False, tuple(up), d, previous, outcome=Outcome.CHANGED)
        )
        return [e for e in st.events if e.id > seq]

    # The operator edited an address in the config: the zone files follow, roles stay.
    (e,) = changed(EVEN + 60, roles)
    assert (e.kind, e.fields["cause"], e.fields["master"]) == ("records", "records", "fishfinger")
    assert e.message.startswith("records changed, roles unchanged (master fishfinger")
    # A state started afresh: no roles known before this run.
    (e,) = changed(EVEN + 120, None)
    assert (e.kind, e.fields["cause"]) == ("records", "first-run")
    assert (st.failovers, st.failbacks, st.rotations, st.record_changes) == (0, 0, 0, 2)


def test_all_down_is_one_event_while_it_lasts() -> None:
    st = statefile.State()
    step(st, probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6"), EVEN)
    dead = probes(fishfinger="", blowfish="")
    evs = [e for i in range(6) for e in step(st, dead, EVEN + 60 * (i + 1))]
    assert kinds(evs) == ["node-down", "node-down", "all-down"]
    assert "all-down" in st.problems
    up = probes(fishfinger="ipv4+ipv6", blowfish="")
    evs = [e for i in range(5) for e in step(st, up, EVEN + 600 + 60 * i)]
    assert kinds(evs) == ["node-up", "records"]  # the standby names follow the master
    assert evs[1].fields["cause"] == "standby" and evs[1].message.startswith(
        "standby blowfish -> fishfinger, master fishfinger stays"
    )
    assert "all-down" not in st.problems


def test_a_certificate_close_to_expiry_is_told_once_until_it_clears() -> None:
    st = statefile.State()
    soon = probes(
        "certificate expires in 5 days (2026-11-28)", fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6"
    )
    evs = step(st, soon, EVEN) + step(st, soon, EVEN + 60)
    assert kinds(evs) == ["cert-expiring", "cert-expiring"]  # one per node
    assert evs[0].message == ("fishfinger https/ipv4: certificate expires in 5 days (2026-11-28)")
    renewed = probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6")
    assert step(st, renewed, EVEN + 120) == []
    assert st.problems == {}
    assert kinds(step(st, soon, EVEN + 180)) == ["cert-expiring"] * 2


def test_zone_problems_and_errors_are_told_once_until_they_clear() -> None:
    st = statefile.State()
    assert events.fold_error(st, "foo.zone:3: a marked CNAME", EVEN) is not None
    assert events.fold_error(st, "foo.zone:3: a marked CNAME", EVEN + 60) is None
    assert events.fold_error(st, "bar.zone:1: another", EVEN + 60) is not None
    step(st, probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6"), EVEN + 120)
    assert st.problems == {}  # a run that gets through ends them
    assert events.fold_error(st, "foo.zone:3: a marked CNAME", EVEN + 180) is not None
    events.fold_zone_problems(st, ["x.zone: fails validation"], EVEN + 240)
    events.fold_zone_problems(st, ["x.zone: fails validation"], EVEN + 300)
    assert kinds(st.events).count("zone-invalid") == 1
    events.fold_zone_problems(st, [], EVEN + 360)
    assert not any(k.startswith("zone-invalid:") for k in st.problems)


def test_problems_of_a_node_or_probe_the_config_no_longer_has_are_closed() -> None:
    # A node replaced, a probe dropped from the config: no probe of them runs, so
    # nothing else would close their problems, and each would be reminded of daily.
    st = statefile.State()

    def problem(kind: str, **fields: str) -> Problem:
        return Problem(kind, EVEN, f"{kind} {fields}", fields)

    st.problems = {
        "node-down:oldfish": problem("node-down", node="oldfish"),
        "cert-expiring:oldfish/https": problem("cert-expiring", node="oldfish", probe="https"),
        "cert-expiring:blowfish/gemini": problem("cert-expiring", node="blowfish", probe="gemini"),
        "node-down:blowfish": problem("node-down", node="blowfish"),
        "cert-expiring:blowfish/https": problem("cert-expiring", node="blowfish", probe="https"),
        "split-brain": problem("split-brain"),  # about no node: not this function's
    }
    step(st, probes(fishfinger="ipv4+ipv6", blowfish=""), EVEN + 60)
    # blowfish and its https probe are still configured (and still failing): open
    assert sorted(st.problems) == [
        "cert-expiring:blowfish/https",
        "node-down:blowfish",
        "split-brain",
    ]
    assert st.events == []  # closed quietly: no event to tell


def test_split_brain_must_last_and_is_resolved_only_by_a_complete_agreeing_view() -> None:
    st = statefile.State()
    split = {"fishfinger/ipv4": ("fishfinger",), "blowfish/ipv4": ("blowfish",)}
    events.fold_split_brain(st, split, True, EVEN, after=300)
    events.fold_split_brain(st, split, True, EVEN + 200, after=300)
    assert st.events == []
    events.fold_split_brain(st, split, True, EVEN + 300, after=300)
    events.fold_split_brain(st, split, True, EVEN + 360, after=300)
    assert kinds(st.events) == ["split-brain"]
    assert st.events[0].message == (
        "nameservers disagree: fishfinger/ipv4 -> fishfinger, blowfish/ipv4 -> blowfish"
    )
    partial = {"fishfinger/ipv4": ("fishfinger",), "blowfish/ipv4": ()}
    events.fold_split_brain(st, partial, False, EVEN + 420, after=300)
    assert "split-brain" in st.problems  # an unreachable nameserver proves nothing
    agree = {"fishfinger/ipv4": ("blowfish",), "blowfish/ipv4": ("blowfish",)}
    events.fold_split_brain(st, agree, True, EVEN + 480, after=300)
    assert kinds(st.events) == ["split-brain", "split-brain-resolved"]
    # A normal failover: the nodes switch a round apart; that is no split brain.
    events.fold_split_brain(st, split, True, EVEN + 540, after=300)
    events.fold_split_brain(st, agree, True, EVEN + 600, after=300)
    events.fold_split_brain(st, split, True, EVEN + 900, after=300)
    assert kinds(st.events) == ["split-brain", "split-brain-resolved"]


def test_new_fields_survive_a_round_trip_and_old_files_still_load(tmp_path: Path) -> None:
    st = statefile.State()
    step(st, probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6"), EVEN)
    for i in range(3):
        step(st, probes(fishfinger="", blowfish="ipv4+ipv6"), EVEN + 60 * (i + 1))
    statefile.save(tmp_path, st)
    back, warning = statefile.load(tmp_path)
    assert warning is None and back.to_json() == st.to_json()
    assert back.seq == 2 and back.families["fishfinger"]["ipv6"].up is False
    old = st.to_json()
    for key in ("seq", "families", "problems", "watch"):
        del old[key]
    back = statefile.State.from_json(old)
    assert back.seq == 2  # from the events' ids: new ids never repeat old ones
    assert back.problems == {} and back.families == {}


def test_a_failed_run_still_records_health_and_node_events_but_not_roles() -> None:
    st = statefile.State()
    step(st, probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6"), EVEN)
    down = probes(fishfinger="ipv4+ipv6", blowfish="")
    c = cfg()
    for i in range(3):
        now = EVEN + 60 * (i + 1)
        d = decide(c, down, st.health, st.roles, now, st.pin)
        report = RunReport(now, False, tuple(down), d, st.roles)
        events.fold_run(c, st, report, failed=True)
        events.fold_error(st, "foo.zone:3: a marked CNAME", now)
    assert kinds(st.events) == ["error", "node-down"]
    assert st.roles is not None and st.roles.standby == "blowfish"  # nothing was applied
    assert set(st.problems) == {
        "node-down:blowfish",
        next(k for k in st.problems if k.startswith("error:")),
    }
