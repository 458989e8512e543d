"""Zone syntax as nsd reads it, end to end: kissha rewrites and verifies against real nsd.

Escaped owner names: ``\\115tandby`` is ``standby`` to nsd, so it gets the standby;
``\\119ww`` and ``www`` are one name, so kissha must expect both records' addresses in
the answer (expecting one of them alone made verification fail and roll back).
A leading record without an owner belongs to the zone itself.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.site import ZONE_TEMPLATE, LoopbackSite

pytestmark = pytest.mark.integration

NOW = "2026-11-23T12:00:00Z"  # an even week: fishfinger leads, blowfish is the standby
A_FISH, A_BLOW = "127.0.0.11", "127.0.0.12"

# Both point at the wrong node at first: the first run must move them.
TEMPLATE = ZONE_TEMPLATE + (
    "\\115tandby.esc 300 IN A {a4} ; Enable failover\n"  # standby: must go to blowfish
    "\\119ww.esc 300 IN A {b4} ; Enable failover\n"  # master: must go to fishfinger
    "www.esc 300 IN A 192.0.2.99\n"  # the same name as \\119ww.esc, unmarked
)
# The first record has no owner: nsd gives it the zone's name.
BLANK_FIRST = (
    "$TTL 300\n"
    "         300 IN A {b4} ; Enable failover\n"
    "         IN SOA ns1.{zone}. hostmaster.{zone}. {serial} 3600 900 604800 300\n"
    "         IN NS ns1.{zone}.\n"
    "ns1      IN A {a4}\n"
)


@pytest.fixture
def site(short_tmp: Path, isolation: None) -> Iterator[LoopbackSite]:
    with LoopbackSite(short_tmp / "site", zones=("example.org",), template=TEMPLATE) as s:
        yield s


def test_escaped_owner_names_fail_over_and_verify(site: LoopbackSite) -> None:
    assert site.answers("www.esc.example.org", "A") == {A_BLOW, "192.0.2.99"}
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "reloaded and verified" in r.stdout
    assert site.answers("standby.esc.example.org", "A") == {A_BLOW}
    assert site.answers("www.esc.example.org", "A") == {A_FISH, "192.0.2.99"}
    # and the next run finds nothing to do
    text = site.zone_path("example.org").read_bytes()
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert site.zone_path("example.org").read_bytes() == text


def test_a_leading_record_without_owner_is_the_zones(short_tmp: Path, isolation: None) -> None:
    with LoopbackSite(short_tmp / "site", zones=("example.org",), template=BLANK_FIRST) as s:
        assert s.answers("example.org", "A") == {A_BLOW}
        r = s.kissha("failover", now=NOW)
        assert r.returncode == 1, r.stdout + r.stderr
        assert "reloaded and verified" in r.stdout
        assert s.answers("example.org", "A") == {A_FISH}


def test_check_config_on_the_site_is_ok_with_nsd(site: LoopbackSite) -> None:
    digest = hashlib.sha256(site.zone_path("example.org").read_bytes()).hexdigest()
    r = site.kissha("check-config")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{site.config_path}: ok;")
    assert hashlib.sha256(site.zone_path("example.org").read_bytes()).hexdigest() == digest
    assert shutil.which("nsd-checkzone") is not None
