"""State file, report rendering and CLI parsing: the small pieces around a run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from kissha.cli import main, parse_duration, parse_now
from kissha.core.model import Decision, Node, NodeHealth, Pin, Roles
from kissha.core.report import Outcome, RunReport
from kissha.core.zonefile import plan_zone
from kissha.engine import state as statefile
from kissha.errors import UsageError
from kissha.output import MAX_DIFF_LINES, as_json, text


def test_state_round_trip(tmp_path: Path) -> None:
    st = statefile.State(
        health={"a": NodeHealth(False, 3, 0)},
        roles=Roles("b", "a", ("b", "a")),
        pin=Pin("b", 123.0),
    )
    st.add_event(1.0, "failover", "master a -> b")
    statefile.save(tmp_path, st)
    back, warning = statefile.load(tmp_path)
    assert warning is None
    assert back.to_json() == st.to_json()


def test_events_are_bounded(tmp_path: Path) -> None:
    st = statefile.State()
    for i in range(statefile.MAX_EVENTS + 50):
        st.add_event(float(i), "x", str(i))
    assert len(st.events) == statefile.MAX_EVENTS
    assert st.events[0].message == "50"


def test_corrupt_state_is_set_aside_and_a_fresh_start_made(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    st, warning = statefile.load_readonly(tmp_path)  # a dry run moves nothing
    assert st.roles is None and warning and "unreadable state" in warning
    assert (tmp_path / "state.json").exists()
    st, warning = statefile.load(tmp_path)
    (aside,) = tmp_path.glob("state.json.bad-*")
    assert warning and f"set aside as {aside.name}; starting from a fresh state" in warning
    assert not (tmp_path / "state.json").exists()
    assert aside.read_text() == "{not json"


def test_unknown_state_version_is_not_trusted(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(json.dumps({"version": 99}))
    st, warning = statefile.load(tmp_path)
    assert st.health == {} and warning and "unknown state version 99" in warning


ZONE = """$ORIGIN {z}.
@ IN SOA ns. host. 1700000000 1h 15m 1w 1h
{records}"""


def report_with(zones: int, records: int) -> RunReport:
    a = Node("a", "a.example.org", "198.51.100.11")
    b = Node("b", "b.example.org", "198.51.100.12")
    plans = []
    for i in range(zones):
        recs = "\n".join(f"w{j} 300 IN A 198.51.100.11 ; Enable failover" for j in range(records))
        body = ZONE.format(z=f"z{i}.example", records=recs)
        plan = plan_zone(
            f"z{i}.example.", Path(f"z{i}.zone"), body, {"master": b, "standby": a}, now=1.8e9
        )
        plans.append(plan)
    decision = Decision(Roles("b", "a", ("b", "a")), {"a": NodeHealth(False, 3, 0)}, ("why",))
    return RunReport(
        1.8e9, False, (), decision, Roles("a", "b"), zones, tuple(plans), Outcome.CHANGED, "ok"
    )


def test_report_shows_full_diffs_up_to_the_cap_then_counts() -> None:
    small = text(report_with(2, 3))
    assert small.count("@@ ") == 2 * 4  # 3 records + the serial, per zone
    big = text(report_with(40, 50))
    shown = big.count("\n+w")
    assert shown <= MAX_DIFF_LINES
    assert "... and 36 more zone(s), each with a new serial and:" in big
    assert "1800 x A 198.51.100.11 -> 198.51.100.12 (master)" in big
    data = as_json(report_with(40, 50))
    assert data["schema"] == "kissha.failover/1"
    assert sum(len(c["records"]) for c in data["changes"]) == 2000


@pytest.mark.parametrize(
    ("text_", "seconds"),
    [("90m", 5400), ("2h", 7200), ("1d12h", 129600), ("1w", 604800), ("45", 45)],
)
def test_parse_duration(text_: str, seconds: float) -> None:
    assert parse_duration(text_) == seconds


@pytest.mark.parametrize("bad", ["", "2 hours", "h", "1x", "-5m"])
def test_parse_duration_rejects(bad: str) -> None:
    with pytest.raises(UsageError, match="not a duration"):
        parse_duration(bad)


def test_parse_now() -> None:
    assert parse_now("2026-01-05T00:00:00Z") == 1767571200
    assert parse_now("2026-01-05T01:00:00+01:00") == 1767571200
    assert parse_now("2026-01-05T00:00:00") == 1767571200  # naive means UTC
    with pytest.raises(UsageError, match="not an ISO 8601 time"):
        parse_now("next tuesday")


def test_cli_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main([]) == 2  # no command: help, exit 2
    missing = tmp_path / "nope.toml"
    assert main(["-c", str(missing), "failover"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"kissha: {missing}: cannot read")
    assert main(["-c", str(missing), "failover", "--now", "soon"]) == 2
    assert "--now: not an ISO 8601 time" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "code", "fragment"),
    [
        (RuntimeError("boom"), 70, "internal error: RuntimeError: boom"),
        (
            PermissionError(13, "Permission denied", "/var/lib/kissha/lock"),
            8,
            "kissha: /var/lib/kissha/lock: Permission denied",
        ),
        (UsageError("bad"), 2, "kissha: bad"),
    ],
)
def test_debug_adds_the_traceback_and_keeps_the_exit_code(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    code: int,
    fragment: str,
) -> None:
    import kissha.cli

    def fail(args: object) -> int:
        raise error

    monkeypatch.setattr(kissha.cli, "_dispatch", fail)
    assert main(["failover"]) == code
    plain = capsys.readouterr().err
    assert fragment in plain and "Traceback" not in plain
    assert len(plain.strip().splitlines()) == 1
    assert main(["--debug", "failover"]) == code
    debug = capsys.readouterr().err
    assert fragment in debug and "Traceback (most recent call last)" in debug


def test_exit_codes_of_partial_runs() -> None:
    from kissha.core.report import ZoneFailure

    report = report_with(2, 1)
    assert report.exit_code == 1
    report = replace(
        report, failed=(ZoneFailure("z0.example.", Path("z0.zone"), "verify", "wrong answer"),)
    )
    assert report.exit_code == 7  # some changed, one could not be
    assert [p.zone for p in report.done] == ["z1.example."]
    report = replace(report, outcome=Outcome.ROLLED_BACK)
    assert report.exit_code == 3
    report = replace(report, outcome=Outcome.NOT_CHANGED)
    assert report.exit_code == 5
    report = replace(report, outcome=Outcome.UNCHANGED, plans=())
    assert report.exit_code == 5
    report = replace(report, failed=())
    assert report.exit_code == 0
    report = replace(report, error_code=8)
    assert report.exit_code == 8
