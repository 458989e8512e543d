"""kissha certs on the two-node lab with a real pebble on the client.

pebble's validation authority resolves through fishfinger's nsd, so it reaches
whichever node the zones name; every node's port 80 is kissha challenges, which
redirects tokens it does not hold along the node FQDNs. Times come from --now.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from lab.netlab import Lab
from lab.pebble import LabCerts, lab_certs

pytestmark = pytest.mark.e2e

NOW = "2026-11-23T12:00:00Z"  # an even week: fishfinger leads
SITE = ("example.org", "www.example.org", "standby.example.org")


@pytest.fixture
def certs(lab: Lab) -> Iterator[LabCerts]:
    c = lab_certs(lab)
    try:
        yield c
    finally:
        c.stop()


def _run(c: LabCerts, node: str, *args: str, now: str = NOW, code: int = 1) -> dict[str, str]:
    r = c.certs(node, "--json", *args, now=now)
    assert r.returncode == code, r.stdout + r.stderr
    return {n["name"]: n["action"] for n in json.loads(r.stdout)["names"]}


def _verify(c: LabCerts, node: str, name: str) -> None:
    ssl = c.ssl_dir(node)
    done = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(c.pebble.issuing_root),
            "-untrusted",
            str(ssl / f"{name}.fullchain.pem"),
            "-verify_hostname",
            name,
            str(ssl / f"{name}.crt"),
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _failover(lab: Lab, now: str = NOW) -> None:
    for node in ("fishfinger", "blowfish"):
        r = lab.kissha(node, "failover", now=now)
        assert r.returncode in (0, 1), r.stdout + r.stderr


def test_every_node_every_name_in_both_roles_then_after_a_failover(
    lab: Lab, certs: LabCerts
) -> None:
    _failover(lab)
    for node, fqdn in (
        ("fishfinger", "fishfinger.example.org"),
        ("blowfish", "blowfish.example.org"),
    ):
        got = _run(certs, node)
        # blowfish is standby: example.org and www point at fishfinger, and still work.
        assert got == dict.fromkeys((*SITE, fqdn), "obtained"), node
        for name in (*SITE, fqdn):
            _verify(certs, node, name)
        assert certs.hooks(node) == 1
        # A second run: nothing due, nothing written, no hook.
        assert set(_run(certs, node, code=0).values()) == {"unchanged"}
        assert certs.hooks(node) == 1

    # kissha status shows each name's certificate, from what the certs run recorded.
    r = lab.kissha("blowfish", "status", "--json", now=NOW)
    shown = {c["name"]: c for c in json.loads(r.stdout)["certificates"]}
    assert set(shown) == {*SITE, "blowfish.example.org"}
    assert all("Pebble" in c["issuer"] and c["not_after"] and c["due"] for c in shown.values())
    assert all(c["error"] is None for c in shown.values())

    # blowfish's example.org was validated through fishfinger's redirect to blowfish.
    log = (Path(lab.node_root("fishfinger")) / "challenges.log").read_text()
    assert '"GET /.well-known/acme-challenge/' in log and '" 302 ' in log, log

    # Each node serves its own pebble certificate; kissha's HTTPS and Gemini probes
    # verify both nodes against pebble's root.
    for node in ("fishfinger", "blowfish"):
        certs.serve_own_certs(node)
    r = lab.kissha("fishfinger", "failover", "--dry-run", "--json", now=NOW)
    report = json.loads(r.stdout)
    probes = [p for p in report["probes"] if p["probe"] in ("https", "gemini")]
    assert probes and all(p["ok"] for p in probes), probes

    # A failover (pinned to blowfish): fishfinger is now standby, and its forced
    # near-expiry renewal still succeeds for every name.
    assert lab.kissha("fishfinger", "pin", "blowfish").returncode == 0
    assert lab.kissha("blowfish", "pin", "blowfish").returncode == 0
    _failover(lab)
    assert lab.dig("fishfinger", "example.org", "A") == {"198.51.100.12"}
    cert = x509.load_pem_x509_certificate(
        (certs.ssl_dir("fishfinger") / "example.org.crt").read_bytes()
    )
    late = datetime.fromtimestamp(cert.not_valid_after_utc.timestamp() - 10 * 86400, UTC)
    got = _run(certs, "fishfinger", now=late.isoformat())
    assert got == dict.fromkeys((*SITE, "fishfinger.example.org"), "renewed")
    assert certs.hooks("fishfinger") == 2


def test_when_served_obtains_only_the_names_pointing_here(lab: Lab, certs: LabCerts) -> None:
    _failover(lab)
    certs.set_strategy("blowfish", "when-served")
    got = _run(certs, "blowfish")
    assert got == {
        "example.org": "placeholder",  # so the TLS servers start; not asked for
        "www.example.org": "placeholder",
        "standby.example.org": "obtained",
        "blowfish.example.org": "obtained",
    }
    _verify(certs, "blowfish", "standby.example.org")


def test_rotation_off_every_node_still_holds_every_name(isolation: None) -> None:
    Lab.cleanup_stale()
    with Lab(rotation="off") as lab:
        c = lab_certs(lab)
        try:
            _failover(lab)
            _failover(lab, "2026-11-30T12:00:00Z")  # a week later: no swap without rotation
            assert lab.dig("fishfinger", "example.org", "A") == {"198.51.100.11"}
            for node, fqdn in (
                ("fishfinger", "fishfinger.example.org"),
                ("blowfish", "blowfish.example.org"),
            ):
                assert _run(c, node) == dict.fromkeys((*SITE, fqdn), "obtained")
        finally:
            c.stop()
