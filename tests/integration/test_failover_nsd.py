"""kissha failover against a real nsd and real HTTPS node servers on loopback."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab.site import LoopbackSite

pytestmark = pytest.mark.integration

# An even week (2968 since 1970-01-05): rotation prefers fishfinger, as the zones start.
NOW = "2026-11-23T12:00:00Z"
A_FISH, A_BLOW = "127.0.0.11", "127.0.0.12"
AAAA_FISH, AAAA_BLOW = "2001:db8:1::11", "2001:db8:1::12"


def snapshot(site: LoopbackSite) -> dict[str, tuple[bytes, int]]:
    """Every file in the zones directory: bytes and mtime."""
    zones = site.root / "zones"
    return {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(zones.iterdir())
        if p.is_file() and (p.suffix == ".zone" or "kissha" in p.name)
    }


def sha256s(site: LoopbackSite) -> dict[str, str]:
    """Every zone file's sha256 (byte-identical where nothing was to change)."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((site.root / "zones").glob("*.zone"))
    }


def leftovers(site: LoopbackSite) -> list[str]:
    names = [p.name for p in (site.root / "zones").iterdir() if "kissha" in p.name]
    if (site.root / "state" / "journal.json").exists():
        names.append("journal.json")
    return names


def fail_master(site: LoopbackSite) -> subprocess.CompletedProcess[str]:
    """Stop fishfinger's web server and run kissha until the default threshold trips."""
    site.stop_web("fishfinger")
    for _ in range(2):
        r = site.kissha("failover", now=NOW)
        assert r.returncode == 0, r.stdout + r.stderr
    return site.kissha("failover", now=NOW)


def test_steady_state_changes_nothing(site: LoopbackSite) -> None:
    before = snapshot(site)
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "result: unchanged" in r.stdout
    assert "fishfinger  https ipv4  ok" in r.stdout
    assert "blowfish    https ipv6  ok" in r.stdout
    assert snapshot(site) == before
    assert site.answers("www.example.org", "A") == {A_FISH}


# What a no-change run (cron, every minute) must not import: other commands' parsers and
# code, tables its config does not have, what a probe can do without (docs/benchmarks.md,
# "the cron path's start-up"); and, as before, the daemon's and the page's code.
NOT_ON_THE_CRON_PATH = {
    "kissha.certs.command",
    "kissha.deploy.command",
    "kissha.monitor.command",
    "kissha.render.command",
    "kissha.render.init",
    "kissha.config.monitor",
    "kissha.config.sites",
    "kissha.engine.daemon",
    "kissha.observe.metrics",
    "kissha.observe.page",
    "encodings.idna",  # ssl's for a str server_hostname
    "_strptime",  # ssl.cert_time_to_seconds'
    "http.server",
}


def test_a_no_change_run_imports_only_what_it_uses(site: LoopbackSite) -> None:
    argv = [sys.executable, "-X", "importtime", "-m", "kissha", "-c", str(site.config_path)]
    r = subprocess.run(
        [*argv, "failover", "--now", NOW], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "fishfinger  https ipv4  ok" in r.stdout  # https probes: ssl's paths ran
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in r.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert {"kissha.engine.failover", "kissha.probes.http", "ssl"} <= imported
    assert sorted(imported & NOT_ON_THE_CRON_PATH) == []


def test_master_down_fails_over_after_threshold(site: LoopbackSite) -> None:
    serial = site.serial("example.org")
    r = fail_master(site)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "fishfinger is now down: 3 failed rounds in a row" in r.stdout
    assert "connection refused" in r.stdout
    assert "result: changed: 6 zone(s) changed, reloaded and verified" in r.stdout
    for server in ("127.0.0.1", "::1"):
        for zone in site.zones:
            assert site.answers(f"www.{zone}", "A", server) == {A_BLOW}
            assert site.answers(f"www.{zone}", "AAAA", server) == {AAAA_BLOW}
            assert site.answers(zone, "AAAA", server) == {AAAA_BLOW}
            # no healthy standby: the standby names follow the master (documented default)
            assert site.answers(f"standby.{zone}", "A", server) == {A_BLOW}
        # unmarked records untouched
        assert site.answers("mail.example.org", "A", server) == {A_FISH}
    assert site.serial("example.org") > serial
    assert leftovers(site) == []
    events = json.loads((site.root / "state" / "state.json").read_text())["events"]
    assert [e["kind"] for e in events][-2:] == ["node-down", "failover"]
    # and the next run has nothing to do
    again = site.kissha("failover", now=NOW)
    assert again.returncode == 0, again.stdout


def test_failback_after_recovery_threshold(site: LoopbackSite) -> None:
    assert fail_master(site).returncode == 1
    site.start_web("fishfinger")
    codes = [site.kissha("failover", now=NOW).returncode for _ in range(5)]
    assert codes == [0, 0, 0, 0, 1]
    assert site.answers("www.example.org", "A") == {A_FISH}
    assert site.answers("standby.example.org", "AAAA", "::1") == {AAAA_BLOW}


def test_zone_failing_validation_is_left_and_the_others_fail_over(site: LoopbackSite) -> None:
    # An operator broke a zone by hand after nsd loaded it (an unmarked line): that zone
    # cannot change, every other one still fails over (exit 7), and it is named once.
    broken = site.zone_path("foo.zone")
    broken.write_text(broken.read_text() + "oops     IN A    not-an-address\n")
    before = sha256s(site)
    r = fail_master(site)
    assert r.returncode == 7, r.stdout + r.stderr
    assert "5 zone(s) changed, reloaded and verified" in r.stdout
    assert "1 zone(s) could not be changed: foo.zone." in r.stdout
    assert f"foo.zone. [validate]: error: {broken}:29: invalid IPv4 address" in r.stdout
    after = sha256s(site)
    assert after["foo.zone.zone"] == before["foo.zone.zone"]  # untouched
    assert all(after[k] != before[k] for k in before if k != "foo.zone.zone")
    for server in ("127.0.0.1", "::1"):
        assert site.answers("www.example.org", "A", server) == {A_BLOW}
        assert site.answers("www.foo.zone", "A", server) == {A_FISH}
    assert leftovers(site) == []
    state = json.loads((site.root / "state" / "state.json").read_text())
    failover = [e for e in state["events"] if e["kind"] == "failover"]
    assert failover[-1]["failed_zones"] == ["foo.zone."]
    # The next runs: only that zone is left to change; exit 5, no new event.
    seq = state["seq"]
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 5, r.stdout + r.stderr
    assert "result: not-changed: 1 zone(s) could not be changed: foo.zone. (exit 5)" in r.stdout
    state = json.loads((site.root / "state" / "state.json").read_text())
    assert state["seq"] == seq
    assert sha256s(site)["foo.zone.zone"] == before["foo.zone.zone"]


def test_nsd_not_running_rolls_back(site: LoopbackSite) -> None:
    before = {k: v[0] for k, v in snapshot(site).items()}
    assert site.nsd is not None
    site.nsd.stop()
    r = fail_master(site)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "nsd reload failed" in r.stdout
    assert "old zone files restored" in r.stdout
    assert {k: v[0] for k, v in snapshot(site).items()} == before
    assert leftovers(site) == []
    events = json.loads((site.root / "state" / "state.json").read_text())["events"]
    assert events[-1]["kind"] == "rollback"


def test_zone_nsd_does_not_serve_is_put_back_alone(site: LoopbackSite) -> None:
    # nsd-control reload says "ok", but nsd does not serve this zone at all: only
    # querying the answers shows it; that zone alone is put back, the others stay new.
    extra = site.root / "zones" / "unserved.test.zone"
    extra.write_text(site.zone_text("unserved.test"))
    before = sha256s(site)
    r = fail_master(site)
    assert r.returncode == 7, r.stdout + r.stderr
    assert "unserved.test. [verify]: the server does not serve the new zone" in r.stdout
    assert "got REFUSED (wrong answer)" in r.stdout
    assert "6 zone(s) changed, reloaded and verified" in r.stdout
    assert "could not be changed: unserved.test." in r.stdout
    after = sha256s(site)
    assert after["unserved.test.zone"] == before["unserved.test.zone"]
    assert site.answers("www.example.org", "A") == {A_BLOW}
    assert site.answers("www.example.org", "A", "::1") == {A_BLOW}
    assert leftovers(site) == []


def test_every_zone_failing_verification_exits_3(site: LoopbackSite) -> None:
    # Only an unserved zone changes: nothing is served, it is put back: exit 3.
    extra = site.root / "zones" / "unserved.test.zone"
    extra.write_text(site.zone_text("unserved.test").replace("127.0.0.11", "127.0.0.12", 1))
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "result: rolled-back: the server does not serve the new zones: unserved.test." in (
        r.stdout
    )
    assert extra.read_text() == site.zone_text("unserved.test").replace(
        "127.0.0.11", "127.0.0.12", 1
    )
    assert leftovers(site) == []


def test_lock_held_exits_4_and_does_nothing(site: LoopbackSite) -> None:
    lock = site.root / "state" / "lock"
    with lock.open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write("12345\n")
        f.flush()
        r = site.kissha("failover", now=NOW)
    assert r.returncode == 4
    assert r.stdout == ""
    assert r.stderr.startswith("kissha: another kissha run holds")
    assert len(r.stderr.strip().splitlines()) == 1


def test_interrupted_run_is_recovered(site: LoopbackSite, short_tmp: Path) -> None:
    """Kill kissha (SIGKILL) while nsd reloads; the next run undoes the half-done run."""
    assert site.nsd is not None
    slow = short_tmp / "slow-control"
    slow.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = reload ] && touch {short_tmp}/in-reload && sleep 30\n'
        f'exec {" ".join(site.nsd.control_argv)} "$@"\n'
    )
    slow.chmod(0o755)
    good_config = site.config_path.read_text()
    real = '", "'.join(site.nsd.control_argv)
    site.config_path.write_text(good_config.replace(f'["{real}"]', f'["{slow}"]'))
    original = {z: site.zone_path(z).read_bytes() for z in site.zones}
    site.stop_web("fishfinger")
    for _ in range(2):
        assert site.kissha("failover", now=NOW).returncode == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "kissha", "-c", str(site.config_path), "failover", "--now", NOW],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not (short_tmp / "in-reload").exists():
            assert time.monotonic() < deadline, "kissha never reached the reload"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    subprocess.run(["pkill", "-f", str(slow)], check=False)
    # The crash left new zone files, backups and the journal behind.
    assert (site.root / "state" / "journal.json").exists()
    assert all(site.zone_path(z).read_bytes() != original[z] for z in site.zones)
    # A stray temp file from an even earlier crash, too.
    stray = site.root / "zones" / ".example.org.zone.kissha-new"
    stray.write_text("half a zone")
    site.config_path.write_text(good_config)
    r = site.kissha("failover", now=NOW)
    assert "recovered:" in r.stdout
    assert "interrupted run undone" in r.stdout
    assert "unfinished temp file removed" in r.stdout
    # recovery restored the old files, then this run failed over again properly
    assert r.returncode == 1, r.stdout + r.stderr
    assert leftovers(site) == []
    assert site.answers("www.example.org", "A") == {A_BLOW}


def test_recovery_leaves_a_file_edited_since_the_crash(site: LoopbackSite) -> None:
    zone = site.zone_path("example.org")
    backup = zone.with_name(".example.org.zone.kissha-old")
    backup.write_bytes(zone.read_bytes())
    edited = zone.read_text() + "; edited by hand after the crash\n"
    zone.write_text(edited)
    journal = {
        "pid": 1,
        "time": 0,
        "zones": [
            {
                "path": str(zone),
                "backup": str(backup),
                "old": hashlib.sha256(backup.read_bytes()).hexdigest(),
                "new": hashlib.sha256(b"what the crashed run wrote").hexdigest(),
            }
        ],
    }
    (site.root / "state" / "journal.json").write_text(json.dumps(journal))
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "edited since an interrupted run; left as it is" in r.stdout
    assert zone.read_text() == edited
    assert not (site.root / "state" / "journal.json").exists()


def test_owner_and_mode_are_kept(site: LoopbackSite) -> None:
    zone = site.zone_path("example.org")
    os.chown(zone, 4321, 4321)
    os.chmod(zone, 0o640)
    assert fail_master(site).returncode == 1
    st = zone.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (4321, 4321, 0o640)
    assert site.answers("www.example.org", "A") == {A_BLOW}


def test_dry_run_writes_nothing(site: LoopbackSite) -> None:
    site.stop_web("fishfinger")
    for _ in range(2):
        site.kissha("failover", now=NOW)
    state = (site.root / "state" / "state.json").read_bytes()
    before = snapshot(site)
    r = site.kissha("failover", "--dry-run", now=NOW)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "kissha failover (dry run)" in r.stdout
    assert f"+www      300 IN A {A_BLOW} ; Enable failover" in r.stdout
    assert "dry run: 6 zone(s) would change" in r.stdout
    assert snapshot(site) == before
    assert (site.root / "state" / "state.json").read_bytes() == state


def test_json_output(site: LoopbackSite) -> None:
    r = fail_master(site)
    r = site.kissha("failover", "--json", "--dry-run", now=NOW)
    data = json.loads(r.stdout)
    assert data["schema"] == "kissha.failover/1"
    assert data["outcome"] == "unchanged"
    assert data["decision"]["master"] == "blowfish"
    assert {p["node"] for p in data["probes"]} == {"fishfinger", "blowfish"}
    assert data["health"]["fishfinger"]["up"] is False


def test_pin_and_unpin(site: LoopbackSite) -> None:
    r = site.kissha("pin", "blowfish", "--for", "2h")
    assert r.returncode == 0, r.stderr
    # --now is not given to pin; pinning is relative to the real clock, so run unpinned
    # later with the real clock too.
    r = site.kissha("failover")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "pinned to blowfish" in r.stdout
    assert site.answers("www.example.org", "A") == {A_BLOW}
    assert site.kissha("unpin").returncode == 0
    r = site.kissha("pin", "nosuchnode")
    assert r.returncode == 2 and "no such node" in r.stderr


def test_marked_record_kissha_cannot_rewrite_is_left_and_named(site: LoopbackSite) -> None:
    zone = site.zone_path("buetow.test")
    zone.write_text(zone.read_text() + "alias IN CNAME www ; Enable failover\n")
    before = sha256s(site)
    site.stop_web("fishfinger")
    codes = [site.kissha("failover", now=NOW) for _ in range(3)]
    # Before the threshold nothing else changes (5); then the others fail over (7).
    assert [c.returncode for c in codes] == [5, 5, 7], codes[-1].stdout
    r = codes[-1]
    assert "buetow.test. [plan]: " in r.stdout
    assert f"{zone}:29: '; Enable failover' on a CNAME record: only A and AAAA" in r.stdout
    # the output still tells the probes, the health and the decision
    assert "fishfinger  https ipv4  FAILED" in r.stdout
    assert "health: fishfinger DOWN, blowfish up" in r.stdout
    assert "decision: master blowfish" in r.stdout
    after = sha256s(site)
    assert after["buetow.test.zone"] == before["buetow.test.zone"]
    assert site.answers("www.example.org", "A") == {A_BLOW}
    assert site.answers("www.buetow.test", "A") == {A_FISH}
    data = json.loads(site.kissha("failover", "--json", now=NOW).stdout)
    assert data["exit_code"] == 5
    assert data["failed_zones"][0]["zone"] == "buetow.test."
    assert data["failed_zones"][0]["stage"] == "plan"
    assert data["health"]["fishfinger"]["up"] is False
    assert data["decision"]["master"] == "blowfish"


def test_check_config_reports_zones(site: LoopbackSite) -> None:
    r = site.kissha("check-config")
    assert r.returncode == 0, r.stderr
    assert "example.org." in r.stdout and "9 marked record(s)" in r.stdout


def test_quiet_prints_only_when_something_happened(site: LoopbackSite) -> None:
    r = site.kissha("failover", "--quiet", now=NOW)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = fail_master(site)  # the third run, not quiet, changes records
    assert r.returncode == 1
    site.start_web("fishfinger")
    r = site.kissha("failover", "--quiet", now=NOW)
    assert (r.returncode, r.stdout) == (0, "")


def test_hand_broken_zone_is_reported_before_a_failover_needs_it(site: LoopbackSite) -> None:
    broken = site.zone_path("irregular.ninja")
    broken.write_text(broken.read_text() + "oops     IN A    not-an-address\n")
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning: irregular.ninja.: the zone file does not pass nsd-checkzone" in r.stdout
    assert site.answers("www.irregular.ninja", "A") == {A_FISH}  # nsd still serves the old
    r = site.kissha("failover", "--json", now=NOW)
    assert json.loads(r.stdout)["problems"]
    events = json.loads((site.root / "state" / "state.json").read_text())["events"]
    assert [e["kind"] for e in events].count("zone-invalid") == 1  # reported once
    # fixed by hand: no more warning, and the next failover needs no extra check
    broken.write_text(site.zone_text("irregular.ninja"))
    r = site.kissha("failover", now=NOW)
    assert "warning" not in r.stdout
    r = fail_master(site)
    assert r.returncode == 1, r.stdout
    data = json.loads(site.kissha("failover", "--json", "--dry-run", now=NOW).stdout)
    assert data["outcome"] == "unchanged"


def test_failover_trusts_zones_validated_by_earlier_runs(site: LoopbackSite) -> None:
    assert site.kissha("failover", now=NOW).returncode == 0  # validates the files on disk
    site.stop_web("fishfinger")
    for _ in range(2):
        site.kissha("failover", now=NOW)
    r = site.kissha("failover", "--json", now=NOW)
    data = json.loads(r.stdout)
    assert data["exit_code"] == 1, r.stdout
    assert data["apply"]["checked"] == 0
    assert data["apply"]["trusted"] == len(site.zones)
