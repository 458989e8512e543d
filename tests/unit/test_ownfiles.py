"""kissha's own files (state.json, notify.json, tofu.json, history.jsonl, monitor.json,
certs.json): whatever they
hold, their loaders return a well-formed value, or set the file aside with a one-line
warning naming it and start afresh. Never an exception."""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kissha import ownfile
from kissha.certs import due as duerules
from kissha.certs import records as certrecords
from kissha.certs import summary as certsummary
from kissha.certs.due import CertInfo, Window
from kissha.core.model import Pin, iso
from kissha.engine import state as statefile
from kissha.monitor import logic as monlogic
from kissha.monitor import metrics as monmetrics
from kissha.monitor import render as monrender
from kissha.monitor import store as monstore
from kissha.monitor.logic import Book
from kissha.monitor.report import MonitorReport
from kissha.notify import deliver, outbox, plan, render
from kissha.notify.kinds import KINDS, kind_of
from kissha.observe import history, status, statustext, timeline, verdict
from kissha.ownfile import MAX_TIME
from kissha.probes.tofu import ProbeContext, Untrusted
from tests.unit.test_events import probes, step
from tests.unit.test_monitor_core import NODES, cluster_specs
from tests.unit.test_policy import EVEN, cfg

# -- valid files, as kissha writes them ------------------------------------------------


def valid_state() -> dict[str, Any]:
    s = statefile.State()
    up = probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6")
    down = probes(fishfinger="ipv4", blowfish="ipv4+ipv6")
    step(s, up, EVEN)
    for i in range(3):
        step(s, down, EVEN + 60 * (i + 1))
    s.pin = Pin("blowfish", EVEN + 3600)
    s.watch = {"since": EVEN}
    s.last_run = {
        "time": EVEN + 180,
        "outcome": "changed",
        "exit": 1,
        "duration": 0.2,
        "probes": [
            {
                "node": "fishfinger",
                "probe": "https",
                "family": "ipv6",
                "ok": False,
                "required": True,
                "detail": "refused",
                "warning": None,
                "latency_ms": 12.5,
            }
        ],
    }
    return s.to_json()


def valid_outbox() -> dict[str, Any]:
    box = plan.Box(
        cursor=3,
        pending=[
            {
                "id": "e3",
                "kind": "failover",
                "severity": "critical",
                "time": EVEN,
                "node": "blowfish",
                "title": "kissha: failover",
                "text": "body\n",
                "events": [{"id": 3, "kind": "failover", "time": EVEN, "message": "m"}],
                "fields": {"from": "fishfinger", "to": "blowfish"},
            }
        ],
        sent=[EVEN - 10],
        reminded={"node-down:fishfinger": EVEN - 60},
        failures=1,
        next_try=EVEN + 30,
    )
    return json.loads(outbox.Outbox({"hook": box}).dumps())  # type: ignore[no-any-return]


def valid_tofu() -> dict[str, Any]:
    entry = {
        "fingerprint": "sha256:" + "AB" * 32,
        "not_after": "2027-01-01T00:00:00Z",
        "first_seen": "2026-01-01T00:00:00Z",
    }
    return {"version": 1, "fingerprints": {"fishfinger": {"gemini": entry}}}


def valid_monitor() -> dict[str, Any]:
    specs = cluster_specs()
    book = Book()
    book.checks = {
        "ping/fishfinger/ipv4": {
            "first_seen": EVEN - 600,
            "last_due": EVEN,
            "last_seen": EVEN,
            "last_run": EVEN,
            "since": EVEN - 300,
            "state": 2,
            "text": "unreachable",
            "perf": ["rta=0.5ms;1;2"],
            "duration": 0.2,
            "attempts": 3,
            "history": [0, 2, 2],
            "flapping": False,
        },
        "https/fishfinger/ipv4": {
            "first_seen": EVEN - 600,
            "last_seen": EVEN,
            "dependent_on": "ping/fishfinger/ipv4",
        },
    }
    book.channels = {
        "mail": {
            "told": {
                "ping/fishfinger/ipv4": {"state": "CRITICAL", "by": "fishfinger", "since": EVEN}
            },
            "renotified": EVEN - 3600,
            "weekly": EVEN - 86400,
            "sent": [EVEN - 60],
        }
    }
    book.last_run = {
        "time": EVEN,
        "node": "fishfinger",
        "checks": len(specs),
        "ran": 1,
        "duration": 0.3,
    }
    return {
        "version": 1,
        "checks": book.checks,
        "channels": book.channels,
        "last_run": book.last_run,
    }


def valid_certs() -> dict[str, Any]:
    info = CertInfo(EVEN - 86400, EVEN + 89 * 86400, "Pebble Intermediate", False, "0a1b")
    return {
        "version": 1,
        "ari": True,
        "names": {
            "example.org": {
                "kind": "site",
                "issuer": info.issuer,
                "not_after": info.not_after,
                "due_at": EVEN + 59 * 86400,
                "checked": EVEN,
                "ari_next": EVEN + 6 * 3600,
                "window": [EVEN + 58 * 86400, EVEN + 60 * 86400],
                "serial": info.serial,
                "file": [1, 2, 3, 4, 5, 6],
                "info": {
                    "not_before": info.not_before,
                    "not_after": info.not_after,
                    "issuer": info.issuer,
                    "placeholder": info.placeholder,
                    "serial": info.serial,
                },
            },
            "www.example.org": {
                "kind": "site",
                "issuer": "",
                "not_after": None,
                "due_at": None,
                "checked": EVEN,
                "failures": 2,
                "retry_at": EVEN + 7200,
                "error": "CA: rateLimited",
                "file": None,
                "info": None,
            },
        },
    }


def valid_history() -> list[dict[str, Any]]:
    return [
        {"t": int(EVEN) - 120, "r": 2, "s": {"fishfinger/ipv4": [2, 0, 2, 10.0, 25.0, 15.0]}},
        {"t": int(EVEN) - 60, "r": 1, "s": {"fishfinger/ipv6": [1, 1, 0, 0.0, 0.0, 0.0]}},
    ]


# -- what "well-formed" means: every reader of the value works --------------------------


def check_state(s: statefile.State) -> None:
    doc = s.to_json()
    text = json.dumps(doc, allow_nan=False)
    assert statefile.State.from_json(json.loads(text)).to_json() == doc
    for e in s.events:
        iso(e.time)
        kind_of(e)
    for p in s.problems.values():
        iso(p.since)
    if s.pin is not None and s.pin.until is not None:
        iso(s.pin.until)
    grid = timeline.Grid.over(EVEN - 3 * 86400, EVEN, 900)
    timeline.figure([("fishfinger", ("ipv4", "ipv6"))], [], s.events, grid)
    last = s.last_run.get("time")
    obs = verdict.Observation(
        now=EVEN,
        views=(),
        probes=(),
        nodes=("fishfinger", "blowfish"),
        last_run=float(last) if isinstance(last, int | float) else None,
        stale_after=300,
        roles=s.roles,
        health={n: h.up for n, h in s.health.items()},
        events=tuple(s.events[-status.LAST_EVENTS :]),
    )
    report = verdict.Report(obs, verdict.judge(obs))
    statustext.text(report)
    json.dumps(statustext.as_json(report), allow_nan=False)
    c = cfg()
    ctx = render.Context(c, "fishfinger", EVEN, None, s)
    plan.notices(s.events, frozenset(KINDS), None, ctx)
    plan.reminder(plan.Box(), s.problems, frozenset(KINDS), None, 3600, ctx)
    # And the next run folds into it.
    step(s, probes(fishfinger="ipv4+ipv6", blowfish="ipv4+ipv6"), EVEN + 600)
    if s.pin is not None:
        s.pin.active(EVEN)


def check_outbox(box: outbox.Outbox) -> None:
    text = box.dumps()
    assert outbox.parse(text.encode()).dumps() == text
    for b in box.channels.values():
        for n in b.pending:
            deliver.payload(n)
            deliver.delivery_id(n)
        out = plan.select(b, EVEN, 5)
        plan.settle(b, out, ["refused"] * len(out), EVEN, 3600)


def check_tofu(context: ProbeContext) -> None:
    for node, entries in context.tofu.items():
        for probe in list(entries):
            with contextlib.suppress(Untrusted):
                context.trust(node, probe, "sha256:00", None, EVEN, 30)


def check_monitor(book: Book) -> None:
    with tempfile.TemporaryDirectory() as d:
        monstore.save(Path(d), book)
        assert monstore.parse((Path(d) / "monitor.json").read_bytes()) == book
    specs = cluster_specs()
    states = monlogic.states_now(book, specs, EVEN, 900)
    report = MonitorReport(EVEN, "fishfinger", specs, book, states, ran=False)
    monrender.text(report)
    json.dumps(monrender.as_json(report), allow_nan=False)
    monrender.nagios_line(report)
    monmetrics.render(report)
    for box in book.channels.values():
        for key in ("renotified", "weekly"):  # as run.tell reads them
            float(box.get(key, EVEN))
        [float(t) for t in box.get("sent", [])]
        for me in NODES:
            monlogic.plan(
                book,
                specs,
                box,
                me=me,
                order=NODES,
                now=EVEN,
                stale_after=900,
                renotify=True,
                weekly=True,
            )
    monlogic.fold(book, specs, {}, EVEN + 60, 5, 3)


def check_certs(records: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as d:
        certrecords.save(Path(d), records)
        dropped: list[str] = []
        assert certrecords.parse((Path(d) / "certs.json").read_bytes(), dropped) == records
        assert dropped == []
        rows = certsummary.load(Path(d))
    certsummary.text(rows)
    json.dumps(certsummary.as_json(rows), allow_nan=False)
    certsummary.html_section(rows)
    certsummary.metrics(rows)
    for rec in records["names"].values():  # as certs.run reads a record
        if rec.get("info"):
            CertInfo(**rec["info"])
        if rec.get("window"):
            Window(rec["window"][0], rec["window"][1])
        assert rec.get("ari_next", 0) <= MAX_TIME
        iso(rec.get("retry_at", EVEN))
        duerules.backoff(int(rec.get("failures", 0)) + 1, None)


def check_history(buckets: list[history.Bucket]) -> None:
    grid = timeline.Grid.over(EVEN - 3 * 86400, EVEN, 900)
    timeline.figure([("fishfinger", ("ipv4", "ipv6"))], buckets, [], grid)
    json.dumps(history.summary(buckets), allow_nan=False)
    for b in buckets:
        history.Bucket.from_line(b.to_line())


# -- one loader per file, as a run calls it ---------------------------------------------

Loaded = tuple[Any, list[str]]


def load_state(d: Path) -> Loaded:
    s, warning = statefile.load(d)
    return s, [warning] if warning else []


def load_outbox(d: Path) -> Loaded:
    return outbox.load(d)


def load_tofu(d: Path) -> Loaded:
    context = ProbeContext.load(d)
    return context, context.warnings


def load_monitor(d: Path) -> Loaded:
    book, warning = monstore.load(d)
    return book, [warning] if warning else []


def load_certs(d: Path) -> Loaded:
    return certrecords.load(d)


FILES: dict[str, tuple[Callable[[Path], Loaded], Callable[[Any], None], Callable[[Any], bool]]] = {
    "state.json": (load_state, check_state, lambda s: s.to_json() == statefile.State().to_json()),
    "notify.json": (load_outbox, check_outbox, lambda b: b.channels == {}),
    "tofu.json": (load_tofu, check_tofu, lambda c: c.tofu == {}),
    "monitor.json": (load_monitor, check_monitor, lambda b: b == Book()),
    "certs.json": (load_certs, check_certs, lambda r: r == certrecords.fresh()),
}
VALID = {
    "state.json": valid_state,
    "notify.json": valid_outbox,
    "tofu.json": valid_tofu,
    "monitor.json": valid_monitor,
    "certs.json": valid_certs,
}
# certs.json keeps what is sound when only members of a name's record are damaged (the
# back-off against the CA's rate limits): the file as it was is set aside, the rest kept.
PARTIAL = "the rest kept"


def load_and_check(name: str, d: Path, raw: bytes) -> None:
    """Write ``raw`` as ``name``, load it: a well-formed value, or the file set aside with
    one warning line naming it and a fresh value."""
    path = d / name
    path.write_bytes(raw)
    loader, check, fresh = FILES[name]
    value, warnings = loader(d)
    if warnings:
        (warning,) = warnings
        assert "\n" not in warning and str(path) in warning
        assert f"set aside as {name}.bad-" in warning, warning
        asides = sorted(d.glob(f"{name}.bad-*"))
        assert asides and asides[-1].name in warning
        assert asides[-1].read_bytes() == raw
        if PARTIAL in warning:
            assert loader(d) == (value, [])  # the cleaned records, written at once
        else:
            assert not path.exists()
            assert fresh(value)
    check(value)


# -- the cases of issue 8, one by one ---------------------------------------------------

CASES = {
    "empty": b"",
    "truncated": b'{"version": 1, "health": {"fish',
    "garbage": b"\x00\xff\xfe garbage \x80",
    "not UTF-8": '{"version": 1, "health": {"fischförmig": 1}}'.encode("latin-1"),
    "an array": b"[]",
    "null": b"null",
    "a string": b'"x"',
    "health an array": b'{"health": []}',
    "NaN": b"NaN",
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "a huge number": b"1" * 5000,
}
WRONG_SHAPE: dict[str, dict[str, Any]] = {
    "state.json": {
        "health an array": {"version": 1, "health": []},
        "a node's health a string": {"version": 1, "health": {"a": "up"}},
        "up a number": {"version": 1, "health": {"a": {"up": 1, "fail_streak": 0, "ok_streak": 0}}},
        "roles without a master": {"version": 1, "roles": {"standby": "b"}},
        "roles.order a string": {
            "version": 1,
            "roles": {"master": "a", "standby": "b", "order": "ab"},
        },
        "an event's time a string": {
            "version": 1,
            "events": [{"id": 1, "time": "x", "kind": "failover", "message": "m"}],
        },
        "an event's time NaN": {
            "version": 1,
            "events": [{"id": 1, "time": float("nan"), "kind": "failover", "message": "m"}],
        },
        "an event's time past the year 9999": {
            "version": 1,
            "events": [{"id": 1, "time": 1e300, "kind": "failover", "message": "m"}],
        },
        "a negative count": {"version": 1, "counters": {"failovers": -1}},
        "a boolean seq": {"version": 1, "seq": True},
        "problems an array": {"version": 1, "problems": []},
        "a probe's latency a string": {
            "version": 1,
            "last_run": {
                "probes": [
                    {
                        "node": "a",
                        "probe": "https",
                        "family": "ipv4",
                        "ok": True,
                        "detail": "",
                        "latency_ms": "fast",
                    }
                ]
            },
        },
        "an unknown family": {
            "version": 1,
            "families": {"a": {"ipx": {"up": True, "fail_streak": 0, "ok_streak": 0}}},
        },
    },
    "notify.json": {
        "channels an array": {"version": 1, "channels": []},
        "a box a number": {"version": 1, "channels": {"hook": 3}},
        "pending a dict": {"version": 1, "channels": {"hook": {"pending": {}}}},
        "a notice without a title": {
            "version": 1,
            "channels": {
                "hook": {
                    "pending": [
                        {"id": "e1", "kind": "failover", "severity": "critical", "time": 1.0}
                    ]
                }
            },
        },
        "sent strings": {"version": 1, "channels": {"hook": {"sent": ["x"]}}},
    },
    "tofu.json": {
        "no fingerprints": {"version": 1},
        "a node an array": {"version": 1, "fingerprints": {"fish": []}},
        "a fingerprint a number": {
            "version": 1,
            "fingerprints": {"fish": {"gemini": {"fingerprint": 1}}},
        },
    },
    "monitor.json": {
        "unknown version": {"version": 2},
        "checks an array": {"version": 1, "checks": []},
        "a record a string": {"version": 1, "checks": {"disk": "OK"}},
        "a state out of range": {"version": 1, "checks": {"disk": {"state": 7}}},
        "a state a name": {"version": 1, "checks": {"disk": {"state": "OK"}}},
        "last_seen a string": {"version": 1, "checks": {"disk": {"last_seen": "now"}}},
        "history a number": {"version": 1, "checks": {"disk": {"history": 3}}},
        "perf not strings": {"version": 1, "checks": {"disk": {"perf": [1]}}},
        "renotified a string (run.py's float())": {
            "version": 1,
            "channels": {"mail": {"renotified": "yesterday"}},
        },
        "told an array": {"version": 1, "channels": {"mail": {"told": []}}},
        "a told entry's by a number": {
            "version": 1,
            "channels": {"mail": {"told": {"disk": {"state": "CRITICAL", "by": 1}}}},
        },
        "sent not times": {"version": 1, "channels": {"mail": {"sent": ["x"]}}},
        "last_run a list": {"version": 1, "last_run": []},
        "last_run.time past the year 9999": {"version": 1, "last_run": {"time": 1e300}},
        "an integer past a float's range": {"version": 1, "last_run": {"duration": 10**400}},
        "a damaged record under a key with a newline": {"version": 1, "checks": {"a\nb": []}},
    },
    "certs.json": {
        "unknown version": {"version": 2, "names": {}},
        "names an array": {"version": 1, "names": []},
        "names a string": {"version": 1, "names": "example.org"},
    },
}


def cases() -> list[tuple[str, str, bytes]]:
    out = [(name, case, raw) for name in FILES for case, raw in CASES.items()]
    for name, shapes in WRONG_SHAPE.items():
        out += [(name, case, json.dumps(doc).encode()) for case, doc in shapes.items()]
    return out


@pytest.mark.parametrize(("name", "case", "raw"), cases(), ids=[f"{n}-{c}" for n, c, _ in cases()])
def test_a_damaged_file_is_set_aside_with_a_warning_and_a_fresh_start(
    tmp_path: Path, name: str, case: str, raw: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(raw)
    loader, check, fresh = FILES[name]
    value, warnings = loader(tmp_path)
    (aside,) = tmp_path.glob(f"{name}.bad-*")
    assert aside.read_bytes() == raw  # kept as it was, for whoever wants to look
    (warning,) = warnings
    assert warning.startswith(("notify: ", "")) and f"{path}: " in warning
    assert f"set aside as {aside.name}" in warning and "\n" not in warning
    assert not path.exists() and fresh(value)
    check(value)


@pytest.mark.parametrize("name", list(FILES))
def test_valid_files_load_as_they_are(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text(json.dumps(VALID[name]()))
    loader, check, fresh = FILES[name]
    value, warnings = loader(tmp_path)
    assert warnings == [] and not fresh(value)
    check(value)


# Damaged members of one name's record in certs.json: dropped alone, the rest (the
# back-off above all) kept; the file as it was is set aside.
CERTS_MEMBERS: dict[str, tuple[str, Any]] = {
    "window not a pair": ("window", [1.0]),
    "window strings": ("window", ["a", "b"]),
    "info without not_after": ("info", {"not_before": 1.0, "issuer": "x"}),
    "info with an unknown field": (
        "info",
        {"not_before": 1.0, "not_after": 2.0, "issuer": "x", "colour": "red"},
    ),
    "info.placeholder a string": (
        "info",
        {"not_before": 1.0, "not_after": 2.0, "issuer": "x", "placeholder": "no"},
    ),
    "ari_next a string": ("ari_next", "soon"),
    "file a string": ("file", "x"),
    "not_after a string": ("not_after", "2027-01-01"),
    "checked past the year 9999": ("checked", 1e300),
}


@pytest.mark.parametrize(("case", "member"), CERTS_MEMBERS.items(), ids=list(CERTS_MEMBERS))
def test_a_damaged_certs_member_is_dropped_and_the_back_off_kept(
    tmp_path: Path, case: str, member: tuple[str, Any]
) -> None:
    key, value = member
    doc = valid_certs()
    doc["names"]["www.example.org"][key] = value  # the name in back-off
    doc["names"]["example.org"][key] = value
    raw = json.dumps(doc).encode()
    path = tmp_path / "certs.json"
    path.write_bytes(raw)
    records, warnings = certrecords.load(tmp_path)
    (aside,) = tmp_path.glob("certs.json.bad-*")
    assert aside.read_bytes() == raw
    (warning,) = warnings
    assert warning.startswith(f"certs: {path}: 2 damaged member(s) dropped (names.")
    assert f"set aside as {aside.name}; the rest kept" in warning and "\n" not in warning
    for name in ("example.org", "www.example.org"):
        assert key not in records["names"][name]
    kept = records["names"]["www.example.org"]
    assert (kept["failures"], kept["retry_at"]) == (2, EVEN + 7200)
    assert certrecords.load(tmp_path) == (records, [])  # written cleaned at once
    check_certs(records)


def test_any_count_of_failures_backs_off_a_day_at_most(tmp_path: Path) -> None:
    doc = valid_certs()
    doc["names"]["www.example.org"]["failures"] = 2**40  # 2.0 ** 2**40 overflowed
    (tmp_path / "certs.json").write_text(json.dumps(doc))
    records, warnings = certrecords.load(tmp_path)
    assert warnings == [] and duerules.backoff(2**40 + 1, None) == 86400.0
    check_certs(records)


def test_a_certs_record_that_is_no_object_is_dropped_alone(tmp_path: Path) -> None:
    doc = valid_certs()
    doc["names"]["example.org"] = []
    (tmp_path / "certs.json").write_text(json.dumps(doc))
    records, (warning,) = certrecords.load(tmp_path)
    assert "1 damaged member(s) dropped (names.example.org: not an object)" in warning
    assert list(records["names"]) == ["www.example.org"]
    # A key from the damaged file is escaped: the warning stays one line.
    (tmp_path / "certs.json").write_text(json.dumps({"version": 1, "names": {"x\ny": 1}}))
    _, (warning,) = certrecords.load(tmp_path)
    assert "(names.x\\ny: not an object)" in warning and "\n" not in warning


def test_dry_runs_and_status_read_damaged_certs_and_monitor_files_but_move_nothing(
    tmp_path: Path,
) -> None:
    doc = valid_certs()
    doc["names"]["example.org"]["window"] = "x"
    (tmp_path / "certs.json").write_text(json.dumps(doc))
    records, (warning,) = certrecords.load(tmp_path, readonly=True)
    assert warning.endswith("; a real run sets it aside") and "window" not in str(records)
    assert [r.name for r in certsummary.load(tmp_path)] == ["example.org", "www.example.org"]
    (tmp_path / "monitor.json").write_text('{"version": 1, "checks": []}')
    book, mwarning = monstore.load(tmp_path, readonly=True)
    assert mwarning == (
        f"{tmp_path / 'monitor.json'}: unreadable (checks: not an object); a real run sets it aside"
    )
    assert book == Book()
    assert list(tmp_path.glob("*.bad-*")) == []


def test_dry_runs_and_status_read_a_damaged_state_but_move_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b'{"version": 1, "health": []}')
    s, warning = statefile.load_readonly(tmp_path)
    assert warning == (
        f"{path}: unreadable state (health: not an object); a real run sets it aside"
    )
    assert path.exists() and s.health == {}
    context = ProbeContext.load(tmp_path, readonly=True)
    assert context.warnings == []


def test_only_the_newest_copies_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    for i in range(ownfile.KEEP_BAD + 3):
        path.write_text(f"bad {i}")
        assert "set aside as state.json.bad-" in ownfile.set_aside(path, now=EVEN + i)
    kept = sorted(p.read_text() for p in tmp_path.glob("state.json.bad-*"))
    assert kept == [f"bad {i}" for i in range(3, 3 + ownfile.KEEP_BAD)]
    # Two in the same second do not overwrite each other.
    path.write_text("again")
    assert ownfile.set_aside(path, now=EVEN + 5) == "set aside as state.json.bad-20261123T120005Z-2"


def test_a_history_with_damaged_lines_is_set_aside_when_rewritten(tmp_path: Path) -> None:
    path = history.history_path(tmp_path)
    good = [json.dumps(b).encode() for b in valid_history()]
    bad = [b"[[[[" * 10_000, b'{"t": 1, "s": {"x": [1, 2, 3]}}', b'{"t": "x"}', b"\xff\xfe"]
    raw = b"\n".join([good[0], *bad, good[1]]) + b"\n"
    path.write_bytes(raw)
    buckets, warning = history.load(tmp_path, 0)
    assert [b.start for b in buckets] == [int(EVEN) - 120, int(EVEN) - 60]
    assert warning == f"page: {path}: 4 unreadable line(s) skipped"
    warning = history.record(tmp_path, EVEN, [], 3)
    (aside,) = tmp_path.glob("history.jsonl.bad-*")
    assert aside.read_bytes().startswith(raw)  # and this run's line
    assert warning == f"page: {path}: 4 unreadable line(s) dropped; set aside as {aside.name}"
    buckets, warning = history.load(tmp_path, 0)
    assert warning is None and len(buckets) == 3


# -- hypothesis: arbitrary JSON and bytes -----------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([2**53 + 1, 2**63, 10**400, -(10**400)])  # past float and int64
    | st.floats()
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


Path_ = tuple[str | int, ...]


def paths(doc: Any, at: Path_ = ()) -> list[Path_]:
    """Every member of ``doc``, at any depth (the root too)."""
    out = [at]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*at, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*at, i))
    return out


def replaced(doc: Any, at: Path_, new: Any, delete: bool) -> Any:
    if not at:
        return new
    head, rest = at[0], at[1:]
    if isinstance(doc, dict):
        assert isinstance(head, str)
        if delete and not rest:
            return {k: v for k, v in doc.items() if k != head}
        return {**doc, head: replaced(doc[head], rest, new, delete)}
    assert isinstance(head, int)
    return [*doc[:head], replaced(doc[head], rest, new, delete), *doc[head + 1 :]]


def mutate(doc: Any, data: st.DataObject) -> Any:
    """``doc`` with one member anywhere (chosen evenly among all) replaced by arbitrary
    JSON or removed, so that most examples get past the version check and reach the
    shape checks of the member."""
    for _ in range(data.draw(st.integers(1, 2))):
        at = data.draw(st.sampled_from(paths(doc)))
        doc = replaced(doc, at, data.draw(json_values), data.draw(st.booleans()))
    return doc


FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(FILES)))
def test_any_json_loads_well_formed_or_is_set_aside(data: st.DataObject, name: str) -> None:
    doc = mutate(VALID[name](), data)
    with tempfile.TemporaryDirectory() as d:
        load_and_check(name, Path(d), json.dumps(doc).encode())


@FUZZ
@given(value=json_values, name=st.sampled_from(sorted(FILES)))
def test_any_json_value_at_all(value: Any, name: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        load_and_check(name, Path(d), json.dumps(value).encode())


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(FILES)))
def test_any_bytes_or_a_cut_valid_file(data: st.DataObject, name: str) -> None:
    valid = json.dumps(VALID[name]()).encode()
    raw = data.draw(
        st.binary(max_size=200)
        | st.integers(0, len(valid)).map(lambda n: valid[:n])
        | st.tuples(st.integers(0, len(valid) - 1), st.integers(0, 255)).map(
            lambda f: valid[: f[0]] + bytes([f[1]]) + valid[f[0] + 1 :]
        )
    )
    with tempfile.TemporaryDirectory() as d:
        load_and_check(name, Path(d), raw)


@FUZZ
@given(data=st.data())
def test_any_history_lines_or_bytes(data: st.DataObject) -> None:
    lines = [json.dumps(mutate(b, data)).encode() for b in valid_history()]
    raw = data.draw(st.just(b"\n".join(lines) + b"\n") | st.binary(max_size=200))
    with tempfile.TemporaryDirectory() as d:
        path = history.history_path(Path(d))
        path.write_bytes(raw)
        buckets, warning = history.load(Path(d), 0)
        assert warning is None or ("\n" not in warning and str(path) in warning)
        check_history(buckets)
        warning = history.record(Path(d), EVEN, probes(fishfinger="ipv4"), 3)
        assert warning is None or ("\n" not in warning and str(path) in warning)
        buckets, _ = history.load(Path(d), 0)
        check_history(buckets)
        assert any(b.start == int(EVEN) // 60 * 60 for b in buckets)
