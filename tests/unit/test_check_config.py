"""kissha check-config tells the truth: "ok" only with exit 0, every problem with its
file:line, nsd's own verdict on each zone, directories and tools, output capped.

Each case runs the real command (``python -m kissha``) with the real nsd-checkzone, and
checks that the zone files are byte-identical afterwards: check-config touches nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
ZONES = Path(__file__).resolve().parent.parent / "zones"
SEED = (ZONES / "example.org--seed.zone").read_text()
NODES = """
[nodes.fishfinger]
fqdn = "fishfinger.example.org"
ipv4 = "198.51.100.11"
ipv6 = "2001:db8:1::11"

[nodes.blowfish]
fqdn = "blowfish.example.org"
ipv4 = "198.51.100.12"
ipv6 = "2001:db8:1::12"
"""

needs_nsd = pytest.mark.skipif(
    shutil.which("nsd-checkzone") is None or shutil.which("nsd-control") is None,
    reason="needs nsd-checkzone and nsd-control",
)


def write_config(root: Path, dns_extra: str = "", zones: dict[str, str] | None = None) -> Path:
    zones_dir = root / "zones"
    if zones is not None:
        zones_dir.mkdir(parents=True, exist_ok=True)
        for name, text in zones.items():
            (zones_dir / name).write_text(text)
    path = root / "kissha.toml"
    path.write_text(
        f'state_dir = "{root / "state"}"\n{NODES}\n[dns]\nzones_dir = "{zones_dir}"\n{dns_extra}'
    )
    return path


def kissha(
    config: Path, *args: str, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "kissha", "-c", str(config), "check-config", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def digests(root: Path) -> dict[str, str]:
    """Every file under the zones directory (hidden ones too) with its sha256."""
    zones = root / "zones"
    if not zones.is_dir():
        return {}
    return {
        str(p.relative_to(zones)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(zones.rglob("*"))
        if p.is_file()
    }


def both(config: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    """The text run and the JSON run; their exit codes agree with each other and "ok"."""
    text = kissha(config)
    js = kissha(config, "--json")
    data = json.loads(js.stdout)
    assert js.returncode == text.returncode
    assert data["exit_code"] == text.returncode
    assert data["ok"] is (text.returncode == 0)
    first = text.stdout.split("\n", 1)[0]
    assert (": ok;" in first) is (text.returncode == 0), text.stdout
    return text, data


# --- ok, and "ok" only then ------------------------------------------------------------------


@needs_nsd
def test_a_good_setup_is_ok(tmp_path: Path) -> None:
    config = write_config(tmp_path, zones={"example.org.zone": SEED})
    before = digests(tmp_path)
    r, data = both(config)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{config}: ok; nodes: fishfinger, blowfish")
    assert "example.org." in r.stdout and "6 marked record(s)" in r.stdout
    assert r.stderr == ""
    assert data["problems"] == [] and data["warnings"] == []
    assert digests(tmp_path) == before  # the probe files are gone too
    assert not (tmp_path / "state").exists()  # created by the first run, not by a check


def test_an_invalid_config_is_not_ok(tmp_path: Path) -> None:
    path = CONFIG_DIR / "bad-dns-server.toml"
    r, data = both(path)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr == f"kissha: {path}: dns.server: must be one of nsd, not 'bind'\n"
    assert data["problems"] == [f"{path}: dns.server: must be one of nsd, not 'bind'"]


def test_config_errors_are_capped(tmp_path: Path) -> None:
    path = CONFIG_DIR / "bad-many-unknown-keys.toml"
    r, data = both(path)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 51
    assert lines[49] == f"kissha: {path}: unknown_key_049: unknown key"
    assert lines[50] == "kissha: ... and 250 more"
    assert data["problems_total"] == 300
    assert len(data["problems"]) == 51  # type: ignore[arg-type]
    # Every other command says it the same way: one message, capped.
    proc = subprocess.run(
        [sys.executable, "-m", "kissha", "-c", str(path), "failover", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 52
    assert proc.stderr.splitlines()[-1] == "  ... and 250 more"


# --- the zones directory: missing is not empty ------------------------------------------------


@needs_nsd
def test_zones_directory_missing(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    r, _ = both(config)
    assert r.returncode == 2
    assert f"{tmp_path / 'zones'}: the zones directory (dns.zones_dir) does not exist" in r.stderr
    assert "no zone file matches" not in r.stderr


@needs_nsd
def test_monitor_checks_that_cannot_be_built_are_config_problems(tmp_path: Path) -> None:
    # The parser checks each [[monitor.checks]] entry alone; an unknown generated check
    # named, a dependency on no check and a cycle need the whole list, as kissha
    # monitor builds it: check-config says so too, before the first monitor run does.
    config = write_config(tmp_path, zones={"example.org.zone": SEED})
    with config.open("a") as f:
        f.write(
            "[monitor]\n"
            '[[monitor.checks]]\nid = "nope"\nretries = 1\n'
            '[[monitor.checks]]\nid = "a"\nargv = ["/bin/true"]\ndepends = ["b"]\n'
            '[[monitor.checks]]\nid = "b"\nargv = ["/bin/true"]\ndepends = ["a", "c"]\n'
        )
    r, data = both(config)
    assert r.returncode == 2, r.stdout + r.stderr
    assert data["problems"] == [
        f"{config}: monitor.checks[0]: no generated check is named 'nope' and no kind is given "
        "(see kissha monitor --list)",
        f"{config}: monitor.checks: b: depends on 'c', which is no check "
        "(see kissha monitor --list)",
        f"{config}: monitor.checks: dependency cycle: a -> b -> a",
    ]
    # Checks of different nodes may depend on each other: each node drops the other's,
    # and its dependency with it, so no node has the cycle.
    text = config.read_text().replace(
        'id = "nope"\nretries = 1\n', 'id = "c"\nargv = ["/bin/true"]\n'
    )
    text = text.replace('id = "a"\n', 'id = "a"\nnodes = ["fishfinger"]\n')
    config.write_text(text.replace('id = "b"\n', 'id = "b"\nnodes = ["blowfish"]\n'))
    r, data = both(config)
    assert r.returncode == 0, r.stdout + r.stderr


@needs_nsd
def test_no_zone_file_matches(tmp_path: Path) -> None:
    config = write_config(tmp_path, zones={"example.org.txt": SEED})
    before = digests(tmp_path)
    r, _ = both(config)
    assert r.returncode == 2
    assert f"{tmp_path / 'zones'}: no zone file matches '*.zone' (dns.zones)" in r.stderr
    assert "does not exist" not in r.stderr
    assert digests(tmp_path) == before


# --- every problem of every zone, with its line; nsd's verdict --------------------------------


@needs_nsd
def test_every_problem_of_every_zone_with_its_line(tmp_path: Path) -> None:
    broken = SEED + (
        "alias IN CNAME www ; Enable failover\n"  # 18
        "two IN A 192.0.2.1 192.0.2.2 ; Enable failover\n"  # 19
        "oops IN A not-an-address\n"  # 20: kissha can plan it; nsd refuses it
    )
    notes = 'x IN TXT ( "a"\n'  # the stray file of the issue: '(' never closed
    config = write_config(
        tmp_path, zones={"example.org.zone": broken, "notes.zone": notes, "ok.zone": SEED}
    )
    before = digests(tmp_path)
    r, data = both(config)
    assert r.returncode == 5, r.stderr
    zones = tmp_path / "zones"
    for fragment in [
        f"{zones / 'example.org.zone'}:18: '; Enable failover' on a CNAME record",
        f"{zones / 'example.org.zone'}:19: marked A record needs one address",
        f"{zones / 'example.org.zone'}:20: nsd-checkzone: invalid IPv4 address 'not-an-address'",
        f"{zones / 'notes.zone'}:1: '(' is never closed",
        f"{zones / 'notes.zone'}:1: no SOA record found",
        # nsd loads the zone 'ok' (named after its file) and finds example.org. data in it
        f"{zones / 'ok.zone'}:8: nsd-checkzone: SOA record with invalid domain name",
    ]:
        assert fragment in r.stderr, fragment
    assert f"{config}: " in r.stdout and ": ok;" not in r.stdout
    assert data["problems_total"] == len(data["problems"])  # type: ignore[arg-type]
    assert digests(tmp_path) == before


@needs_nsd
def test_a_marked_blank_owner_after_include_is_a_zone_problem(tmp_path: Path) -> None:
    text = SEED + "$INCLUDE mail.inc\n    300 IN A 192.0.2.99 ; Enable failover\n"
    config = write_config(
        tmp_path, zones={"example.org.zone": text, "mail.inc": "mail IN A 192.0.2.5\n"}
    )
    r, _ = both(config)
    assert r.returncode == 5
    assert (
        f"{tmp_path / 'zones' / 'example.org.zone'}:19: marked record without an owner" in r.stderr
    )


@needs_nsd
def test_zone_problems_are_capped(tmp_path: Path) -> None:
    text = SEED + "".join(f"c{i} IN CNAME www ; Enable failover\n" for i in range(80))
    config = write_config(tmp_path, zones={"example.org.zone": text})
    r, data = both(config)
    assert r.returncode == 5
    lines = r.stderr.splitlines()
    assert len(lines) == 51
    assert lines[-1] == "kissha: ... and 30 more"
    assert "example.org.zone:67: " in lines[-2]  # the 50th: line 18 + 49
    assert data["problems_total"] == 80


# --- the configured tools, and whether they exist ---------------------------------------------


@needs_nsd
def test_the_configured_checkzone_is_the_one_run(tmp_path: Path) -> None:
    log = tmp_path / "argv.log"
    wrapper = tmp_path / "my-checkzone"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec nsd-checkzone "$@"\n')
    wrapper.chmod(0o755)
    config = write_config(
        tmp_path, f'checkzone = ["{wrapper}"]\n', zones={"example.org.zone": SEED}
    )
    r = kissha(config)
    assert r.returncode == 0, r.stderr
    assert log.read_text() == f"example.org {tmp_path / 'zones' / 'example.org.zone'}\n"


@needs_nsd
@pytest.mark.parametrize(
    ("key", "extra"),
    [
        ("dns.checkzone", 'checkzone = ["/nonexistent/nsd-checkzone"]\n'),
        ("dns.control", 'control = ["no-such-nsd-control", "-c", "/etc/nsd/nsd.conf"]\n'),
    ],
)
def test_a_missing_tool_is_an_environment_problem(tmp_path: Path, key: str, extra: str) -> None:
    config = write_config(tmp_path, extra, zones={"example.org.zone": SEED})
    before = digests(tmp_path)
    r, _ = both(config)
    assert r.returncode == 2
    lines = [x for x in r.stderr.splitlines() if key in x]
    assert len(lines) == 1
    assert "command not found (not on PATH, or not executable)" in lines[0]
    assert digests(tmp_path) == before


# --- directories that do not take new files ---------------------------------------------------


def _mount_namespace() -> tuple[str, ...] | None:
    """An unshare prefix giving the command its own mounts (to make a read-only one)."""
    for prefix in (("unshare", "--mount"), ("unshare", "--user", "--map-root-user", "--mount")):
        try:
            ok = subprocess.run([*prefix, "true"], capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            return prefix
    return None


@needs_nsd
@pytest.mark.parametrize(
    ("directory", "fragment"),
    [
        ("zones", "the zones directory (dns.zones_dir) is not writable: Read-only file system"),
        ("state", "the state directory (state_dir) is not writable: Read-only file system"),
    ],
)
def test_a_read_only_directory_is_an_environment_problem(
    tmp_path: Path, directory: str, fragment: str
) -> None:
    prefix = _mount_namespace()
    if prefix is None:
        pytest.skip("needs unshare --mount")
    config = write_config(tmp_path, zones={"example.org.zone": SEED})
    (tmp_path / "state").mkdir()
    before = digests(tmp_path)
    target = tmp_path / directory
    script = (
        f'mount --bind "{target}" "{target}" && mount -o remount,bind,ro "{target}" && '
        + " ".join(f"'{a}'" for a in [sys.executable, "-m", "kissha", "-c", str(config)])
        + " check-config"
    )
    r = subprocess.run(
        [*prefix, "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"kissha: {target}: {fragment}" in r.stderr.splitlines()
    assert ": ok;" not in r.stdout
    assert digests(tmp_path) == before


# --- comments that almost match the mark -----------------------------------------------------


@needs_nsd
def test_near_miss_marks_are_warnings_and_the_exit_is_unchanged(tmp_path: Path) -> None:
    text = SEED + (
        "a 300 IN A 192.0.2.10 ; Enable  failover\n"  # 18
        "b 300 IN A 192.0.2.10 ; Enable fail-over\n"  # 19
        "standby.c 300 IN A 192.0.2.10 ; Enable failover (master)\n"  # 20
        "d 300 IN A 192.0.2.10 ; enable FAILOVER\n"  # the mark: any case, as always
    )
    config = write_config(tmp_path, zones={"example.org.zone": text})
    before = digests(tmp_path)
    r, data = both(config)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{config}: ok;")
    assert "8 marked record(s)" in r.stdout
    path = tmp_path / "zones" / "example.org.zone"
    warnings = r.stderr.splitlines()
    assert warnings == [
        f"kissha: warning: {path}:18: '; Enable  failover' is not the mark '; Enable failover' "
        "(spacing, spelling or hyphens differ): kissha leaves this record alone",
        f"kissha: warning: {path}:19: '; Enable fail-over' is not the mark '; Enable failover' "
        "(spacing, spelling or hyphens differ): kissha leaves this record alone",
        f"kissha: warning: {path}:20: '; Enable failover (master)': the words after the mark "
        "are not read, so this record follows its name (standby); write "
        "'; Enable failover master' or '; Enable failover standby' to choose",
    ]
    assert data["warnings_total"] == 3
    assert digests(tmp_path) == before
