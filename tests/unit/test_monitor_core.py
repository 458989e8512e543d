"""The monitor's pure core: plugin output, state transitions, dependencies, who tells,
messages. No clock, no network: ``now`` is given."""

from __future__ import annotations

from typing import Any

import pytest

from kissha.monitor import logic, plugin
from kissha.monitor.logic import Book
from kissha.monitor.model import CRITICAL, OK, UNKNOWN, WARNING, CheckSpec, Outcome, Perf, Result

T0 = 1_795_000_000.0  # a fixed time: tests never read the clock


# -- plugin output ---------------------------------------------------------------------


def test_plugin_first_line_perfdata_and_long_text() -> None:
    out = plugin.parse(
        "DISK OK - free space: / 80180MiB|/=24868028416B;243497277849;257024904396;0;270552530944\n"
        "line two\nline three | 'inode use'=3%;80;90 load1=0.5\nx=1;2;3\n",
        0,
    )
    assert (out.state, out.text) == (OK, "DISK OK - free space: / 80180MiB")
    assert out.long == "line two\nline three"
    assert out.perf == (
        Perf("/", 24868028416.0, "B", "243497277849", "257024904396", 0.0, 270552530944.0),
        Perf("inode use", 3.0, "%", "80", "90"),
        Perf("load1", 0.5),
        Perf("x", 1.0, "", "2", "3"),
    )


@pytest.mark.parametrize(
    ("code", "state", "text"),
    [
        (0, OK, "fine"),
        (1, WARNING, "fine"),
        (2, CRITICAL, "fine"),
        (3, UNKNOWN, "fine"),
        (4, UNKNOWN, "exit code 4: fine"),
        (-9, UNKNOWN, "exit code -9: fine"),
        (127, UNKNOWN, "exit code 127: fine"),
    ],
)
def test_plugin_exit_codes(code: int, state: int, text: str) -> None:
    assert (plugin.parse("fine\n", code).state, plugin.parse("fine\n", code).text) == (state, text)


def test_plugin_bad_perfdata_is_skipped_never_fatal() -> None:
    out = plugin.parse("PING OK|rta=U;1;2 pl=0%;20;60;0; junk 'it''s'=4s bad=abc", 0)
    assert out.perf == (Perf("pl", 0.0, "%", "20", "60", 0.0), Perf("it's", 4.0, "s"))
    assert plugin.parse("", 2).text == "(no output)"
    assert Perf("it's", 4.0, "s").text() == "'it's'=4s"
    assert Perf("rta", 0.059, "ms", "100", "500", 0.0).text() == "rta=0.059ms;100;500;0"


def test_plugin_long_first_line_is_cut() -> None:
    assert len(plugin.parse("x" * 1000, 0).text) == plugin.MAX_TEXT


# -- dependencies ------------------------------------------------------------------------


def spec(cid: str, *depends: str, **kw: Any) -> CheckSpec:
    return CheckSpec(cid, kw.pop("kind", "plugin"), depends=depends, **kw)


def test_dependency_problems_unknown_and_cycles() -> None:
    specs = [spec("a", "b"), spec("b", "c"), spec("c", "a"), spec("d", "nope")]
    problems = logic.dependency_problems(specs)
    assert "d: depends on 'nope', which is no check (see kissha monitor --list)" in problems
    assert "dependency cycle: a -> b -> c -> a" in problems


def test_topological_order_and_blocking() -> None:
    specs = [spec("http", "ping"), spec("ping"), spec("cert", "ping", "http")]
    assert [s.id for s in logic.topological(specs)] == ["ping", "http", "cert"]
    assert logic.blocking(specs[2], {"ping": "OK", "http": "CRITICAL"}) == "http"
    assert logic.blocking(specs[2], {"ping": "OK", "http": "OK"}) is None
    assert logic.blocking(specs[0], {"ping": logic.DEPENDENT}) == "ping"


# -- when checks run ---------------------------------------------------------------------


def test_due_interval_and_spread_are_fixed_per_check() -> None:
    s = spec("ntp", interval=3600.0, spread=600.0)
    assert not logic.due(s, None, T0, "a")  # first seen: waits for its offset
    off = logic.offset(s, "a")
    assert 0 <= off < 600 and off == logic.offset(s, "a") != logic.offset(s, "b")
    rec = {"first_seen": T0}
    assert logic.due(s, rec, T0 + off, "a")
    rec["last_due"] = T0 + off
    assert not logic.due(s, rec, T0 + off + 1800, "a")
    assert logic.due(s, rec, T0 + off + 3600 - 10, "a")  # cron's few seconds early
    assert logic.due(spec("x"), {"first_seen": T0, "last_due": T0}, T0 + 1, "a")


# -- state transitions -------------------------------------------------------------------


def ran(cid: str, state: int, text: str = "", attempts: int = 1) -> Result:
    return Result(cid, Outcome(state, text or f"state {state}"), 0.1, attempts)


def test_fold_since_dependent_and_forgotten_checks() -> None:
    book = Book()
    specs = [spec("ping"), spec("http", "ping")]
    logic.fold(book, specs, {"ping": ran("ping", OK), "http": ran("http", OK)}, T0, 10, 4)
    assert book.checks["http"]["since"] == T0
    logic.fold(
        book,
        specs,
        {"ping": ran("ping", CRITICAL), "http": Result("http", None, dependent_on="ping")},
        T0 + 300,
        10,
        4,
    )
    assert book.checks["ping"]["since"] == T0 + 300
    assert book.checks["http"]["state"] == OK and book.checks["http"]["since"] == T0
    now = logic.states_now(book, specs, T0 + 300, 900)
    assert now == {"ping": "CRITICAL", "http": logic.DEPENDENT}
    logic.fold(book, specs[:1], {"ping": ran("ping", OK)}, T0 + 600, 10, 4)
    assert list(book.checks) == ["ping"]


def test_stale_after_interval_spread_and_limit() -> None:
    s = spec("x", interval=600.0)
    book = Book()
    logic.fold(book, [s], {"x": ran("x", OK)}, T0, 10, 4)
    assert logic.effective(book.checks["x"], s, T0 + 600 + 900, 900) == "OK"
    assert logic.effective(book.checks["x"], s, T0 + 600 + 901, 900) == "STALE"
    assert logic.effective(None, s, T0, 900) == logic.PENDING


def test_flapping_starts_and_settles_with_hysteresis() -> None:
    s = spec("f")
    book = Book()
    states = [OK, CRITICAL, OK, CRITICAL, OK]  # 4 changes in 5 runs
    for i, st in enumerate(states):
        logic.fold(book, [s], {"f": ran("f", st)}, T0 + i, 10, 4)
    assert book.checks["f"]["flapping"]
    assert logic.effective(book.checks["f"], s, T0 + 5, 900) == "FLAPPING"
    for i in range(7):  # the window of 10 slides: changes drop to 2 = 4 // 2
        logic.fold(book, [s], {"f": ran("f", OK)}, T0 + 10 + i, 10, 4)
        if i == 5:
            assert book.checks["f"]["flapping"]
    assert not book.checks["f"]["flapping"]


# -- who tells ---------------------------------------------------------------------------

NODES = ("fishfinger", "blowfish")


def cluster_specs() -> list[CheckSpec]:
    return [
        spec("ping/fishfinger/ipv4", kind="ping", node="fishfinger"),
        spec("ping/blowfish/ipv4", kind="ping", node="blowfish"),
        spec("https/fishfinger/ipv4", "ping/fishfinger/ipv4", kind="probe", node="fishfinger"),
        spec("https/blowfish/ipv4", "ping/blowfish/ipv4", kind="probe", node="blowfish"),
        spec("disk", kind="disk", scope="local"),
    ]


def book_with(states: dict[str, int | str], now: float = T0) -> Book:
    book = Book()
    for cid, st in states.items():
        if st == logic.DEPENDENT:
            book.checks[cid] = {"first_seen": now, "last_seen": now, "dependent_on": "x"}
        else:
            book.checks[cid] = {"first_seen": now, "last_seen": now, "state": st, "text": "t"}
    return book


def healthy(**changes: int | str) -> Book:
    states: dict[str, int | str] = {s.id: OK for s in cluster_specs()}
    states.update({k.replace("__", "/"): v for k, v in changes.items()})
    return book_with(states)


def test_teller_is_the_first_node_seen() -> None:
    specs = cluster_specs()
    state = logic.states_now(healthy(), specs, T0, 900)
    seen = logic.reachable(specs, state, "blowfish")
    assert seen == {"fishfinger", "blowfish"}
    assert logic.teller(NODES, "blowfish", seen) == "fishfinger"
    assert logic.teller(NODES, "blowfish", {"blowfish"}) == "blowfish"
    assert logic.teller(NODES, "fishfinger", {"fishfinger"}) == "fishfinger"


def run_plan(book: Book, me: str, box: dict[str, Any], now: float = T0, **kw: Any) -> logic.Plan:
    return logic.plan(
        book, cluster_specs(), box, me=me, order=NODES, now=now, stale_after=900, **kw
    )


def deliver(box: dict[str, Any], p: logic.Plan, delivered: bool = True) -> None:
    told = box.setdefault("told", {})
    told.update(p.assumed)
    if delivered:
        told.update(p.on_delivery)


def test_a_change_seen_by_both_nodes_is_told_once_and_its_end_once() -> None:
    boxes: dict[str, dict[str, Any]] = {n: {} for n in NODES}
    down = book_with({**{s.id: OK for s in cluster_specs()}, "https/fishfinger/ipv4": CRITICAL})
    sent = []
    for me in NODES:
        p = run_plan(down, me, boxes[me])
        deliver(boxes[me], p)
        sent += [(me, p.message.subject)] if p.message else []
    assert sent == [
        (
            "fishfinger",
            "kissha monitor (fishfinger): CRITICAL https/fishfinger/ipv4 "
            "[C:1 W:0 U:0 stale:0 OK:4]",
        )
    ]
    up = healthy()
    sent = []
    for me in NODES:
        p = run_plan(up, me, boxes[me], T0 + 300)
        deliver(boxes[me], p)
        sent += [(me, p.message.kind)] if p.message else []
    assert sent == [("fishfinger", "change")]


def test_a_pulled_cable_is_told_once_by_the_node_that_sees_it_and_so_is_its_end() -> None:
    """fishfinger's cable is pulled: blowfish sees fishfinger gone (its https checks wait
    on the ping: one message); fishfinger sees blowfish gone but cannot deliver. Plugged
    back: blowfish, which told the problem, tells its end; fishfinger tells nothing."""
    boxes: dict[str, dict[str, Any]] = {n: {} for n in NODES}
    from_b = healthy(ping__fishfinger__ipv4=CRITICAL, https__fishfinger__ipv4=logic.DEPENDENT)
    from_f = healthy(ping__blowfish__ipv4=CRITICAL, https__blowfish__ipv4=logic.DEPENDENT)
    pb = run_plan(from_b, "blowfish", boxes["blowfish"])
    pf = run_plan(from_f, "fishfinger", boxes["fishfinger"])
    assert pb.message is not None and pf.message is not None
    assert [ln.id for ln in pb.message.changed] == ["ping/fishfinger/ipv4"]
    deliver(boxes["blowfish"], pb)
    deliver(boxes["fishfinger"], pf, delivered=False)  # its cable is out
    sent = []
    for me in NODES:
        p = run_plan(healthy(), me, boxes[me], T0 + 300)
        deliver(boxes[me], p)
        sent += [(me, [ln.id + " " + ln.state for ln in p.message.changed])] if p.message else []
    assert sent == [("blowfish", ["ping/fishfinger/ipv4 OK"])]


def test_local_checks_are_told_by_their_node_and_quiet_hours_hold_changes() -> None:
    box: dict[str, Any] = {}
    book = healthy(disk=WARNING)
    assert run_plan(book, "fishfinger", {}).message is not None  # its own disk
    p = run_plan(book, "blowfish", box, quiet=["disk"])
    assert p.message is None and not p.on_delivery
    p = run_plan(book, "blowfish", box)  # quiet hours over: told now
    assert p.message is not None and p.message.changed[0].id == "disk"


def test_renotify_lists_what_stays_broken_and_weekly_is_sent_when_all_is_well() -> None:
    box: dict[str, Any] = {}
    book = healthy(https__fishfinger__ipv4=CRITICAL)
    deliver(box, run_plan(book, "fishfinger", box))
    assert run_plan(book, "fishfinger", box, T0 + 60).message is None
    book = book_with(
        {**{c: OK for c in book.checks}, "https/fishfinger/ipv4": CRITICAL}, T0 + 86400
    )
    p = run_plan(book, "fishfinger", box, T0 + 86400, renotify=True)
    assert p.message is not None and p.message.kind == "renotify"
    assert [ln.id for ln in p.message.broken] == ["https/fishfinger/ipv4"]
    assert "still broken: 1 check" in p.message.subject
    w = run_plan(healthy(), "blowfish", {}, weekly=True)
    assert w.message is not None and w.message.kind == "weekly"
    assert "Every check this node tells about is OK." in w.message.body


def test_message_lists_changes_broken_stale_and_waiting_checks() -> None:
    book = healthy(ping__blowfish__ipv4=CRITICAL, https__blowfish__ipv4=logic.DEPENDENT)
    book.checks["https/blowfish/ipv4"]["dependent_on"] = "ping/blowfish/ipv4"
    book.checks["disk"]["last_seen"] = T0 - 3600  # not run for an hour
    p = run_plan(book, "fishfinger", {})
    assert p.message is not None
    assert p.message.severity == "critical"
    body = p.message.body
    assert "Changed:\n  CRITICAL  ping/blowfish/ipv4  (was OK)  t\n" in body
    assert "  STALE     disk                (was OK)  not run for too long (last: t)" in body
    assert "Stale (not run for too long): disk" in body
    assert (
        "Not alerted, their dependency is not OK:\n  ping/blowfish/ipv4: https/blowfish/ipv4"
        in body
    )
    assert p.message.subject.endswith("[C:1 W:0 U:0 stale:1 OK:2]")


def test_quiet_ranges_wrap_midnight() -> None:
    ranges = [(22 * 60, 7 * 60)]
    assert logic.in_quiet(ranges, 23 * 60) and logic.in_quiet(ranges, 60)
    assert not logic.in_quiet(ranges, 7 * 60) and not logic.in_quiet(ranges, 12 * 60)


def test_last_moment_daily_and_weekly() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 25, 6, 30, tzinfo=UTC).timestamp()  # a Wednesday
    daily = logic.last_moment(now, 7 * 60, None, UTC)
    assert daily == datetime(2026, 11, 24, 7, 0, tzinfo=UTC).timestamp()
    weekly = logic.last_moment(now, 7 * 60, 0, UTC)
    assert weekly == datetime(2026, 11, 23, 7, 0, tzinfo=UTC).timestamp()
