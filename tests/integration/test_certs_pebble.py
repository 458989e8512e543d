"""kissha certs against a real pebble on loopback, with the HTTP-01 redirect chain.

Two "nodes" on loopback: a (127.0.0.1) runs kissha certs; b (127.0.0.2) only answers
port 80 with kissha challenges and holds no token. pebble-challtestsrv is the DNS:
example.org points at b, so its validation only succeeds through b's redirect to a's
FQDN. Times come from --now, never from the clock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from kissha.certs import summary
from lab.pebble import ChallTestSrv, Pebble
from lab.sink import Sink

pytestmark = pytest.mark.integration

NOW = "2026-11-23T12:00:00Z"
NAMES = ("example.org", "www.example.org", "a.example.net")


@dataclass
class Setup:
    root: Path
    pebble: Pebble
    responders: list[subprocess.Popen[bytes]]

    def config(self, node: str) -> Path:
        return self.root / f"{node}.toml"

    def run(self, *args: str, now: str = NOW, node: str = "a") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "kissha",
                "-c",
                str(self.config(node)),
                "certs",
                "--now",
                now,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )

    def cert(self, name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate((self.root / "ssl" / f"{name}.crt").read_bytes())

    def hooks(self) -> int:
        path = self.root / "hooks"
        return len(path.read_text().splitlines()) if path.exists() else 0


def _config(root: Path, node: str, pebble: Pebble) -> str:
    return f"""
state_dir = "{root}/state-{node}"
[nodes.a]
fqdn = "a.example.net"
ipv4 = "127.0.0.1"
[nodes.b]
fqdn = "b.example.net"
ipv4 = "127.0.0.2"
[dns]
zones_dir = "{root}"
[[sites]]
name = "example.org"
standby = []
[certs]
node = "{node}"
directory = "{pebble.directory}"
ca_file = "{pebble.tls_ca}"
contact = "ops@example.org"
cert = "{root}/ssl/{{name}}.crt"
key = "{root}/ssl/private/{{name}}.key"
fullchain = "{root}/ssl/{{name}}.fullchain.pem"
challenge_dir = "{root}/acme-{node}"
reload = [["sh", "-c", "echo reload >> {root}/hooks"]]
concurrency = 2
"""


@pytest.fixture
def setup(short_tmp: Path, isolation: None) -> Iterator[Setup]:
    subprocess.run(["ip", "addr", "add", "127.0.0.2/8", "dev", "lo"], check=False)
    dns = ChallTestSrv().start()
    for name, address in [("example.org", "127.0.0.2"), ("b.example.net", "127.0.0.2")]:
        dns.add_a(name, address)
    pebble = Pebble(short_tmp / "pebble", http_port=80, dns="127.0.0.1:8053").start()
    s = Setup(short_tmp, pebble, [])
    try:
        for node, address in [("a", "127.0.0.1"), ("b", "127.0.0.2")]:
            s.config(node).write_text(_config(short_tmp, node, pebble))
            s.responders.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "kissha",
                        "-c",
                        str(s.config(node)),
                        "challenges",
                        "--listen",
                        f"{address}:80",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=(short_tmp / f"responder-{node}.log").open("wb"),
                )
            )
        time.sleep(0.5)  # the responders import and bind
        yield s
    finally:
        for p in s.responders:
            p.terminate()
            p.wait(5)
        pebble.stop()
        dns.stop()


def _verify(s: Setup, name: str) -> None:
    """The chain verifies against pebble's issuing root for this name."""
    done = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(s.pebble.issuing_root),
            "-untrusted",
            str(s.root / "ssl" / f"{name}.fullchain.pem"),
            "-verify_hostname",
            name,
            str(s.root / "ssl" / f"{name}.crt"),
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_obtain_then_nothing_then_renew_near_expiry(setup: Setup) -> None:
    s = setup
    dry = s.run("--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert dry.stdout.count("would-request") == 3
    assert not (s.root / "ssl").exists()

    first = s.run("--json")
    assert first.returncode == 1, first.stdout + first.stderr
    report = json.loads(first.stdout)
    assert {n["name"]: n["action"] for n in report["names"]} == dict.fromkeys(NAMES, "obtained")
    assert s.hooks() == 1  # once per run, not once per name
    for name in NAMES:
        _verify(s, name)
        assert (s.root / "ssl/private" / f"{name}.key").stat().st_mode & 0o777 == 0o600
        assert (s.root / "ssl" / f"{name}.crt").stat().st_mode & 0o777 == 0o644
        # OpenBSD layout: relayd sends NAME.crt, so it holds the chain too.
        assert (s.root / "ssl" / f"{name}.crt").read_bytes() == (
            s.root / "ssl" / f"{name}.fullchain.pem"
        ).read_bytes()
    rows = {r.name: r for r in summary.load(s.root / "state-a")}
    assert set(rows) == set(NAMES)
    assert all("Pebble" in r.issuer and r.not_after and r.due_at for r in rows.values())
    exposition = "\n".join(
        f"{family} {n} {v}"
        for family, _, _, values in summary.metrics(list(rows.values()))
        for n, v in values
    )
    assert "kissha_cert_expiry_timestamp_seconds example.org" in exposition
    assert "<td>www.example.org</td>" in summary.html_section(list(rows.values()))
    account = next((s.root / "state-a" / "acme").glob("*/account.key"))
    assert account.stat().st_mode & 0o777 == 0o600
    key_before = account.read_bytes()

    # A second run: nothing due, no request at all (pebble stopped to prove it), no hook.
    s.pebble.stop()
    second = s.run()
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.count("unchanged") == 3
    assert "no certificate changed: no reload" in second.stdout
    assert s.hooks() == 1
    s.pebble.start()

    # Ten days before expiry (--now): due by a third of the lifetime left; renewed.
    not_after = s.cert("example.org").not_valid_after_utc
    late = datetime.fromtimestamp(not_after.timestamp() - 10 * 86400, UTC).isoformat()
    serial = s.cert("example.org").serial_number
    third = s.run(now=late)
    assert third.returncode == 1, third.stdout + third.stderr
    assert third.stdout.count("renewed") == 3
    assert s.cert("example.org").serial_number != serial
    assert s.hooks() == 2
    assert account.read_bytes() == key_before  # the account key is kept


def test_ca_down_other_names_done_no_hook_one_notification(setup: Setup) -> None:
    s = setup
    with Sink(http=("127.0.0.1", 0)) as sink:
        _ca_down(s, sink)


def _ca_down(s: Setup, sink: Sink) -> None:
    url = f"http://127.0.0.1:{sink.http[1]}/k"
    with s.config("a").open("a") as f:
        f.write(f'[notify]\n[[notify.webhook]]\nurl = "{url}"\n')
    assert s.run().returncode == 1
    assert s.hooks() == 1
    s.pebble.stop()
    failed = s.run("--force", "example.org", "--json")
    assert failed.returncode == 3, failed.stdout + failed.stderr
    report = json.loads(failed.stdout)
    actions = {n["name"]: n["action"] for n in report["names"]}
    assert actions == {
        "example.org": "failed",
        "www.example.org": "unchanged",
        "a.example.net": "unchanged",
    }
    assert "CA unreachable" in report["names"][0]["error"]
    assert s.hooks() == 1
    again = s.run("--force", "example.org")
    assert again.returncode == 3
    state = json.loads((s.root / "state-a" / "certs-state.json").read_text())
    assert list(state["problems"]) == ["cert-failed"]
    assert [e["kind"] for e in state["events"]] == ["cert-failed"]  # told once
    bodies = [json.loads(r.body) for r in sink.of("http")]
    assert [b["kind"] for b in bodies] == ["cert-failed"], bodies
    assert "example.org" in bodies[0]["title"]


def test_placeholder_when_the_ca_is_down_from_the_start(setup: Setup) -> None:
    s = setup
    s.pebble.stop()
    r = s.run("--json")
    assert r.returncode == 3
    for name in NAMES:
        cert = s.cert(name)
        assert cert.issuer == cert.subject  # self-signed, for this name only
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [name]
    assert s.hooks() == 1  # placeholders are new files: the servers may start now
    assert os.path.exists(s.root / "state-a" / "certs.json")


def test_split_brain_seen_by_the_failover_runs_holds_back_site_names(setup: Setup) -> None:
    s = setup
    state = s.root / "state-a"
    state.mkdir()
    (state / "state.json").write_text(
        json.dumps(
            {
                "version": 1,
                "problems": {
                    "split-brain": {
                        "kind": "split-brain",
                        "since": 1.0,
                        "message": "fishfinger/ipv4 names a, blowfish/ipv4 names b",
                    }
                },
            }
        )
    )
    r = s.run("--json")
    assert r.returncode == 6, r.stdout + r.stderr
    report = json.loads(r.stdout)
    got = {n["name"]: (n["action"], n["reason"]) for n in report["names"]}
    assert got["a.example.net"][0] == "obtained"  # a node's own FQDN never moves
    for name in ("example.org", "www.example.org"):
        action, reason = got[name]
        assert action == "placeholder"
        assert "split brain (fishfinger/ipv4 names a, blowfish/ipv4 names b)" in reason
    text = s.run().stdout
    assert "split brain: " in text and "site names are not requested" in text
