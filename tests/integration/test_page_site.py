"""The status page written by real runs on the loopback site (real nsd, real HTTPS)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.site import LoopbackSite

pytestmark = pytest.mark.integration

NOW = "2026-11-23T12:00:00Z"  # an even week: fishfinger leads, as the zones start
LATER = "2026-11-23T12:00:30Z"
MUCH_LATER = "2026-11-23T12:02:00Z"


def with_page(site: LoopbackSite, **keys: object) -> Path:
    www = site.root / "www"
    lines = ["[page]", f'dir = "{www}"', *(f"{k} = {json.dumps(v)}" for k, v in keys.items())]
    site.config_path.write_text(site.config_text() + "\n" + "\n".join(lines) + "\n")
    return www


def run(site: LoopbackSite, now: str, code: int = 0) -> str:
    r = site.kissha("failover", now=now)
    assert r.returncode == code, r.stdout + r.stderr
    return r.stdout


def test_a_run_without_page_writes_no_history(site: LoopbackSite) -> None:
    run(site, NOW)
    assert not (site.root / "state" / "history.jsonl").exists()
    assert not (site.root / "state" / "page.stamp").exists()


def test_runs_write_the_page_when_due_and_after_events(site: LoopbackSite) -> None:
    # nsd listens on 127.0.0.1 only, so the nodes' own addresses (what the page asks)
    # get no answer there: the nameservers show as unreachable, the rest still renders.
    www = with_page(site, port=site.dns_port, title="Loopback <site>")
    out = run(site, NOW)
    assert "warning: page" not in out
    index, doc = www / "index.html", www / "status.json"
    for path in (index, doc):
        assert path.stat().st_mode & 0o777 == 0o644
    html = index.read_text()
    assert "<title>CRITICAL - Loopback &lt;site&gt;</title>" in html
    assert "no nameserver reachable (4 tried)" in html
    assert "master <strong>fishfinger</strong> · standby <strong>blowfish</strong>" in html
    assert "fishfinger/ipv4 nameserver unreachable" in html
    data = json.loads(doc.read_text())
    assert data["schema"] == "kissha.status/1"
    assert data["state"]["roles"] == {"master": "fishfinger", "standby": "blowfish"}
    assert data["history"]["series"]["fishfinger/ipv4"]["probes"] == 1
    assert data["history"]["series"]["fishfinger/ipv4"]["failures"] == 0
    written = index.stat().st_mtime_ns

    run(site, LATER)  # 30 s later, nothing happened: not due (every = 60)
    assert index.stat().st_mtime_ns == written
    history = (site.root / "state" / "history.jsonl").read_text().splitlines()
    assert len(history) == 1 and '"r":2' in history[0]  # both runs in one bucket

    site.stop_web("fishfinger")  # a failing probe is no event yet: still not due
    run(site, LATER)
    assert index.stat().st_mtime_ns == written
    run(site, LATER)
    run(site, LATER, code=1)  # the third failure: node-down and a failover, written at once
    html = index.read_text()
    assert index.stat().st_mtime_ns != written
    assert "master <strong>blowfish</strong>" in html
    assert 'class="ev ev-failover"' in html and 'class="ev ev-down"' in html
    data = json.loads(doc.read_text())
    assert data["history"]["series"]["fishfinger/ipv4"]["failures"] == 3
    assert [e["kind"] for e in data["state"]["events"]][-2:] == ["node-down", "failover"]
    written = index.stat().st_mtime_ns
    run(site, MUCH_LATER)  # due again
    assert index.stat().st_mtime_ns != written


def test_kissha_page_writes_elsewhere_on_demand(site: LoopbackSite) -> None:
    run(site, NOW)
    out = site.root / "elsewhere"
    r = site.kissha("page", "--out", str(out), "--port", str(site.dns_port), now=NOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"kissha: wrote {out / 'index.html'} (")
    assert "https ok" in (out / "index.html").read_text()
    assert json.loads((out / "status.json").read_text())["state"]["last_run_age"] == 0.0
    r = site.kissha("page", now=NOW)  # no [page] dir and no --out
    assert r.returncode == 2
    assert "give --out DIR" in r.stderr


def test_an_unwritable_page_dir_is_a_warning_not_a_failed_run(site: LoopbackSite) -> None:
    blocker = site.root / "blocker"
    blocker.write_text("a file where the directory should be")
    site.config_path.write_text(site.config_text() + f'\n[page]\ndir = "{blocker / "www"}"\n')
    out = run(site, NOW)
    assert "warning: page: cannot write the page in" in out


def test_a_broken_page_is_a_warning_not_a_failed_run(site: LoopbackSite) -> None:
    """The zones are served and the state saved before the page: whatever breaks there
    (here a history line no float can hold) is a warning, not exit 70."""
    www = with_page(site, port=site.dns_port)
    metrics = site.root / "kissha.prom"
    text = site.config_path.read_text().replace(
        "[page]", f'[metrics]\ntextfile = "{metrics}"\n\n[page]'
    )
    site.config_path.write_text(text)
    state = site.root / "state"
    state.mkdir(parents=True, exist_ok=True)
    (state / "history.jsonl").write_text('{"t":60,"r":1e999}\n')
    out = run(site, NOW)  # exit 0: nothing changed, and nothing failed
    assert "warning: page" in out, out
    assert metrics.exists()
    assert (state / "state.json").exists()
    assert not (www / "index.html").exists()
