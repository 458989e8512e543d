"""The status page: pure rendering (structure, escaping, size), the timeline's parts, and
when a run writes the page."""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from kissha import config as configmod
from kissha.core.model import Event, Node, NodeHealth, ProbeResult, Roles
from kissha.engine.state import State
from kissha.observe import page, pagehtml, timeline
from kissha.observe.history import Bucket, bucket_of
from kissha.observe.verdict import NsView, Observation, Report, judge

NOW = 1_795_000_020.0
DAY = 86400
NODES = (
    Node("fishfinger", "fishfinger.example.org", "198.51.100.11", "2001:db8:1::11"),
    Node("blowfish", "blowfish.example.org", "198.51.100.12", "2001:db8:1::12"),
)
VOID = {"meta", "br", "line", "rect", "path", "link", "img", "input", "hr"}


class Structure(HTMLParser):
    """Counts tags and checks that every non-void element is closed in order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.counts: dict[str, int] = {}
        self.errors: list[str] = []
        self.text: list[str] = []
        self.attrs: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.attrs += [(tag, k, v) for k, v in attrs]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.attrs += [(tag, k, v) for k, v in attrs]

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Structure:
    s = Structure()
    s.feed(html)
    s.close()
    assert not s.errors, s.errors[:5]
    assert not s.stack, s.stack
    return s


def probe(node: str, family: str, ok: bool = True, **kw: Any) -> ProbeResult:
    return ProbeResult(
        node,
        kw.pop("name", "https"),
        family,  # type: ignore[arg-type]
        "addr",
        ok,
        kw.pop("detail", "ok" if ok else "connection refused"),
        latency_ms=kw.pop("latency", 12.0 if ok else None),
        **kw,
    )


def view(node: str, family: str, master: str = "fishfinger", **kw: Any) -> NsView:
    return NsView(
        node,
        family,  # type: ignore[arg-type]
        "198.51.100.11",
        master=(master,),
        standby=("blowfish",),
        serials={"example.org.": "1795000000"},
        **kw,
    )


def history_3_days() -> list[Bucket]:
    """A run a minute for 3 days; blowfish/ipv6 failing for an hour, a day ago."""
    out = []
    for minute in range(3 * DAY // 60):
        t = NOW - 3 * DAY + minute * 60
        bad = NOW - DAY <= t < NOW - DAY + 3600
        ps = [probe(n.name, f, latency=10.0 + minute % 7) for n in NODES for f in n.families]
        ps[-1] = probe("blowfish", "ipv6", ok=not bad)
        out.append(bucket_of(t, ps, 60))
    return out


EVENTS = [
    Event.from_json(
        {
            "time": NOW - DAY + 180,
            "kind": "node-down",
            "message": "blowfish is down",
            "node": "blowfish",
        }
    ),
    Event.from_json(
        {
            "time": NOW - DAY + 3700,
            "kind": "node-up",
            "message": "blowfish is up",
            "node": "blowfish",
        }
    ),
    Event.from_json(
        {
            "time": NOW - 7200,
            "kind": "failover",
            "message": "master fishfinger -> blowfish, standby fishfinger; 6 zone(s) <b>",
        }
    ),
    Event.from_json(
        {"time": NOW - 3600, "kind": "rollback", "message": "reload failed & rolled back"}
    ),
]


def data(**kw: Any) -> pagehtml.PageData:
    views = kw.pop("views", tuple(view(n.name, f) for n in NODES for f in n.families))
    obs = Observation(
        now=NOW,
        views=views,
        probes=kw.pop(
            "probes",
            (
                *(probe(n.name, f) for n in NODES for f in n.families),
                probe("blowfish", "ipv4", ok=False, name="smtp", required=False),
            ),
        ),
        nodes=("fishfinger", "blowfish"),
        last_run=NOW,
        stale_after=600,
        roles=Roles("fishfinger", "blowfish"),
        health={"fishfinger": True, "blowfish": True},
        asked=kw.pop("asked", True),
    )
    defaults: dict[str, Any] = {
        "title": "kissha: fishfinger, blowfish",
        "now": NOW,
        "refresh": 60,
        "status": Report(obs, judge(obs)),
        "nodes": NODES,
        "health": {"fishfinger": True, "blowfish": True},
        "history": history_3_days(),
        "events": EVENTS,
        "start": NOW - 3 * DAY,
        "version": "0.3",
    }
    defaults.update(kw)
    return pagehtml.PageData(**defaults)


def test_the_page_is_self_contained_and_well_formed() -> None:
    html = pagehtml.render(data())
    s = parse(html)
    assert html.startswith("<!DOCTYPE html>\n")
    assert s.counts["svg"] == 2  # a panel per node
    assert "script" not in s.counts and "iframe" not in s.counts and "link" not in s.counts
    links = [v for tag, k, v in s.attrs if k in ("href", "src")]
    assert links == ["status.json"]  # no external assets, nothing fetched
    metas = {(k, v) for tag, k, v in s.attrs if tag == "meta"}
    assert ("name", "viewport") in metas and ("http-equiv", "refresh") in metas
    assert ("content", "60") in metas
    assert "prefers-color-scheme:dark" in html


def test_the_page_says_who_leads_and_how_each_node_does() -> None:
    s = parse(pagehtml.render(data()))
    text = " ".join("".join(s.text).split())
    assert "master fishfinger · standby blowfish" in text
    assert "WARNING: all 4 nameservers point at fishfinger" in text
    assert "probe smtp of blowfish/ipv4 failed (informational): connection refused" in text
    assert "https ok 12 ms" in text
    assert "smtp failed (informational): connection refused" in text
    assert "198.51.100.11" in text and "2001:db8:1::12" in text
    assert text.count("1795000000") == 4  # the serial, one row per nameserver
    assert "Generated 2026-11-18T" in text


def test_split_brain_is_the_headline() -> None:
    views = (view("fishfinger", "ipv4"), view("blowfish", "ipv4", master="blowfish"))
    html = pagehtml.render(data(views=views))
    assert '<header class="head crit">' in html
    assert "CRITICAL</span>: SPLIT BRAIN: fishfinger&#x27;s nameserver points at fishfinger" in html
    assert html.startswith("<!DOCTYPE html>") and "<title>CRITICAL - " in html


def test_an_unreachable_nameserver_and_not_asking_them() -> None:
    views = (view("fishfinger", "ipv4"), NsView("blowfish", "ipv4", "b", error="timeout after 2 s"))
    assert "unreachable: timeout after 2 s" in pagehtml.render(data(views=views))
    html = pagehtml.render(data(views=(), asked=False))
    assert "Not asked (page.nameservers = false)" in html
    assert "master fishfinger, standby blowfish (nameservers not asked)" in html
    assert "no nameserver reachable" not in html


def test_everything_from_config_or_network_is_escaped() -> None:
    evil = '<script>alert("x")</script>'
    html = pagehtml.render(
        data(
            title=evil,
            probes=(probe("fishfinger", "ipv4", ok=False, detail=evil),),
            views=(view("fishfinger", "ipv4", problems=(evil,)),),
            events=[Event.from_json({"time": NOW - 60, "kind": "zone-invalid", "message": evil})],
        )
    )
    parse(html)
    assert "<script" not in html
    assert html.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 5
    assert "6 zone(s) <b>" not in pagehtml.render(data())


def test_the_timeline_marks_failures_events_and_down_time() -> None:
    html = pagehtml.render(data())
    s = parse(html)
    classes = [v or "" for tag, k, v in s.attrs if k == "class"]
    assert classes.count("ev ev-failover") == 2  # one marker per node panel
    assert classes.count("ev ev-rollback") == 2
    assert classes.count("ev ev-down") == 2 and classes.count("ev ev-up") == 2
    downs = [tag for tag, k, v in s.attrs if k == "class" and v == "down" and tag == "rect"]
    assert len(downs) == 1  # blowfish's hour down, in its own panel
    fails = [tag for tag, k, v in s.attrs if k == "class" and v == "fail" and tag == "rect"]
    assert 4 <= len(fails) <= 6  # the failing hour: 15-minute columns
    assert "blowfish/ipv6: 15 of 15 probes failed from 2026-11-17T11:15:00Z for 15 min" in html
    assert classes.count("lat l4") == 2 and classes.count("lat l6") == 2
    titles = "".join(s.text)
    assert "2026-11-18T06:13:20Z failover: master fishfinger -&gt;" not in titles
    assert "failover: master fishfinger -> blowfish" in titles


def test_failbacks_rotations_and_record_changes_are_never_drawn_or_listed_as_failovers() -> None:
    evs = [
        Event.from_json(
            {"time": NOW - 5000, "kind": "failback", "message": "master blowfish -> fishfinger"}
        ),
        Event.from_json(
            {"time": NOW - 4000, "kind": "rotation", "message": "master fishfinger -> blowfish"}
        ),
        Event.from_json(
            {"time": NOW - 3000, "kind": "records", "message": "records changed, roles unchanged"}
        ),
    ]
    html = pagehtml.render(data(events=evs))
    s = parse(html)
    classes = [v or "" for tag, k, v in s.attrs if k == "class"]
    assert classes.count("ev ev-failback") == 2  # one marker per node panel
    assert classes.count("ev ev-rotation") == 2 and classes.count("ev ev-records") == 2
    assert "ev ev-failover" not in classes
    text = "".join(s.text)
    assert "failback: master blowfish -> fishfinger" in text
    assert "rotation: master fishfinger -> blowfish" in text
    assert "failover:" not in text
    for cls in ("ev-failback", "ev-rotation", "ev-records"):
        assert f".{cls}{{" in html  # styled, and in the legend
        assert f'<i class="{cls}">' in html


def test_three_days_of_minutes_stay_small() -> None:
    many_events = [
        Event.from_json({"time": NOW - i * 1300, "kind": "failover", "message": "master a -> b"})
        for i in range(200)
    ]
    html = pagehtml.render(data(events=many_events))
    assert len(html.encode()) < 100_000, len(html.encode())
    assert len(pagehtml.render(data()).encode()) < 40_000


def test_no_history_yet() -> None:
    html = pagehtml.render(data(history=[], events=[]))
    parse(html)
    assert "ipv4: no data" in html and "None in this period." in html


def test_timeline_parts() -> None:
    assert [timeline.nice_ceiling(v) for v in (0.2, 1, 7, 10, 11, 230, 501)] == [
        1,
        1,
        10,
        10,
        20,
        500,
        1000,
    ]
    t = timeline.ticks(NOW - 3 * DAY, NOW)
    majors = [x for x, major in t if major]
    assert len(majors) <= timeline.MAX_TICKS and all(x % DAY == 0 for x in majors)
    assert [timeline.tick_label(x) for x in majors] == ["11-16", "11-17", "11-18"]
    assert timeline.tick_label(NOW - NOW % DAY + 43200) == "12:00"
    spans = timeline.down_spans(
        [
            *EVENTS,
            Event.from_json(
                {"time": NOW - 60, "kind": "node-down", "message": "fishfinger is down"}
            ),
        ],
        "fishfinger",
        NOW - DAY,
        NOW,
    )
    assert spans == [(NOW - 60, NOW)]  # an open span runs to the end; old events parse too


def test_columns_add_buckets_up() -> None:
    buckets = history_3_days()
    grid = timeline.Grid.over(NOW - 3 * DAY, NOW, 900)
    assert grid.start % 900 == 0 and grid.start <= NOW - 3 * DAY < grid.start + 900
    assert grid.end >= NOW and grid.n == 289
    cols = timeline.columns(buckets, "fishfinger/ipv4", grid)
    assert sum(c.stats.probes for c in cols) == len(buckets)
    assert all(c.stats.probes == 15 for c in cols[1:-1])  # whole columns inside


# -- when a run writes the page --------------------------------------------------------


def config(tmp_path: Path, **page_keys: Any) -> configmod.Config:
    return configmod.parse(
        {
            "state_dir": str(tmp_path / "state"),
            "nodes": {n.name: {"fqdn": n.fqdn, "ipv4": n.ipv4, "ipv6": n.ipv6} for n in NODES},
            "dns": {"zones_dir": str(tmp_path)},
            "page": {"dir": str(tmp_path / "www"), **page_keys},
        }
    )


def test_due(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    st = State(events=[Event.from_json({"time": NOW - 600, "kind": "failover", "message": "m"})])
    assert page.due(cfg, NOW, st)  # no page yet
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "index.html").write_text("x")
    (tmp_path / "state").mkdir()
    stamp = tmp_path / "state" / page.STAMP
    stamp.touch()
    os.utime(stamp, (NOW - 30, NOW - 30))
    assert not page.due(cfg, NOW, st)  # written 30 s ago, every 60 s
    assert page.due(cfg, NOW + 30, st)
    assert page.due(cfg, NOW - 60, st)  # the clock went back
    st.add_event(NOW, "node-down", "blowfish is down")
    assert page.due(cfg, NOW, st)  # an event in this run: at once
    assert page.due(config(tmp_path, every=0), NOW - 10, State())


def test_a_bug_in_the_page_is_a_warning_not_a_failed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zones are served and the state saved before the page: an unexpected error
    there (a bug; none is known, so one is put in) is a warning, never exit 70."""
    from kissha.core.model import Decision
    from kissha.core.report import RunReport

    def boom(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(page.history, "record", boom)
    report = RunReport(NOW, False, (), Decision(Roles("fishfinger", "blowfish")), None)
    assert page.publish(config(tmp_path), report, State()) == [
        "page: internal error: RuntimeError: boom"
    ]


def test_one_page_writer_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # kissha page takes no run lock, and a run may write the page at the same moment:
    # the writes share temp file names, so each waits for the directory's flock.
    import fcntl
    import threading

    from kissha.errors import LockHeld

    cfg = config(tmp_path, nameservers=False)
    www = tmp_path / "www"
    www.mkdir()
    fd = os.open(www, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another writer, mid-write
    try:
        done = threading.Event()
        writer = threading.Thread(
            target=lambda: (page.from_state(cfg, NOW, State(), 53, None), done.set())
        )
        writer.start()
        assert not done.wait(0.3)  # waiting for the other writer
        assert not (www / "index.html").exists()
    finally:
        os.close(fd)  # the other writer is done
    assert done.wait(5)
    writer.join()
    assert (www / "index.html").exists() and (www / "status.json").exists()
    # One that holds it for too long: this writer gives up, writing nothing.
    monkeypatch.setattr(page, "WRITE_WAIT", 0.1)
    fd = os.open(www, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        (www / "index.html").unlink()
        with pytest.raises(LockHeld, match=r"another kissha has been writing .* for over 0\.1 s"):
            page.from_state(cfg, NOW, State(), 53, None)
        assert not (www / "index.html").exists()
    finally:
        os.close(fd)


def test_a_directory_that_cannot_be_flocked_is_written_unlocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Linux's NFS emulates flock with POSIX locks, which refuse a descriptor opened
    # read-only (EBADF): the page is written all the same, as before the lock.
    import errno
    import fcntl

    def flock(fd: int, op: int) -> None:
        raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(fcntl, "flock", flock)
    directory, _ = page.from_state(config(tmp_path, nameservers=False), NOW, State(), 53, None)
    assert (directory / "index.html").exists() and (directory / "status.json").exists()


def test_kissha_page_writes_both_files_from_the_state(tmp_path: Path) -> None:
    cfg = config(tmp_path, nameservers=False, title="Our <sites>")
    st = State(
        health={"fishfinger": NodeHealth(), "blowfish": NodeHealth(False, 3, 0)},
        roles=Roles("fishfinger", "blowfish"),
        last_run={
            "time": NOW - 30,
            "probes": [
                {
                    "node": "blowfish",
                    "probe": "https",
                    "family": "ipv6",
                    "ok": False,
                    "detail": "timeout",
                    "latency_ms": None,
                },
            ],
        },
    )
    directory, size = page.from_state(cfg, NOW, st, 53, None)
    assert directory == tmp_path / "www"
    html = (directory / "index.html").read_text()
    assert len(html.encode()) == size
    assert "Our &lt;sites&gt;" in html and "https failed</span>: timeout" in html
    for name in ("index.html", "status.json"):
        assert (directory / name).stat().st_mode & 0o777 == 0o644
    doc = json.loads((directory / "status.json").read_text())
    assert doc["schema"] == "kissha.status/1"
    assert doc["state"]["roles"] == {"master": "fishfinger", "standby": "blowfish"}
    assert doc["history"] == {
        "since": "2026-11-15T11:07:00Z",
        "days": 3,
        "bucket_seconds": 60,
        "column_seconds": 900,
        "buckets": 0,
        "series": {},
    }
    assert doc["nameservers"] == [] and "the state says blowfish is down" in doc["problems"]
    with pytest.raises(Exception, match="no directory"):
        page.from_state(configmod.parse({**_raw(tmp_path)}), NOW, st, 53, None)


def _raw(tmp_path: Path) -> dict[str, Any]:
    return {
        "state_dir": str(tmp_path / "state"),
        "nodes": {n.name: {"fqdn": n.fqdn, "ipv4": n.ipv4} for n in NODES},
        "dns": {"zones_dir": str(tmp_path)},
    }
