"""The status page on the two-node lab, read by a real browser: headless Chromium dumps
the DOM and takes screenshots at phone and desktop widths."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lab.netlab import Lab
from tests.browser import chromium_path, dump_dom, screenshot

pytestmark = pytest.mark.e2e

NODES = ("fishfinger", "blowfish")
# An even week: fishfinger leads, as the zones start; a run a minute from 12:00.
MINUTES = [f"2026-11-23T12:{m:02d}:00Z" for m in range(8)]


def round_(lab: Lab, now: str) -> None:
    for node in NODES:
        r = lab.kissha(node, "failover", now=now)
        assert r.returncode in (0, 1), f"{node} exited {r.returncode}\n{r.stdout}{r.stderr}"
        assert "warning: page" not in r.stdout, r.stdout


def test_the_page_after_a_failover_in_a_browser(lab: Lab, tmp_path: Path) -> None:
    chromium_path()  # skip or fail before building anything
    for node in NODES:
        config = lab.config_path(node)
        www = lab.node_root(node) / "www"
        config.write_text(config.read_text() + f'\n[page]\ndir = "{www}"\ntitle = "Lab & co"\n')
    round_(lab, MINUTES[0])
    round_(lab, MINUTES[1])
    lab.stop("fishfinger", "web")
    for now in MINUTES[2:6]:  # the third failed round demotes fishfinger
        round_(lab, now)
    index = lab.node_root("fishfinger") / "www" / "index.html"
    url = index.as_uri()

    dom = dump_dom(url)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))
    # WARNING: the last run's probes of fishfinger failed, and the state says it is down
    assert "<title>WARNING - Lab &amp; co</title>" in dom
    assert "master blowfish · standby blowfish" in text  # standby_when_down = "master"
    assert "all 4 nameservers point at blowfish" in text
    for node in NODES:  # the nameserver table: one row per node and family
        for family in ("ipv4", "ipv6"):
            assert f"{node}/{family}" in text
    rows = re.findall(r"<tr><td>(\w+)/(ipv[46])<br>.*?</td><td>(\w+)</td>", dom)
    assert sorted(rows) == sorted((n, f, "blowfish") for n in NODES for f in ("ipv4", "ipv6"))
    assert "https failed</span>: connection refused" in dom
    assert "blowfish master, standby ipv4" in text  # the health table's role column
    assert dom.count('<svg class="panel"') == 2
    assert dom.count('class="ev ev-failover"') == 2  # the failover, in each node's panel
    assert dom.count('class="ev ev-down"') == 2
    assert 'class="fail"' in dom  # the failed probes as red columns
    assert "failover</strong> master fishfinger -&gt; blowfish" in dom

    doc = json.loads((index.parent / "status.json").read_text())
    assert doc["schema"] == "kissha.status/1"
    assert doc["state"]["roles"]["master"] == "blowfish"
    assert doc["history"]["series"]["fishfinger/ipv4"]["failures"] >= 3

    for width, height in ((390, 844), (1280, 800)):
        png = screenshot(url, tmp_path / f"page-{width}.png", width, height)
        assert (png.width, png.height) == (width, height)
        background = png.pixel(2, height - 2)
        assert len(png.colours()) > 20, "a blank or nearly blank screenshot"
        assert png.share_not(background) > 0.03
