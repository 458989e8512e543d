"""kissha certs from the command line, without a CA: the lock, usage errors, dry runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kissha.files import RunLock


def _config(tmp: Path, extra: str = "") -> Path:
    path = tmp / "kissha.toml"
    path.write_text(f"""
state_dir = "{tmp}/state"
[nodes.a]
fqdn = "a.example.net"
ipv4 = "203.0.113.1"
[nodes.b]
fqdn = "b.example.net"
ipv4 = "203.0.113.2"
[dns]
zones_dir = "{tmp}"
[[sites]]
name = "example.org"
[certs]
node = "a"
# Nothing listens here: a run that tried to reach the CA would fail.
directory = "https://127.0.0.1:9/dir"
cert = "{tmp}/ssl/{{name}}.crt"
key = "{tmp}/ssl/private/{{name}}.key"
fullchain = "{tmp}/ssl/{{name}}.fullchain.pem"
challenge_dir = "{tmp}/acme"
{extra}
""")
    return path


def _certs(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kissha",
            "-c",
            str(config),
            "certs",
            "--now",
            "2026-11-23T12:00:00Z",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dry_run_writes_nothing_and_asks_nothing(tmp_path: Path) -> None:
    r = _certs(_config(tmp_path), "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    names = {n["name"]: n["action"] for n in json.loads(r.stdout)["names"]}
    assert names == {
        "example.org": "would-request",
        "www.example.org": "would-request",
        "standby.example.org": "would-request",
        "a.example.net": "would-request",  # not b.example.net: it never points at a
    }
    assert not (tmp_path / "ssl").exists()
    assert not (tmp_path / "state" / "certs.json").exists()


def test_a_held_lock_exits_4(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with RunLock(tmp_path / "state" / "certs.lock"):
        r = _certs(config)
    assert r.returncode == 4
    assert "certs.lock" in r.stderr


def test_usage_and_config_errors_exit_2(tmp_path: Path) -> None:
    r = _certs(_config(tmp_path), "--force", "b.example.net")
    assert r.returncode == 2
    assert "--force: not a name this node holds: b.example.net" in r.stderr
    path = _config(tmp_path)
    path.write_text(path.read_text().split("[certs]")[0])
    r = _certs(path)
    assert r.returncode == 2
    assert "no [certs] table" in r.stderr


def test_ca_unreachable_placeholders_then_a_failed_hook_exits_3(tmp_path: Path) -> None:
    # The CA is unreachable: placeholders are written, the hook runs once and fails.
    config = _config(tmp_path, 'reload = [["false"]]\nexclude = ["www.example.org"]')
    r = _certs(config)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "hook failed: false: exit 1" in r.stdout
    assert "CA unreachable" in r.stdout
    key = tmp_path / "ssl/private/example.org.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "ssl/www.example.org.crt").exists()  # excluded
