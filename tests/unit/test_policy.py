"""Decision tables: rotation across year ends, hysteresis, all-down, standby choice, pin."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kissha import config as configmod
from kissha.core.model import NodeHealth, Pin, ProbeResult, Roles
from kissha.core.policy import decide, preferred_order, update_health, week_number

BASE = {
    "nodes": {
        "fishfinger": {"fqdn": "fishfinger.example.org", "ipv4": "198.51.100.11"},
        "blowfish": {"fqdn": "blowfish.example.org", "ipv4": "198.51.100.12"},
    },
    "dns": {"zones_dir": "/nonexistent"},
}


def cfg(**top: object) -> configmod.Config:
    data: dict[str, object] = {**BASE, **top}
    return configmod.parse(data)


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def results(**ok: bool) -> list[ProbeResult]:
    out = []
    for node, good in ok.items():
        for family in ("ipv4", "ipv6"):
            out.append(ProbeResult(node, "https", family, "x", good, "ok" if good else "refused"))
    return out


# A Monday in an even week (week 2968 since 1970-01-05): fishfinger, the default, leads.
EVEN = ts("2026-11-23T12:00:00")


def test_week_number_is_continuous_across_year_ends() -> None:
    # %U jumps from 52 to 00 at New Year; whole weeks since 1970-01-05 never do.
    weeks = [week_number(ts(f"{y}-12-31T23:59:59")) for y in range(2020, 2030)]
    after = [week_number(ts(f"{y + 1}-01-01T00:00:01")) for y in range(2020, 2030)]
    for w_end, w_next in zip(weeks, after, strict=True):
        assert w_next - w_end in (0, 1)
    # Weeks change on Monday 00:00 UTC, whatever the local time zone.
    assert week_number(ts("2026-11-22T23:59:59")) + 1 == week_number(ts("2026-11-23T00:00:00"))


@pytest.mark.parametrize(
    ("when", "leader"),
    [
        ("2026-11-23T00:00:00", "fishfinger"),  # week 2968, even: the default master
        ("2026-11-29T23:59:59", "fishfinger"),
        ("2026-11-30T00:00:00", "blowfish"),  # week 2969, odd
        ("2026-12-07T00:00:00", "fishfinger"),
        ("2026-12-28T00:00:00", "blowfish"),  # week 2973, across the year end...
        ("2027-01-01T12:00:00", "blowfish"),  # ...the same week, no jump at New Year
        ("2027-01-04T00:00:00", "fishfinger"),  # week 2974
    ],
)
def test_weekly_rotation(when: str, leader: str) -> None:
    now = ts(when)
    order, reasons = preferred_order(cfg(), now)
    assert order[0] == leader
    assert str(week_number(now)) in reasons[0]


def test_rotation_alternates_every_week_through_new_year() -> None:
    leaders = [
        preferred_order(cfg(), ts("2026-12-14T06:00:00") + i * 7 * 86400)[0][0] for i in range(6)
    ]
    assert leaders == ["fishfinger", "blowfish"] * 3 or leaders == ["blowfish", "fishfinger"] * 3


def test_rotation_off_keeps_default_master() -> None:
    c = cfg(rotation="off", default_master="blowfish")
    for i in range(4):
        assert preferred_order(c, EVEN + i * 7 * 86400)[0][0] == "blowfish"


def test_hysteresis_demotes_after_n_failures_and_promotes_after_m_successes() -> None:
    h = NodeHealth()
    seen = []
    for ok in [False, False, False, True, True, True, True, True]:
        h = update_health(h, ok, 3, 5)
        seen.append(h.up)
    assert seen == [True, True, False, False, False, False, False, True]


def test_a_good_round_resets_the_failure_streak() -> None:
    h = NodeHealth()
    for ok in [False, False, True, False, False]:
        h = update_health(h, ok, 3, 5)
    assert h.up and h.fail_streak == 2


def test_steady_state() -> None:
    d = decide(cfg(), results(fishfinger=True, blowfish=True), {}, None, EVEN)
    assert d.roles == Roles("fishfinger", "blowfish", ("fishfinger", "blowfish"))


def test_master_failing_is_not_demoted_before_threshold() -> None:
    prev = {"fishfinger": NodeHealth(True, 1, 0), "blowfish": NodeHealth()}
    d = decide(cfg(), results(fishfinger=False, blowfish=True), prev, None, EVEN)
    assert d.roles is not None and d.roles.master == "fishfinger"
    assert d.health["fishfinger"].fail_streak == 2
    assert any("2 of 3" in r for r in d.reasons)


def test_master_demoted_at_threshold_standby_promoted() -> None:
    prev = {"fishfinger": NodeHealth(True, 2, 0), "blowfish": NodeHealth()}
    d = decide(cfg(), results(fishfinger=False, blowfish=True), prev, None, EVEN)
    assert d.roles is not None
    assert (d.roles.master, d.roles.standby) == ("blowfish", "blowfish")
    assert any("takes over" in r for r in d.reasons)


def test_standby_keeps_pointing_at_dead_node_when_configured() -> None:
    prev = {"fishfinger": NodeHealth(True, 2, 0), "blowfish": NodeHealth()}
    d = decide(
        cfg(standby_when_down="keep"), results(fishfinger=False, blowfish=True), prev, None, EVEN
    )
    assert d.roles is not None and (d.roles.master, d.roles.standby) == ("blowfish", "fishfinger")


def test_never_promote_an_unhealthy_standby() -> None:
    # The preferred master is down and the standby is down too (still recovering):
    # every node is down, so the records stay.
    prev = {"fishfinger": NodeHealth(False, 5, 0), "blowfish": NodeHealth(False, 0, 2)}
    current = Roles("fishfinger", "blowfish")
    d = decide(cfg(), results(fishfinger=False, blowfish=True), prev, current, EVEN)
    assert d.roles is None
    assert any("every node is down" in r for r in d.reasons)


def test_all_down_keeps_current_records() -> None:
    prev = {"fishfinger": NodeHealth(True, 2, 0), "blowfish": NodeHealth(True, 2, 0)}
    d = decide(
        cfg(),
        results(fishfinger=False, blowfish=False),
        prev,
        Roles("fishfinger", "blowfish"),
        EVEN,
    )
    assert d.roles is None


def test_standby_down_while_master_fine_master_stays() -> None:
    prev = {"fishfinger": NodeHealth(), "blowfish": NodeHealth(True, 2, 0)}
    d = decide(cfg(), results(fishfinger=True, blowfish=False), prev, None, EVEN)
    assert d.roles is not None
    assert (d.roles.master, d.roles.standby) == ("fishfinger", "fishfinger")


def test_failback_only_after_recovery_threshold_and_rotation_respected() -> None:
    health = {"fishfinger": NodeHealth(False, 3, 0), "blowfish": NodeHealth()}
    masters = []
    for _ in range(5):
        d = decide(cfg(), results(fishfinger=True, blowfish=True), health, None, EVEN)
        health = d.health
        assert d.roles is not None
        masters.append(d.roles.master)
    assert masters == ["blowfish"] * 4 + ["fishfinger"]
    # In an odd week the recovered fishfinger does not take over: rotation prefers blowfish.
    d = decide(cfg(), results(fishfinger=True, blowfish=True), health, None, EVEN + 7 * 86400)
    assert d.roles is not None and d.roles.master == "blowfish"


def test_pin_overrides_rotation_but_not_health() -> None:
    pin = Pin("blowfish", until=EVEN + 3600)
    d = decide(cfg(), results(fishfinger=True, blowfish=True), {}, None, EVEN, pin)
    assert d.roles is not None and d.roles.master == "blowfish"
    assert any("pinned to blowfish" in r for r in d.reasons)
    # expired: rotation again
    d = decide(cfg(), results(fishfinger=True, blowfish=True), {}, None, EVEN + 7200, pin)
    assert d.roles is not None and d.roles.master == "fishfinger"
    # a pinned node that is down does not lead
    prev = {"blowfish": NodeHealth(True, 2, 0), "fishfinger": NodeHealth()}
    d = decide(cfg(), results(fishfinger=True, blowfish=False), prev, None, EVEN, pin)
    assert d.roles is not None and d.roles.master == "fishfinger"


def test_either_family_failing_fails_the_node() -> None:
    r = [
        ProbeResult("fishfinger", "https", "ipv4", "x", True, "ok"),
        ProbeResult("fishfinger", "https", "ipv6", "x", False, "timeout"),
        *results(blowfish=True),
    ]
    prev = {"fishfinger": NodeHealth(True, 2, 0)}
    d = decide(cfg(), r, prev, None, EVEN)
    assert d.roles is not None and d.roles.master == "blowfish"


def test_informational_probe_failure_does_not_fail_the_node() -> None:
    r = [
        *results(fishfinger=True, blowfish=True),
        ProbeResult("fishfinger", "extra", "ipv4", "x", False, "refused", required=False),
    ]
    prev = {"fishfinger": NodeHealth(True, 2, 0)}
    d = decide(cfg(), r, prev, None, EVEN)
    assert d.roles is not None and d.roles.master == "fishfinger"


def test_three_nodes_preference_order() -> None:
    nodes = dict(BASE["nodes"])  # type: ignore[call-overload]
    nodes["pufferfish"] = {"fqdn": "pufferfish.example.org", "ipv4": "198.51.100.13"}
    c = configmod.parse({**BASE, "nodes": nodes})
    prev = {"fishfinger": NodeHealth(True, 2, 0)}
    r = results(fishfinger=False, blowfish=True, pufferfish=True)
    now = EVEN - (week_number(EVEN) % 3) * 7 * 86400  # a week where fishfinger leads
    d = decide(c, r, prev, None, now)
    assert d.roles is not None
    assert d.roles.order == ("blowfish", "pufferfish", "fishfinger")
    assert (d.roles.master, d.roles.standby) == ("blowfish", "pufferfish")
