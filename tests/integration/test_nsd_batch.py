"""Many zone files checked by one throwaway nsd (dns/nsd.py, _check_batch): the same
verdicts and words as nsd-checkzone file by file, and back to nsd-checkzone whenever the
one nsd cannot tell."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from kissha.config import DnsConfig
from kissha.dns import nsd as nsdmod
from kissha.dns.nsd import BATCH_FROM, NsdServer
from lab.site import ZONE_TEMPLATE, LoopbackSite

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("nsd") is None, reason="needs nsd"),
]

NOW = "2026-11-23T12:00:00Z"  # an even week: fishfinger leads
A_FISH, A_BLOW = "127.0.0.11", "127.0.0.12"

GOOD = """\
$TTL 300
@ IN SOA ns1 hostmaster ( 1 3600 600 86400 300 )
@ IN NS ns1
ns1 IN A 203.0.113.1
www IN A 203.0.113.2 ; Enable failover
www IN AAAA 2001:db8::2 ; Enable failover
"""
# Each breaks a good file in a way nsd-checkzone refuses (and one it takes).
BROKEN = {
    "ipv4": GOOD + "bad IN A 203.0.113.999\n",
    "cname": GOOD + "www IN CNAME elsewhere.example.\n",
    "nosoa": "$TTL 300\n@ IN NS ns1\nns1 IN A 203.0.113.1\n",
    "include": GOOD + "$INCLUDE /nonexistent/kissha-test-include\n",
    "outofzone": GOOD + "foo.other. IN A 203.0.113.1\n",
    "paren": GOOD.replace("300 )", "300"),
    "twosoa": GOOD + "@ IN SOA ns2 hostmaster 2 3600 600 86400 300\n",
    "ttl": GOOD + "x 12zz IN A 203.0.113.3\n",
}
INCLUDED = "more IN A 203.0.113.7\n"


def server(zones_dir: Path, checkzone: Sequence[str] = ("nsd-checkzone",)) -> NsdServer:
    dns = DnsConfig(server="nsd", zones_dir=zones_dir, zones=("*",), checkzone=tuple(checkzone))
    return NsdServer(dns, zones_dir.parent / "state")


def corpus(tmp_path: Path) -> list[tuple[str, Path]]:
    """40 good files (one with a relative $INCLUDE from the zones directory) and every
    kind of BROKEN one; a zone listed whose file does not exist."""
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "included.inc").write_text(INCLUDED)
    items = []
    for i in range(40):
        text = GOOD + ("$INCLUDE included.inc\n" if i == 3 else "")
        items.append((f"good{i}.example.", text))
    items += [(f"{kind}.example.", text) for kind, text in BROKEN.items()]
    out = []
    for zone, text in items:
        path = zones / f".{zone}zone.kissha-tmp"  # hidden, like the temp files checked
        path.write_text(text)
        out.append((zone, path))
    out.append(("missing.example.", zones / "missing.zone"))
    return out


def test_one_nsd_says_what_nsd_checkzone_says_file_by_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = corpus(tmp_path)
    assert len(items) >= BATCH_FROM
    s = server(tmp_path / "zones")
    each = s._check_each(items)
    assert set(each) == {f"{k}.example." for k in BROKEN} | {"missing.example."}
    for kind in ("ipv4", "cname", "include", "outofzone"):
        assert f".{kind}.example.zone.kissha-tmp:" in each[f"{kind}.example."]  # file:line
    # The batch: only what nsd did not load goes to nsd-checkzone, one file each.
    asked: list[str] = []
    check_each = NsdServer._check_each

    def spy(self: NsdServer, some: Sequence[tuple[str, Path]]) -> dict[str, str]:
        asked.extend(z for z, _ in some)
        return check_each(self, some)

    monkeypatch.setattr(NsdServer, "_check_each", spy)
    assert s.check(items) == each
    assert sorted(asked) == sorted(each)
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("kissha-nsd-*/nsd.pid"))


@pytest.mark.parametrize("why", ["no nsd", "nsd fails", "wrapper"])
def test_when_one_nsd_cannot_tell_each_file_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, why: str
) -> None:
    items = corpus(tmp_path)
    s = server(tmp_path / "zones")
    want = s._check_each(items)
    if why == "no nsd":
        monkeypatch.setattr(NsdServer, "_nsd_program", lambda self: None)
    elif why == "nsd fails":  # exits at once, says nothing
        monkeypatch.setattr(NsdServer, "_nsd_program", lambda self: shutil.which("false"))
    else:  # a wrapper may mean another environment: not guessed at
        s = server(tmp_path / "zones", ["env", "nsd-checkzone"])
        assert s._nsd_program() is None
    assert s.check(items) == want


def test_a_name_nsd_conf_cannot_hold_is_checked_file_by_file(tmp_path: Path) -> None:
    items = corpus(tmp_path)
    s = server(tmp_path / "zones")
    nsd = s._nsd_program()
    assert nsd is not None
    with pytest.raises(nsdmod._BatchUnusable):
        s._check_batch(nsd, [*items, ('we"ird.example.', items[0][1])])


def test_a_first_switch_of_many_zones_leaves_the_broken_one_and_names_its_line(
    tmp_path: Path,
) -> None:
    # The first run ever is a switch of BATCH_FROM + 8 zones: validated by one nsd. One
    # zone was broken by hand: it is named with file:line, left as it is; the others
    # fail over and are served.
    names = [f"z{i:02d}.example" for i in range(BATCH_FROM + 7)] + ["example.org"]
    health = {"failures_before_demotion": 1, "successes_before_promotion": 1}
    site_dir = tmp_path / "site"
    with LoopbackSite(site_dir, zones=names, template=ZONE_TEMPLATE, health=health) as site:
        broken = site.zone_path("z05.example")
        broken.write_text(broken.read_text() + "www IN CNAME elsewhere.example.\n")
        before = broken.read_bytes()
        site.stop_web("fishfinger")
        r = site.kissha("failover", "--json", now=NOW)
        assert r.returncode == 7, r.stdout + r.stderr
        assert f"{broken}:" in r.stdout and "CNAME and other data" in r.stdout
        assert broken.read_bytes() == before
        for z in names:
            if z != "z05.example":
                assert site.answers(f"www.{z}", "A") == {A_BLOW}, z
        assert site.answers("www.z05.example", "A") == {A_FISH}
        assert not [p for p in (site.root / "zones").iterdir() if "kissha" in p.name]
