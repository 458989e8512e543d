"""kissha failover when things go wrong around it: broken zones beside good ones, a full
disk, a read-only or forbidden zones directory, missing tools, damaged journals,
symlinked zone files, a server serving something else, SIGTERM. Real nsd on loopback.

Each case asserts the exit code, a fragment of the message, and the zone files'
sha256 where nothing was to change. Mounts (tmpfs, read-only binds) happen only in a
private mount namespace of the one kissha command (unshare --mount), never here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.site import LoopbackSite

pytestmark = pytest.mark.integration

NOW = "2026-11-23T12:00:00Z"  # an even week: fishfinger is preferred, as the zones start
A_FISH, A_BLOW = "127.0.0.11", "127.0.0.12"


def sha256s(site: LoopbackSite) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((site.root / "zones").glob("*.zone"))
    }


def leftovers(site: LoopbackSite) -> list[str]:
    names = [p.name for p in (site.root / "zones").iterdir() if "kissha" in p.name]
    if (site.root / "state" / "journal.json").exists():
        names.append("journal.json")
    return names


def master_down(site: LoopbackSite) -> None:
    """Demote after one failed round, then stop fishfinger's web server: the next run
    fails over."""
    site.config_path.write_text(site.config_text(failures_before_demotion=1))
    site.stop_web("fishfinger")


def kissha_in_mount_ns(
    site: LoopbackSite, setup: str, *args: str
) -> subprocess.CompletedProcess[str]:
    """Run kissha in a private mount namespace after the shell ``setup`` (mounts)."""
    argv = [sys.executable, "-m", "kissha", "-c", str(site.config_path), *args, "--now", NOW]
    script = f"{setup} && exec {shlex.join(argv)}"
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_still_tells_the_run(out: str) -> None:
    assert "fishfinger  https ipv4  FAILED" in out
    assert "health: fishfinger DOWN, blowfish up" in out
    assert "decision: master blowfish, standby blowfish" in out


# --- zones are independent ----------------------------------------------------------


def test_an_unparseable_file_does_not_hold_back_the_others(site: LoopbackSite) -> None:
    notes = site.root / "zones" / "notes.zone"
    notes.write_text("; notes, not a zone\n$ORIGIN notes.\n@ IN SOA ns1 host (\n 1 2 3 4 5\n")
    before = sha256s(site)
    master_down(site)
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 7, r.stdout + r.stderr
    assert_still_tells_the_run(r.stdout)
    assert "notes. [plan]: " in r.stdout and "notes.zone" in r.stdout
    assert "6 zone(s) changed, reloaded and verified" in r.stdout
    assert r.stdout.count("could not be changed: notes.") == 1
    assert sha256s(site)["notes.zone"] == before["notes.zone"]
    assert site.answers("www.example.org", "A") == {A_BLOW}
    # The event names it once; the next run says it again but adds no event.
    state = json.loads((site.root / "state" / "state.json").read_text())
    change = [e for e in state["events"] if e["kind"] in ("failover", "records")][-1]
    assert change["failed_zones"] == ["notes."]
    assert "not changed: notes." in change["message"]
    r = site.kissha("failover", "--json", now=NOW)
    assert r.returncode == 5, r.stdout
    data = json.loads(r.stdout)
    assert data["exit_code"] == 5 and data["failed_zones"][0]["zone"] == "notes."
    assert data["health"]["fishfinger"]["up"] is False and data["probes"]
    after = json.loads((site.root / "state" / "state.json").read_text())
    assert after["seq"] == state["seq"]


def test_a_broken_zone_file_is_never_reloaded_with_the_others(site: LoopbackSite) -> None:
    # A hand edit broke foo.zone (nsd still serves the old one): the failover of the
    # others reloads only them, so nsd keeps serving foo.zone instead of SERVFAIL.
    broken = site.zone_path("foo.zone")
    broken.write_text(site.zone_text("foo.zone", serial=1700000001) + "oops IN A x\n")
    master_down(site)
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 7, r.stdout + r.stderr
    assert site.answers("www.foo.zone", "A") == {A_FISH}
    assert site.answers("www.example.org", "A") == {A_BLOW}


# --- environment errors: one line, exit 8, nothing changed ----------------------------


def test_disk_full_exits_8_and_changes_nothing(site: LoopbackSite) -> None:
    master_down(site)
    zones = site.root / "zones"
    copy = site.root / "zones-copy"
    setup = (
        f"cp -a {zones}/. {copy}/ && mount -t tmpfs -o size=256k tmpfs {zones} && "
        f"cp -a {copy}/. {zones}/ && "
        f"(dd if=/dev/zero of={zones}/.filler bs=4k 2>/dev/null || true) && "
        f"sha256sum {zones}/*.zone > {copy}/before && "
        f"trap 'sha256sum {zones}/*.zone > {copy}/after' EXIT && "
        f"{sys.executable} -m kissha -c {site.config_path} failover --now {NOW}; "
        "echo rc=$? >&2; true"
    )
    copy.mkdir()
    r = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", setup],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "rc=8" in r.stderr, r.stdout + r.stderr
    line = [x for x in r.stderr.splitlines() if x.startswith("kissha: ")]
    assert len(line) == 1, r.stderr
    assert "No space left on device; nothing was changed" in line[0]
    assert f"{zones}/." in line[0]  # the file it could not write
    assert_still_tells_the_run(r.stdout)
    assert "result: failed: " in r.stdout and "(exit 8)" in r.stdout
    assert (copy / "before").read_text() == (copy / "after").read_text()
    assert site.answers("www.example.org", "A") == {A_FISH}
    assert not (site.root / "state" / "journal.json").exists()


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (scripts/setup)")
def test_new_files_that_cannot_be_made_durable_exit_8_and_change_nothing(
    site: LoopbackSite,
) -> None:
    # The new zone files are made durable at once (files.make_durable: syncfs on
    # Linux) before any is renamed into place; an I/O error there is the disk's, and
    # no zone file may change.
    master_down(site)
    before = sha256s(site)
    inject = ["strace", "-o", "/dev/null", "-e", "trace=syncfs", "-e", "inject=syncfs:error=EIO"]
    argv = [sys.executable, "-m", "kissha", "-c", str(site.config_path), "failover"]
    r = subprocess.run(
        [*inject, *argv, "--now", NOW],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 8, r.stdout + r.stderr
    zones = site.root / "zones"
    assert r.stderr.startswith(f"kissha: {zones}: cannot write the new zone files: ")
    assert "Input/output error; nothing was changed" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert_still_tells_the_run(r.stdout)
    assert sha256s(site) == before
    assert leftovers(site) == []
    assert site.answers("www.example.org", "A") == {A_FISH}


def test_read_only_zones_directory_exits_8(site: LoopbackSite) -> None:
    master_down(site)
    before = sha256s(site)
    zones = site.root / "zones"
    r = kissha_in_mount_ns(
        site, f"mount --bind {zones} {zones} && mount -o remount,bind,ro {zones}", "failover"
    )
    assert r.returncode == 8, r.stdout + r.stderr
    assert r.stderr.startswith(f"kissha: {zones}/")
    assert "Read-only file system; nothing was changed" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert_still_tells_the_run(r.stdout)
    assert sha256s(site) == before
    assert leftovers(site) == []


def test_read_only_state_directory_exits_8(site: LoopbackSite) -> None:
    master_down(site)
    before = sha256s(site)
    state = site.root / "state"
    r = kissha_in_mount_ns(
        site, f"mount --bind {state} {state} && mount -o remount,bind,ro {state}", "failover"
    )
    assert r.returncode == 8, r.stdout + r.stderr
    assert r.stderr.startswith(f"kissha: {state}/")
    assert "Read-only file system" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert sha256s(site) == before


def test_permission_denied_exits_8(site: LoopbackSite, short_tmp: Path) -> None:
    master_down(site)
    before = sha256s(site)
    # kissha runs as nobody: it may read everything and write its state, not the zones.
    for d in (short_tmp, site.root, site.root / "pki"):
        d.chmod(0o755)
    for f in (site.root / "pki").iterdir():
        f.chmod(0o644)
    subprocess.run(["chown", "-R", "65534:65534", str(site.root / "state")], check=True)
    argv = [sys.executable, "-m", "kissha", "-c", str(site.config_path), "failover"]
    r = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv, "--now", NOW],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert r.returncode == 8, r.stdout + r.stderr
    assert f"{site.root / 'zones'}/" in r.stderr
    assert "Permission denied; nothing was changed" in r.stderr
    assert_still_tells_the_run(r.stdout)
    assert sha256s(site) == before


@pytest.mark.parametrize("key", ["control", "checkzone"])
def test_a_missing_tool_exits_8_before_any_file_changes(site: LoopbackSite, key: str) -> None:
    master_down(site)
    text = site.config_path.read_text().replace(
        "[dns]\n", f'[dns]\n{key} = ["/nonexistent/nsd-{key}"]\n'
    )
    if key == "control":
        text = text.replace('control = ["nsd-control"', 'old_control = ["nsd-control"')
        text = "\n".join(x for x in text.splitlines() if not x.startswith("old_control")) + "\n"
    site.config_path.write_text(text)
    before = sha256s(site)
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 8, r.stdout + r.stderr
    assert f"kissha: /nonexistent/nsd-{key}: cannot run it (dns.{key}): no such file" in r.stderr
    assert_still_tells_the_run(r.stdout)
    assert sha256s(site) == before
    assert leftovers(site) == []
    r = site.kissha("failover", "--json", now=NOW)  # the same, for machines
    data = json.loads(r.stdout)
    assert (r.returncode, data["exit_code"], data["outcome"]) == (8, 8, "failed")
    assert data["health"]["fishfinger"]["up"] is False
    assert data["decision"]["master"] == "blowfish" and len(data["probes"]) == 4
    assert sha256s(site) == before


# --- the journal, backups and what nsd serves ---------------------------------------


@pytest.mark.parametrize("content", [b"[]", b"null", b'"x"', b'{"zones": [1]}', b"\x00garbage"])
def test_a_damaged_journal_with_backups_is_refused(site: LoopbackSite, content: bytes) -> None:
    zone = site.zone_path("example.org")
    backup = zone.with_name(".example.org.zone.kissha-old")
    backup.write_bytes(zone.read_bytes())
    (site.root / "state" / "journal.json").write_bytes(content)
    before = sha256s(site)
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 8, r.stdout + r.stderr
    assert "damaged journal of an interrupted run, and backups exist" in r.stderr
    assert str(backup) in r.stderr
    assert "fishfinger  https ipv4  ok" in r.stdout  # the probes still ran and are told
    assert sha256s(site) == before and backup.exists()


def test_a_damaged_journal_without_backups_is_set_aside(site: LoopbackSite) -> None:
    (site.root / "state" / "journal.json").write_bytes(b'{"zones": "x"}')
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "damaged journal set aside as journal.json.corrupt" in r.stdout
    assert leftovers(site) == []


def test_a_backup_without_journal_is_removed(site: LoopbackSite) -> None:
    # A run killed after its commit point (journal removed) left a backup.
    zone = site.zone_path("foo.zone")
    zone.with_name(".foo.zone.zone.kissha-old").write_text("the old file")
    before = sha256s(site)
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "backup of a finished run removed" in r.stdout
    assert sha256s(site) == before and leftovers(site) == []


def test_nsd_serving_another_serial_is_reloaded(site: LoopbackSite) -> None:
    # The files say one thing, nsd serves another (a crash after a change, a failed
    # reload): the run reloads, verifies, and says so.
    zone = site.zone_path("irregular.ninja")
    zone.write_text(site.zone_text("irregular.ninja", serial=1700000009))
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (
        "recovered: irregular.ninja.: the server served serial 1700000000, the file says "
        "1700000009: reloaded, now served"
    ) in r.stdout
    assert site.serial("irregular.ninja") == 1700000009
    again = site.kissha("failover", now=NOW)
    assert "recovered" not in again.stdout
    # --quiet still tells it: something was done
    zone.write_text(site.zone_text("irregular.ninja", serial=1700000010))
    r = site.kissha("failover", "--quiet", now=NOW)
    assert r.returncode == 0 and "recovered: irregular.ninja.: " in r.stdout


# --- symlinks, SIGTERM ----------------------------------------------------------------


def test_a_symlinked_zone_file_is_written_through(site: LoopbackSite) -> None:
    real_dir = site.root / "real"
    real_dir.mkdir()
    link = site.zone_path("example.org")
    target = real_dir / "example.org.zone"
    target.write_bytes(link.read_bytes())
    os.chmod(target, 0o640)
    os.chown(target, 4321, 4321)
    link.unlink()
    link.symlink_to(target)
    master_down(site)
    r = site.kissha("failover", now=NOW)
    assert r.returncode == 1, r.stdout + r.stderr
    assert link.is_symlink() and link.resolve() == target
    assert f"{A_BLOW} ; Enable failover" in target.read_text()
    st = target.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (4321, 4321, 0o640)
    assert site.answers("www.example.org", "A") == {A_BLOW}
    assert [p.name for p in real_dir.iterdir()] == ["example.org.zone"]
    assert leftovers(site) == []


def test_sigterm_during_a_run_finishes_it(site: LoopbackSite, short_tmp: Path) -> None:
    assert site.nsd is not None
    slow = short_tmp / "slow-control"
    slow.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = reload ] && touch {short_tmp}/in-reload && sleep 1\n'
        f'exec {" ".join(site.nsd.control_argv)} "$@"\n'
    )
    slow.chmod(0o755)
    master_down(site)
    real = '", "'.join(site.nsd.control_argv)
    site.config_path.write_text(site.config_path.read_text().replace(f'["{real}"]', f'["{slow}"]'))
    argv = [sys.executable, "-m", "kissha", "-c", str(site.config_path), "failover"]
    proc = subprocess.Popen(
        [*argv, "--now", NOW], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 20
    while not (short_tmp / "in-reload").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "never reached the reload"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, out + err
    assert "SIGTERM: finishing this run first" in err
    assert "6 zone(s) changed, reloaded and verified" in out
    assert site.answers("www.example.org", "A") == {A_BLOW}
    assert leftovers(site) == []


# --- a slow reload is waited for --------------------------------------------------------


def test_a_slow_reload_is_waited_for_not_rolled_back(short_tmp: Path, isolation: None) -> None:
    # 8 MB of zone data: nsd needs about a second to load it, far more than the
    # verify_timeout of 0.2 s; while nsd still serves the old serial, kissha waits.
    with LoopbackSite(short_tmp / "site", zones=("example.org", "big.test")) as site:
        big = site.zone_path("big.test")
        extra = "".join(f"h{i} IN A 198.51.{(i >> 8) & 255}.{i & 255}\n" for i in range(300_000))
        big.write_text(site.zone_text("big.test") + extra)
        assert site.nsd is not None
        subprocess.run([*site.nsd.control_argv, "reload"], check=True, capture_output=True)
        deadline = time.monotonic() + 60
        while site.answers("h1.big.test", "A") != {"198.51.0.1"}:
            assert time.monotonic() < deadline, "nsd never loaded the big zone"
            time.sleep(0.05)
        text = site.config_text(failures_before_demotion=1)
        site.config_path.write_text(text.replace("verify_timeout = 3.0", "verify_timeout = 0.2"))
        assert site.kissha("failover", now=NOW).returncode == 0  # validates the skeletons
        site.stop_web("fishfinger")
        r = site.kissha("failover", "--json", now=NOW)
        data = json.loads(r.stdout)
        assert data["exit_code"] == 1, r.stdout + r.stderr
        assert data["apply"]["timings"]["verify"] > 0.2  # it waited past verify_timeout
        assert site.answers("www.big.test", "A") == {A_BLOW}


@contextlib.contextmanager
def _answering(answer: Callable[[str, int], str]) -> Iterator[int]:
    """A UDP DNS server on 127.0.0.1 (its port yielded) that answers each question with
    the authoritative record ``answer(name, rdtype)`` gives, as text ("SOA ..." or
    "A ...")."""
    import socket
    import threading

    import dns.message
    import dns.rrset

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(512)
            except TimeoutError:
                continue
            q = dns.message.from_wire(data)
            r = dns.message.make_response(q)
            r.flags |= 0x0400  # AA
            name = q.question[0].name.to_text()
            rdtype, text = answer(name, q.question[0].rdtype).split(" ", 1)
            r.answer.append(dns.rrset.from_text(name, 60, "IN", rdtype, text))
            sock.sendto(r.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        sock.close()


def test_while_a_server_loads_one_zone_at_a_time_is_asked_again(isolation: None) -> None:
    # 40 zones served with the old serial for 0.4 s (a reload), then the new one; the
    # first zone is never loaded (nsd kept its old data). Only one SOA check at a time
    # is asked (first, and again while the server answers old serials), the zones
    # taking turns: the others are asked once one passes, and the stuck zone fails
    # alone, whichever zone went first (it did here).
    from kissha.dns.verify import Check, verify

    zones = [f"z{i}.test." for i in range(40)]
    asked: list[tuple[float, str]] = []
    started = time.monotonic()

    def answer(name: str, rdtype: int) -> str:
        asked.append((time.monotonic() - started, name))
        loaded = time.monotonic() - started > 0.4 and name != zones[0]
        return f"SOA ns. host. {6 if loaded else 5} 1 1 1 1"

    checks = [Check(z, "SOA", serial=6, zone=z, old_serial=5) for z in zones]
    with _answering(answer) as port:
        failures = verify(["127.0.0.1"], port, checks, 1.0, grace=0.5)
    assert [(f.zone, f.kind) for f in failures] == [(zones[0], "still loading")]
    assert time.monotonic() - started > 0.4
    # Every zone asked, and those that passed asked after the reload; while the server
    # loaded, about one query every RETRY_AFTER (0.01 s: ~40 in 0.4 s), not one per
    # zone each time (~40 x 40), and ~40 x 100 in all before (the canaries' turns).
    names = [n for _, n in asked]
    assert set(names) == set(zones)
    assert all(any(t > 0.4 and n == z for t, n in asked) for z in zones[1:])
    assert sum(t <= 0.4 for t, _ in asked) < 80, asked
    assert len(asked) < 40 * 2 + 250, len(asked)


def test_zones_behind_a_canary_that_never_passes_fail_as_not_asked(isolation: None) -> None:
    # A server that answers every zone's old serial for ever (a reload that never
    # happened): the zones whose turn as the canary came fail as still loading, the
    # others as not asked, and each failure says which.
    from kissha.dns.verify import Check, verify

    zones = [f"z{i}.test." for i in range(200)]
    asked: set[str] = set()

    def answer(name: str, rdtype: int) -> str:
        asked.add(name)
        return "SOA ns. host. 5 1 1 1 1"

    checks = [Check(z, "SOA", serial=6, zone=z, old_serial=5) for z in zones]
    with _answering(answer) as port:
        failures = verify(["127.0.0.1"], port, checks, 0.2, grace=0.3)
    kinds = {f.zone: f.kind for f in failures}
    assert sorted(kinds) == sorted(zones)
    assert {z for z, k in kinds.items() if k == "still loading"} == asked
    assert 0 < len(asked) < len(zones)
    words = next(str(f) for f in failures if f.kind == "not asked")
    assert words.startswith("127.0.0.1: z")
    assert "not asked: the server still served old serials after 0." in words
    assert words.endswith("s (still loading; wanted 6)")


def test_zones_behind_a_canary_never_answered_say_so(isolation: None) -> None:
    # A server that takes the queries and never answers: the first zone's serial was
    # asked and got no answer; the others were never asked, and say why.
    import socket

    from kissha.dns.verify import Check, verify

    zones = [f"z{i}.test." for i in range(3)]
    checks = [Check(z, "SOA", serial=6, zone=z, old_serial=5) for z in zones]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        failures = verify(["127.0.0.1"], silent.getsockname()[1], checks, 0.2, grace=0.2)
    assert [(f.zone, f.kind) for f in failures] == [
        (zones[0], "no answer"),
        (zones[1], "not asked"),
        (zones[2], "not asked"),
    ]
    words = str(failures[1])
    assert words.startswith(
        "127.0.0.1: z1.test. not asked: the server did not answer the first zone asked after 0."
    )
    assert words.endswith(" s (wanted 6)")


def test_giving_up_says_still_loading_or_wrong_answer(isolation: None) -> None:
    # A server that keeps answering the old serial (still loading) for one zone and a
    # wrong address for another: each failure says which it was.
    from kissha.dns.verify import Check, verify

    def answer(name: str, rdtype: int) -> str:
        if rdtype == 6:
            return f"SOA ns. host. {5 if name == 'old.test.' else 6} 1 1 1 1"
        return "A 198.51.100.99"

    checks = [
        Check("old.test.", "SOA", serial=6, zone="old.test.", old_serial=5),
        Check("new.test.", "SOA", serial=6, zone="new.test.", old_serial=5),
        Check("www.new.test.", "A", addresses=frozenset({"198.51.100.12"}), gate=1, zone="new"),
    ]
    with _answering(answer) as port:
        t0 = time.monotonic()
        failures = verify(["127.0.0.1"], port, checks, 0.2, grace=0.6)
        waited = time.monotonic() - t0
    assert 0.7 < waited < 3  # the loading zone was waited for, within the bound
    words = sorted(str(f) for f in failures)
    assert words[0].startswith("127.0.0.1: old.test. still serves the old serial 5 after 0.")
    assert words[0].endswith("s (still loading; wanted 6)")
    assert words[1] == (
        "127.0.0.1: www.new.test. A = 198.51.100.12, got 198.51.100.99 (wrong answer)"
    )


def test_old_addresses_after_the_new_serial_are_waited_for(isolation: None) -> None:
    # nsd's new server processes take over from the old ones one by one: for a moment
    # the same socket answers the new serial and, from an old process, a name's old
    # address. That is still loading (waited for within the grace), not a wrong answer.
    from kissha.dns.verify import Check, verify

    started = time.monotonic()

    def answer(name: str, rdtype: int) -> str:
        if rdtype == 6:
            return "SOA ns. host. 6 1 1 1 1"
        if name == "www.slow.test." and time.monotonic() - started > 0.5:
            return "A 198.51.100.12"
        return "A 198.51.100.11"  # the old process: the old address (www.stuck.test. for ever)

    new, old = frozenset({"198.51.100.12"}), frozenset({"198.51.100.11"})
    with _answering(answer) as port:
        slow = [
            Check("slow.test.", "SOA", serial=6, zone="slow.test.", old_serial=5),
            Check("www.slow.test.", "A", addresses=new, gate=0, zone="slow", old_addresses=old),
        ]
        assert verify(["127.0.0.1"], port, slow, 0.2, grace=2.0) == []
        assert time.monotonic() - started > 0.5  # it waited past its 0.2 s for the name
        stuck = [
            Check("stuck.test.", "SOA", serial=6, zone="stuck.test.", old_serial=5),
            Check("www.stuck.test.", "A", addresses=new, gate=0, zone="stuck", old_addresses=old),
        ]
        failures = verify(["127.0.0.1"], port, stuck, 0.2, grace=0.3)
    assert [f.kind for f in failures] == ["still loading"]
    words = str(failures[0])
    assert words.startswith(
        "127.0.0.1: www.stuck.test. A = 198.51.100.12, still the old 198.51.100.11"
    )
    assert words.endswith("s (still loading)")
